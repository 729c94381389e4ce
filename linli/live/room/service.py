"""The room's verbs that touch the database: its shared row (sequence, pinned item, likes), pinning,
likes, notices, and the snapshot a process loads when it opens a room.

Like every service here these flush and never commit; their events reach the room through the
``live.room`` consumer once committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.clock import utcnow
from linli.core.events import Subjects, record_event
from linli.identity.models import User
from linli.live import comments, lottery, service
from linli.live.errors import InvalidComment, RoomClosed, SessionNotFound
from linli.live.models import LineupItem, LiveSession, RoomState, SessionStatus
from linli.live.room import progress
from linli.live.room.messages import comment_message, lineup_entry

PINNED, LIKED, NOTICE = "live.product_pinned", "live.liked", "live.notice_posted"
MAX_NOTICE_CHARS = 200


async def room_row(session: AsyncSession, session_id: int) -> RoomState:
    """The room's shared row, created on first use (a concurrent creator wins; we use theirs)."""
    row = await session.get(RoomState, session_id)
    if row is not None:
        return row
    row = RoomState(session_id=session_id, seq=0, like_count=0)
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        found = await session.get(RoomState, session_id, populate_existing=True)
        assert found is not None
        return found
    return row


async def next_seq(session: AsyncSession, session_id: int) -> int:
    """The room's next sequence number: an atomic increment of ``live_rooms.seq``. Only the ``live.room``
    consumer calls it, inside its batch transaction, so a redelivered batch gets the same numbers."""
    for _ in range(2):
        seq = await session.scalar(
            update(RoomState)
            .where(RoomState.session_id == session_id)
            .values(seq=RoomState.seq + 1)
            .returning(RoomState.seq)
            .execution_options(synchronize_session=False)
        )
        if seq is not None:
            return int(seq)
        await room_row(session, session_id)
    raise RuntimeError(f"no room row for session {session_id}")  # pragma: no cover


async def pin_item(
    session: AsyncSession, live_session: LiveSession, item_id: int | None, *, actor: User
) -> LineupItem | None:
    """Pin a current lineup item as "explaining now" (``None`` unpins); ``live.product_pinned``."""
    comments.require_moderator(live_session, actor)
    if live_session.archived_at is not None or live_session.status == SessionStatus.ended:
        raise RoomClosed("the session has ended")
    item = None
    if item_id is not None:
        item = service.get_lineup_item(live_session, item_id)
        if item.archived_at is not None:
            raise RoomClosed("this item was removed from the lineup")
    row = await room_row(session, live_session.id)
    row.pinned_item_id = item.id if item else None
    row.pinned_at = utcnow() if item else None
    await session.flush()
    record_event(
        session,
        PINNED,
        actor_id=actor.id,
        subjects=Subjects(session_id=live_session.id, product_id=item.product_id if item else None),
        payload={"item_id": item.id if item else None},
    )
    return item


async def add_likes(session: AsyncSession, session_id: int, n: int) -> int:
    """Add ``n`` likes (a process's batch of taps) to the room's total; returns the new total.
    ``live.liked`` carries both, for the room's like burst and for the CDP."""
    await room_row(session, session_id)
    total = await session.scalar(
        update(RoomState)
        .where(RoomState.session_id == session_id)
        .values(like_count=RoomState.like_count + n)
        .returning(RoomState.like_count)
        .execution_options(synchronize_session=False)
    )
    record_event(session, LIKED, subjects=Subjects(session_id=session_id), payload={"n": n, "total": total})
    return int(total or 0)


async def post_notice(session: AsyncSession, live_session: LiveSession, text: str, *, actor: User) -> str:
    """A line from the host to the whole room (shown apart from comments); ``live.notice_posted``."""
    comments.require_moderator(live_session, actor)
    clean = " ".join(text.split())
    if not 1 <= len(clean) <= MAX_NOTICE_CHARS:
        raise InvalidComment(f"a notice has 1 to {MAX_NOTICE_CHARS} characters", field="text")
    record_event(
        session,
        NOTICE,
        actor_id=actor.id,
        subjects=Subjects(session_id=live_session.id),
        payload={"text": clean},
    )
    return clean


