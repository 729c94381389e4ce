"""JSON routes of the host console's side panels: the most-asked questions and the room's figures. The
session's host or an operator only. Answering a question is the ordinary host reply
(``POST /api/v1/sessions/{id}/comments`` with ``reply_to_id`` = the question's ``comment_id``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from linli.core.deps import RuntimeDep, SessionDep
from linli.identity.deps import HostUser
from linli.live import comments, console, questions, service

router = APIRouter(prefix="/api/v1/host/sessions", tags=["live room (hosts and operators)"])

SessionId = Annotated[int, Path(ge=1, le=2**62)]


class Asker(BaseModel):
    id: int
    name: str


class QuestionRead(BaseModel):
    comment_id: int
    text: str
    user: Asker
    askers: int
    count: int
    comment_ids: list[int]
    samples: list[str]
    last_at: datetime | None
    answered: bool

    @classmethod
    def of(cls, group: questions.QuestionGroup) -> QuestionRead:
        first = group.representative
        return cls(
            comment_id=first.comment_id,
            text=first.text,
            user=Asker(id=first.user_id, name=first.user_name),
            askers=group.askers,
            count=group.count,
            comment_ids=group.comment_ids,
            samples=group.samples,
            last_at=group.last_at,
            answered=group.answered,
        )


class QuestionList(BaseModel):
    window_minutes: int
    items: list[QuestionRead]


class ItemStock(BaseModel):
    item_id: int
    name: str
    stock_left: int


class ConsoleStatsRead(BaseModel):
    viewers: int | None
    window_minutes: int
    comments_in_window: int
    comments_per_minute: float
    items: list[ItemStock]


@router.get("/{session_id}/questions", response_model=QuestionList)
async def most_asked_questions(
    session: SessionDep,
    user: HostUser,
    session_id: SessionId,
    minutes: Annotated[int, Query(ge=1, le=questions.MAX_WINDOW_MINUTES)] = questions.DEFAULT_WINDOW_MINUTES,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> QuestionList:
    """The most-asked questions of the last ``minutes``: unanswered first, then by distinct askers; each
    with its first wording (``comment_id``, the one to reply to), a few samples and every comment id."""
    live_session = await service.get_session(session, session_id)
    comments.require_moderator(live_session, user)
    groups = await questions.most_asked(session, live_session, minutes=minutes, limit=limit)
    return QuestionList(window_minutes=minutes, items=[QuestionRead.of(g) for g in groups])


@router.get("/{session_id}/stats", response_model=ConsoleStatsRead)
async def console_stats(
    session: SessionDep, runtime: RuntimeDep, user: HostUser, session_id: SessionId
) -> ConsoleStatsRead:
    """Viewers (null when this process has no open room to count them), comments per minute over the last
    five minutes, and units left per item."""
    live_session = await service.get_session(session, session_id)
    comments.require_moderator(live_session, user)
    stats = await console.console_stats(session, live_session, runtime=runtime)
    return ConsoleStatsRead(
        viewers=stats.viewers,
        window_minutes=stats.window_minutes,
        comments_in_window=stats.comments_in_window,
        comments_per_minute=stats.comments_per_minute,
        items=[ItemStock(**item) for item in stats.items],
    )
