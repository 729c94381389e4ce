"""The neighbour's inbox as JSON: list (newest first, paged by ``before_id``), unread count, mark read.

Every route works on the caller's own inbox only; another neighbour's item id is a 404. Titles and bodies
come in the caller's locale (``?lang=en``, or the language cookie; zh-CN by default)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict

from linli.community import inbox
from linli.core.deps import SessionDep
from linli.core.templating import locale_of
from linli.identity.deps import CurrentUser

router = APIRouter(tags=["community: inbox"])
INBOX = "/api/v1/me/inbox"

ItemId = Annotated[int, Path(ge=1, le=2**62)]


class InboxItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    title: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None


class InboxPage(BaseModel):
    items: list[InboxItemRead]
    unread: int
    # Pass as ``before_id`` for the next (older) page; null when this page is the last.
    next_before_id: int | None


class UnreadCount(BaseModel):
    unread: int


class MarkedRead(BaseModel):
    marked: int
    unread: int


@router.get(INBOX)
async def list_inbox(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=inbox.MAX_PAGE_SIZE)] = 20,
    unread_only: bool = False,
) -> InboxPage:
    """My inbox, newest first."""
    items = await inbox.list_items(
        session, user_id=user.id, before_id=before_id, limit=limit + 1, unread_only=unread_only
    )
    more = len(items) > limit
    items = items[:limit]
    return InboxPage(
        items=[InboxItemRead.model_validate(inbox.shown(i, locale_of(request))) for i in items],
        unread=await inbox.unread_count(session, user_id=user.id),
        next_before_id=items[-1].id if more else None,
    )


@router.get(INBOX + "/unread")
async def unread_count(session: SessionDep, user: CurrentUser) -> UnreadCount:
    """How many of my messages are unread (the badge on every page)."""
    return UnreadCount(unread=await inbox.unread_count(session, user_id=user.id))


@router.post(INBOX + "/read")
async def mark_all_read(session: SessionDep, user: CurrentUser) -> MarkedRead:
    """Mark all my messages read."""
    marked = await inbox.mark_all_read(session, user_id=user.id)
    return MarkedRead(marked=marked, unread=0)


@router.post(INBOX + "/{item_id}/read")
async def mark_read(
    request: Request, session: SessionDep, user: CurrentUser, item_id: ItemId
) -> InboxItemRead:
    """Mark one of my messages read; marking it again is harmless."""
    item = await inbox.mark_read(session, user_id=user.id, item_id=item_id)
    return InboxItemRead.model_validate(inbox.shown(item, locale_of(request)))