def post_system_notice(
    session: AsyncSession, session_id: int, text: str, *, kind: str, subjects: Subjects | None = None
) -> str:
    """A line from the platform itself to the room ("恭喜阳光花园社区,已集齐50份!"): the same
    ``live.notice_posted`` as a host's, marked ``system`` with its ``kind`` (``group_reached``, ``honour``,
    ...) so the room can style it. For higher domains reacting to their own changes, in their transaction;
    they decide whether the session is live (a notice to an ended room is stored but seen by nobody)."""
    clean = " ".join(text.split())[:MAX_NOTICE_CHARS]
    if not clean:
        raise InvalidComment("a notice has at least one character", field="text")
    base = subjects or Subjects()
    record_event(
        session,
        NOTICE,
        subjects=Subjects(
            user_id=base.user_id,
            session_id=session_id,
            community_id=base.community_id,
            order_id=base.order_id,
            product_id=base.product_id,
        ),
        payload={"text": clean, "system": True, "kind": kind},
    )
    return clean


# --- what a process loads when it opens a room ----------------------------------------------------


def session_view(live_session: LiveSession) -> dict[str, Any]:
    return {
        "id": live_session.id,
        "title": live_session.title,
        "status": live_session.status,
        "playback_url": live_session.playback_url,
        "cover_url": live_session.cover_url,
        "host_name": live_session.host.display_name if live_session.host else None,
        "host_id": live_session.host_id,
        "started_at": live_session.started_at.isoformat() if live_session.started_at else None,
        "ended_at": live_session.ended_at.isoformat() if live_session.ended_at else None,
    }


def lineup_view(live_session: LiveSession) -> list[dict[str, Any]]:
    return [lineup_entry(i, service.is_on_sale(live_session, i)) for i in service.list_lineup(live_session)]


@dataclass
class Snapshot:
    """The room at ``seq``: reflects every sequenced message up to it (and maybe a few later ones, which
    receivers tolerate: messages are idempotent)."""

    seq: int
    session: dict[str, Any]
    pinned_item_id: int | None
    lineup: list[dict[str, Any]]
    likes: int
    comments: list[dict[str, Any]]
    banned_user_ids: set[int] = field(default_factory=set)
    banned_anonymous_ids: set[str] = field(default_factory=set)
    # The room's keyword lottery — running, else the latest drawn — as its last message (None: never one).
    lottery: dict[str, Any] | None = None
    # Each community's group-order progress, keyed by community id (``progress.latest``).
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)


async def load_snapshot(session: AsyncSession, session_id: int) -> Snapshot:
    """Read the room for a process opening it; drafts and archived sessions have no room."""
    row = await session.get(RoomState, session_id, populate_existing=True)
    # The sequence first: what is read after it is at least as new.
    seq = row.seq if row is not None else 0
    live_session = await session.get(LiveSession, session_id, populate_existing=True)
    if (
        live_session is None
        or live_session.archived_at is not None
        or live_session.status == SessionStatus.draft
    ):
        raise SessionNotFound(f"no live room for session {session_id}", session_id=session_id)
    recent = await comments.recent_comments(session, session_id)
    bans = await comments.banned_in(session, session_id)
    shown = await lottery.current_lottery(session, session_id)
    return Snapshot(
        seq=seq,
        session=session_view(live_session),
        pinned_item_id=row.pinned_item_id if row is not None else None,
        lineup=lineup_view(live_session),
        likes=row.like_count if row is not None else 0,
        comments=[comment_message(comments.comment_payload(c)) for c in recent],
        banned_user_ids=set(bans.user_ids),
        banned_anonymous_ids=set(bans.anonymous_ids),
        lottery=await lottery.room_view(session, shown) if shown is not None else None,
        progress=await progress.latest(session, session_id),
    )


async def stock_left(session: AsyncSession, session_id: int) -> dict[int, int]:
    """Units left per current lineup item: what the room polls to keep its stock counters fresh."""
    rows = await session.execute(
        select(LineupItem.id, LineupItem.stock - LineupItem.reserved - LineupItem.sold).where(
            LineupItem.session_id == session_id, LineupItem.archived_at.is_(None)
        )
    )
    return {int(r[0]): int(r[1]) for r in rows.all()}
