"""Reservations (预约): neighbours reserve an upcoming session and hear about it in their inbox.

Two moments reach every active reserver's inbox: a reminder ``REMINDER_LEAD`` before the scheduled start
(a durable timer, see ``core.jobs``) and the moment the host goes live (the ``live.reservations``
consumer reacting to ``live.session_started``). The reminder job's key carries the start time, so a
rescheduled session cancels the old job and schedules one at the new time; the job also re-checks the
session when it fires, so a stale or cancelled session never reminds anyone. Inbox items are
deduplicated per session and start time, so at-least-once timers and consumers notify once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community import inbox
from linli.core.clock import as_utc, to_local, utcnow
from linli.core.consumers import Consumer
from linli.core.errors import Conflict
from linli.core.events import Event, Subjects, record_event
from linli.core.i18n import Message, catalog
from linli.core.jobs import PENDING, Job, cancel_job, schedule_job
from linli.identity.models import User
from linli.live.models import LiveSession, Reservation, SessionStatus

log = logging.getLogger(__name__)

RESERVED = "live.reserved"
UNRESERVED = "live.unreserved"
REMIND = "live.session_reminder"  # job kind
REMINDER_LEAD = timedelta(minutes=10)
CONSUMER = "live.reservations"
# Inbox texts are message keys: this domain's catalog must be there wherever they are written (the
# worker process serves no pages).
catalog.load_dir(Path(__file__).parent / "locales")

KIND_REMINDER = "session_reminder"
KIND_LIVE = "session_live"

# Session events after which the reminder may have to move, go, or come back.
_RESYNC = frozenset(
    {
        "live.session_scheduled",
        "live.session_unscheduled",
        "live.session_updated",
        "live.session_archived",
        "live.session_unarchived",
    }
)
STARTED = "live.session_started"


class SessionNotReservable(Conflict):
    """Only a scheduled (not yet live), unarchived session takes reservations."""


def _active(session_id: int) -> list[ColumnElement[bool]]:
    return [Reservation.session_id == session_id, Reservation.cancelled_at.is_(None)]


def _reservable(live_session: LiveSession) -> bool:
    return live_session.status == SessionStatus.scheduled.value and live_session.archived_at is None


async def reserve(session: AsyncSession, live_session: LiveSession, user: User) -> Reservation:
    """Reserve ``live_session`` for ``user``; reserving again is a no-op (no second event). A cancelled
    reservation comes back to life. The unique ``(session_id, user_id)`` pair settles a double tap."""
    if not _reservable(live_session):
        raise SessionNotReservable("only an upcoming session can be reserved", status=live_session.status)
    query = select(Reservation).where(
        Reservation.session_id == live_session.id, Reservation.user_id == user.id
    )
    row = await session.scalar(query)
    if row is None:
        row = Reservation(session_id=live_session.id, user_id=user.id, created_at=utcnow())
        try:
            async with session.begin_nested():
                session.add(row)
        except IntegrityError:
            winner = await session.scalar(query)
            if winner is None:
                raise
            row = winner
            if row.cancelled_at is None:
                return row
    elif row.cancelled_at is None:
        return row
    else:
        row.cancelled_at = None
        row.created_at = utcnow()
    record_event(
        session,
        RESERVED,
        actor_id=user.id,
        subjects=Subjects(user_id=user.id, session_id=live_session.id),
    )
    await session.flush()
    await sync_reminder(session, live_session, known_reserved=True)
    return row


async def cancel(session: AsyncSession, live_session: LiveSession, user: User) -> bool:
    """Withdraw ``user``'s reservation; returns whether there was one. Cancelling twice is a no-op."""
    row = await session.scalar(
        select(Reservation).where(
            Reservation.session_id == live_session.id,
            Reservation.user_id == user.id,
            Reservation.cancelled_at.is_(None),
        )
    )
    if row is None:
        return False
    row.cancelled_at = utcnow()
    record_event(
        session,
        UNRESERVED,
        actor_id=user.id,
        subjects=Subjects(user_id=user.id, session_id=live_session.id),
    )
    await session.flush()
    await sync_reminder(session, live_session)
    return True


async def count(session: AsyncSession, session_id: int) -> int:
    """Active reservations of a session."""
    total = await session.scalar(select(func.count()).select_from(Reservation).where(*_active(session_id)))
    return int(total or 0)


async def has_reserved(session: AsyncSession, session_id: int, user_id: int) -> bool:
    found = await session.scalar(
        select(Reservation.id).where(*_active(session_id), Reservation.user_id == user_id)
    )
    return found is not None


async def reserver_ids(session: AsyncSession, session_id: int) -> list[int]:
    rows = await session.scalars(
        select(Reservation.user_id).where(*_active(session_id)).order_by(Reservation.id)
    )
    return list(rows.all())


# --- the reminder timer -------------------------------------------------------------------------


def _stamp(start: datetime) -> int:
    return int(as_utc(start).timestamp())


def reminder_key(session_id: int, start: datetime) -> str:
    return f"{REMIND}:{session_id}:{_stamp(start)}"


async def sync_reminder(
    session: AsyncSession, live_session: LiveSession, *, known_reserved: bool = False
) -> Job | None:
    """Make the session's pending reminder match it now: one job at ``scheduled_start - REMINDER_LEAD``
    (or at once when that has passed) while it is upcoming and reserved, none otherwise. Idempotent."""
    now = utcnow()
    start = as_utc(live_session.scheduled_start)
    wanted = (
        _reservable(live_session)
        and start > now
        and (known_reserved or await count(session, live_session.id) > 0)
    )
    key = reminder_key(live_session.id, start)
    stale = await session.scalars(
        select(Job.key).where(
            Job.key.like(f"{REMIND}:{live_session.id}:%"), Job.status == PENDING, Job.key != key
        )
    )
    for old in stale.all():
        if old is not None:
            await cancel_job(session, old)
    if not wanted:
        await cancel_job(session, key)
        return None
    return await schedule_job(
        session,
        REMIND,
        max(start - REMINDER_LEAD, now),
        {"session_id": live_session.id, "scheduled_start": _stamp(start)},
        key=key,
    )


def _hhmm(start: datetime) -> str:
    return to_local(start).strftime("%H:%M")


async def remind_job(session: AsyncSession, job: Job) -> None:
    """``live.session_reminder``: tell every active reserver the session starts soon — unless it has
    moved, started, gone back to draft or been archived since the job was scheduled."""
    session_id, stamp = job.payload.get("session_id"), job.payload.get("scheduled_start")
    if not isinstance(session_id, int) or not isinstance(stamp, int):
        log.warning("reminder job %s has a bad payload: %r", job.id, job.payload)
        return
    live_session = await session.get(LiveSession, session_id)
    if live_session is None or not _reservable(live_session) or _stamp(live_session.scheduled_start) != stamp:
        return
    at = _hhmm(live_session.scheduled_start)
    await inbox.notify_many(
        session,
        user_ids=await reserver_ids(session, session_id),
        kind=KIND_REMINDER,
        message=Message("live.inbox.reminder", {"title": live_session.title, "at": at}),
        link=f"/live/{session_id}",
        dedupe_key=f"{REMIND}:{session_id}:{stamp}",
    )


async def notify_started(session: AsyncSession, live_session: LiveSession) -> int:
    """Tell every active reserver the host is live now; returns how many were newly told (a repeat tells
    no one again)."""
    return await inbox.notify_many(
        session,
        user_ids=await reserver_ids(session, live_session.id),
        kind=KIND_LIVE,
        message=Message("live.inbox.live_now", {"title": live_session.title}),
        link=f"/live/{live_session.id}",
        dedupe_key=f"{STARTED}:{live_session.id}",
    )


async def _on_event(session: AsyncSession, event: Event) -> None:
    if event.session_id is None:
        return
    if event.type == "live.session_updated" and "scheduled_start" not in event.payload.get("fields", []):
        return
    live_session = await session.get(LiveSession, event.session_id, populate_existing=True)
    if live_session is None:
        return
    await sync_reminder(session, live_session)
    # Only while it is still live: a consumer catching up after the session ended tells no one.
    if event.type == STARTED and live_session.status == SessionStatus.live.value:
        await notify_started(session, live_session)


def reservations_consumer() -> Consumer:
    # From the beginning: replaying history only re-checks timers and finds inbox items already there.
    return Consumer(name=CONSUMER, handler=_on_event, types=_RESYNC | {STARTED})
