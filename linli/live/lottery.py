"""Keyword lotteries (弹幕抽奖): the host names a keyword, a prize, a duration and a number of winners;
the neighbours who comment the keyword in that window enter, once each; the draw is verifiable.

Who enters (computed at the draw from the stored comments, so nothing hooks the comment path): the
distinct users with a comment not deleted, containing the keyword (case-folded, whitespace collapsed), made
from ``started_at`` to the end of the window (``ends_at``, or the moment the host drew early), except

- the session's host, hosts and operators (staff never win their own lottery), and inactive accounts;
- users banned from the room (an unlifted ban) or muted at any time since the lottery started (an unlifted
  mute whose ``until`` is after ``started_at``), and comments posted from a banned device.

The draw, precisely — ``draw(seed, entries, n)``, anyone can recompute it from what the lottery publishes:

1. ``seed`` is 32 random bytes written as 64 lowercase hex characters. When the lottery starts only
   ``seed_hash = hex(SHA-256(seed as ASCII))`` is published (``echo -n $seed | sha256sum``); the seed itself
   is revealed with the winners, so it was fixed before anyone commented and cannot be chosen afterwards.
2. ``entries`` are the entrants' user ids, distinct, sorted ascending (the published entry list).
3. A stream of 64-bit numbers: number ``c`` (``c`` = 0, 1, 2, ...) is the first 8 bytes, read big-endian
   unsigned, of ``HMAC-SHA256(key = seed as ASCII, message = c as 8 bytes big-endian)``.
4. ``uniform(m)`` takes the next number ``x``; while ``x >= 2**64 - (2**64 % m)`` it rejects ``x`` and takes
   the next one (removing modulo bias); it returns ``x % m``. Each result is exactly uniform on ``0..m-1``.
5. A partial Fisher–Yates shuffle: ``pool = entries``; for ``i`` in ``0 .. k-1`` with ``k = min(n,
   len(entries))``: ``j = i + uniform(len(entries) - i)``, swap ``pool[i]`` and ``pool[j]``. The winners
   are ``pool[:k]``, in that order (rank 1 first): uniform without replacement.

The draw fires by itself when the window ends (a durable ``core.jobs`` timer) or earlier at the host's
word; either way it happens once (a conditional update from ``running`` to ``drawn`` decides). Verbs flush,
never commit; ``lottery.started`` and ``lottery.drawn`` are written in the same transaction.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community import inbox
from linli.core.clock import utcnow
from linli.core.draw import ALGORITHM, commitment, draw, mask_name, new_seed, verify
from linli.core.events import Subjects, record_event
from linli.core.i18n import Message, catalog
from linli.core.jobs import Job, cancel_job, schedule_job
from linli.identity.models import User
from linli.live import comments
from linli.live.errors import InvalidLottery, LotteryNotFound, LotteryRunning, RoomClosed
from linli.live.models import (
    Comment,
    LiveSession,
    Lottery,
    LotteryEntry,
    LotteryStatus,
    LotteryWinner,
    Moderation,
    ModerationKind,
    SessionStatus,
)

# Inbox texts are message keys: this domain's catalog must be there wherever they are written (the
# worker process serves no pages).
catalog.load_dir(Path(__file__).parent / "locales")

STARTED, DRAWN = "lottery.started", "lottery.drawn"
DRAW_JOB = "live.draw_lottery"

MAX_KEYWORD_CHARS = 20
MAX_PRIZE_CHARS = 60
MIN_DURATION_SECONDS, MAX_DURATION_SECONDS = 10, 3600
MAX_WINNERS = 100

# --- the draw: pure, in ``core.draw`` (shared with the feed's guessing topics); re-exported here ---

__all__ = ["ALGORITHM", "commitment", "draw", "mask_name", "new_seed", "verify"]


def matches(keyword: str, text: str) -> bool:
    return _fold(keyword) in _fold(text)


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


# --- starting -------------------------------------------------------------------------------------


def _clean(raw: str, *, field: str, limit: int) -> str:
    text = " ".join((raw or "").split())
    if not text or len(text) > limit:
        raise InvalidLottery(f"{field} has 1 to {limit} characters", field=field, max=limit)
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Co") for ch in text):
        raise InvalidLottery(f"{field} cannot contain control characters", field=field)
    return text


def draw_job_key(lottery_id: int) -> str:
    return f"live.lottery:{lottery_id}"


async def running_lottery(session: AsyncSession, session_id: int) -> Lottery | None:
    return await session.scalar(
        select(Lottery)
        .where(Lottery.session_id == session_id, Lottery.status == LotteryStatus.running.value)
        .order_by(Lottery.id.desc())
        .limit(1)
    )


async def start_lottery(
    session: AsyncSession,
    live_session: LiveSession,
    *,
    actor: User,
    keyword: str,
    prize_name: str,
    duration_seconds: int,
    winner_count: int,
    prize_coupon_template_id: int | None = None,
    now: datetime | None = None,
) -> Lottery:
    """Start a keyword lottery in a live room (its host or an operator); one runs at a time per room.
    Stores a fresh secret seed, publishes its hash in ``lottery.started`` and schedules the draw at the
    window's end (a durable timer, keyed by the lottery)."""
    comments.require_moderator(live_session, actor)
    if live_session.archived_at is not None or live_session.status != SessionStatus.live:
        raise RoomClosed("a lottery runs while the session is live")
    keyword = _clean(keyword, field="keyword", limit=MAX_KEYWORD_CHARS)
    prize_name = _clean(prize_name, field="prize_name", limit=MAX_PRIZE_CHARS)
    if not MIN_DURATION_SECONDS <= duration_seconds <= MAX_DURATION_SECONDS:
        raise InvalidLottery(
            f"a lottery lasts {MIN_DURATION_SECONDS} to {MAX_DURATION_SECONDS} seconds",
            field="duration_seconds",
        )
    if not 1 <= winner_count <= MAX_WINNERS:
        raise InvalidLottery(f"a lottery has 1 to {MAX_WINNERS} winners", field="winner_count")
    if prize_coupon_template_id is not None and prize_coupon_template_id < 1:
        raise InvalidLottery("no such coupon template", field="prize_coupon_template_id")
    running = await running_lottery(session, live_session.id)
    if running is not None:
        raise LotteryRunning(
            "a lottery is already running in this room; draw it first", lottery_id=running.id
        )
    now = now or utcnow()
    seed = new_seed()
    lottery = Lottery(
        session_id=live_session.id,
        keyword=keyword,
        prize_name=prize_name,
        prize_coupon_template_id=prize_coupon_template_id,
        winner_count=winner_count,
        status=LotteryStatus.running.value,
        seed=seed,
        seed_hash=commitment(seed),
        started_at=now,
        ends_at=now + timedelta(seconds=duration_seconds),
        created_by_id=actor.id,
    )
    session.add(lottery)
    await session.flush()
    await schedule_job(
        session, DRAW_JOB, lottery.ends_at, {"lottery_id": lottery.id}, key=draw_job_key(lottery.id)
    )
    record_event(
        session,
        STARTED,
        actor_id=actor.id,
        subjects=Subjects(session_id=live_session.id),
        payload={
            "lottery_id": lottery.id,
            "keyword": keyword,
            "prize_name": prize_name,
            "prize_coupon_template_id": prize_coupon_template_id,
            "winner_count": winner_count,
            "seed_hash": lottery.seed_hash,
            "started_at": lottery.started_at.isoformat(),
            "ends_at": lottery.ends_at.isoformat(),
        },
    )
    return lottery


# --- who entered ----------------------------------------------------------------------------------


async def eligible_entries(session: AsyncSession, lottery: Lottery, until: datetime) -> list[int]:
    """The entrants' user ids, sorted, for a window ending at ``until`` (see the module docstring)."""
    rows = (
        await session.execute(
            select(Comment.user_id, Comment.text, Comment.anonymous_id).where(
                Comment.session_id == lottery.session_id,
                Comment.deleted_at.is_(None),
                Comment.created_at >= lottery.started_at,
                Comment.created_at <= until,
            )
        )
    ).all()
    moderations = (
        await session.execute(
            select(Moderation.kind, Moderation.user_id, Moderation.anonymous_id).where(
                Moderation.session_id == lottery.session_id,
                Moderation.lifted_at.is_(None),
                or_(Moderation.until.is_(None), Moderation.until > lottery.started_at),
            )
        )
    ).all()
    excluded_users = {m.user_id for m in moderations if m.user_id is not None}
    banned_devices = {m.anonymous_id for m in moderations if m.anonymous_id and m.kind == ModerationKind.ban}
    candidates = {
        r.user_id
        for r in rows
        if r.user_id not in excluded_users
        and not (r.anonymous_id and r.anonymous_id in banned_devices)
        and matches(lottery.keyword, r.text)
    }
    if not candidates:
        return []
    live_session = await session.get(LiveSession, lottery.session_id)
    host_id = live_session.host_id if live_session is not None else None
    users = (await session.scalars(select(User).where(User.id.in_(sorted(candidates))))).all()
    return sorted(u.id for u in users if u.is_active and u.id != host_id and not comments.is_staff(u))


# --- drawing --------------------------------------------------------------------------------------


async def draw_lottery(
    session: AsyncSession,
    lottery_id: int,
    *,
    actor: User | None = None,
    now: datetime | None = None,
) -> Lottery:
    """Draw a lottery: by its timer (``actor`` None) or early by the room's host or an operator.

    Idempotent: a lottery already drawn is returned as it is. A conditional update from ``running`` to
    ``drawn`` lets exactly one of two concurrent draws through (the other waits on the row, then finds it
    drawn). Stores the entry list and the winners, emits ``lottery.drawn`` with the winners' ids and the
    prize's coupon template (the orders domain issues the coupons from it) and notifies each winner."""
    lottery = await get_lottery(session, lottery_id)
    live_session = await session.get(LiveSession, lottery.session_id)
    assert live_session is not None
    if actor is not None:
        comments.require_moderator(live_session, actor)
    if lottery.status == LotteryStatus.drawn:
        return lottery
    now = now or utcnow()
    claimed = await session.scalar(
        update(Lottery)
        .where(Lottery.id == lottery.id, Lottery.status == LotteryStatus.running.value)
        .values(status=LotteryStatus.drawn.value, drawn_at=now)
        .returning(Lottery.id)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(lottery)
    if claimed is None:
        return lottery  # drawn meanwhile by the timer or the host
    # The timer fires once the window is over: all of it counts. The host drawing early closes it now.
    window_end = lottery.ends_at if actor is None else min(now, lottery.ends_at)
    entries = await eligible_entries(session, lottery, window_end)
    winners = draw(lottery.seed, entries, lottery.winner_count)
    if entries:
        await session.execute(
            insert(LotteryEntry), [{"lottery_id": lottery.id, "user_id": u} for u in entries]
        )
    if winners:
        await session.execute(
            insert(LotteryWinner),
            [{"lottery_id": lottery.id, "user_id": u, "rank": r} for r, u in enumerate(winners, 1)],
        )
    lottery.entry_count = len(entries)
    await session.flush()
    names = await _names(session, winners)
    record_event(
        session,
        DRAWN,
        actor_id=actor.id if actor is not None else None,
        subjects=Subjects(session_id=lottery.session_id),
        payload={
            "lottery_id": lottery.id,
            "keyword": lottery.keyword,
            "prize_name": lottery.prize_name,
            "prize_coupon_template_id": lottery.prize_coupon_template_id,
            "winner_user_ids": winners,
            "winners": [{"user_id": u, "name": mask_name(names.get(u, ""))} for u in winners],
            "winner_count": lottery.winner_count,
            "entry_count": len(entries),
            "seed": lottery.seed,
            "seed_hash": lottery.seed_hash,
        },
    )
    for user_id in winners:
        await inbox.notify(
            session,
            user_id=user_id,
            kind="lottery_won",
            message=Message(
                "live.inbox.lottery_won",
                {"prize": lottery.prize_name, "session": live_session.title, "keyword": lottery.keyword},
            ),
            link=f"/live/{lottery.session_id}",
            dedupe_key=f"lottery_won:{lottery.id}",
        )
    if actor is not None:
        await cancel_job(session, draw_job_key(lottery.id))
    return lottery


async def draw_lottery_job(session: AsyncSession, job: Job) -> None:
    """``live.draw_lottery``: the window ended; draw (idempotent, as jobs must be)."""
    lottery_id = job.payload.get("lottery_id")
    if not isinstance(lottery_id, int):
        return
    try:
        await draw_lottery(session, lottery_id)
    except LotteryNotFound:
        return  # its session was deleted, and the lottery with it


# --- reading --------------------------------------------------------------------------------------


async def get_lottery(session: AsyncSession, lottery_id: int, *, session_id: int | None = None) -> Lottery:
    lottery = await session.get(Lottery, lottery_id)
    if lottery is None or (session_id is not None and lottery.session_id != session_id):
        raise LotteryNotFound(f"no lottery {lottery_id}", lottery_id=lottery_id)
    return lottery


async def list_lotteries(session: AsyncSession, session_id: int) -> list[Lottery]:
    """A room's lotteries, newest first."""
    return list(
        (
            await session.scalars(
                select(Lottery).where(Lottery.session_id == session_id).order_by(Lottery.id.desc())
            )
        ).all()
    )


async def current_lottery(session: AsyncSession, session_id: int) -> Lottery | None:
    """What the room shows: the running lottery, else the latest drawn one."""
    return await running_lottery(session, session_id) or await session.scalar(
        select(Lottery).where(Lottery.session_id == session_id).order_by(Lottery.id.desc()).limit(1)
    )


async def entries_of(session: AsyncSession, lottery_id: int) -> list[int]:
    """The published entry list of a drawn lottery (empty before the draw), sorted."""
    return list(
        (
            await session.scalars(
                select(LotteryEntry.user_id)
                .where(LotteryEntry.lottery_id == lottery_id)
                .order_by(LotteryEntry.user_id)
            )
        ).all()
    )


@dataclass(frozen=True)
class Winner:
    user_id: int
    rank: int
    name: str


async def winners_of(session: AsyncSession, lottery_id: int) -> list[Winner]:
    rows = (
        await session.execute(
            select(LotteryWinner.user_id, LotteryWinner.rank)
            .where(LotteryWinner.lottery_id == lottery_id)
            .order_by(LotteryWinner.rank)
        )
    ).all()
    names = await _names(session, [r.user_id for r in rows])
    return [Winner(r.user_id, r.rank, mask_name(names.get(r.user_id, ""))) for r in rows]


async def _names(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    users = (await session.scalars(select(User).where(User.id.in_(list(user_ids))))).all()
    return {u.id: u.display_name for u in users}


def room_message(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The room's message for ``lottery.started`` (keyword, prize, end, seed hash) or ``lottery.drawn``
    (the winners' masked names, the seed); user ids stay out of the room."""
    common = {
        "lottery_id": payload["lottery_id"],
        "keyword": payload["keyword"],
        "prize_name": payload["prize_name"],
        "seed_hash": payload["seed_hash"],
    }
    if event_type == STARTED:
        return {
            "type": "lottery_started",
            **common,
            "winner_count": payload["winner_count"],
            "ends_at": payload["ends_at"],
        }
    return {
        "type": "lottery_drawn",
        **common,
        "winner_count": payload.get("winner_count"),
        "winners": [w["name"] for w in payload["winners"]],
        "entry_count": payload["entry_count"],
        "seed": payload["seed"],
    }


def started_message(lottery: Lottery) -> dict[str, Any]:
    """A running lottery as the room's ``lottery_started`` message (for a room's join snapshot)."""
    return room_message(
        STARTED,
        {
            "lottery_id": lottery.id,
            "keyword": lottery.keyword,
            "prize_name": lottery.prize_name,
            "seed_hash": lottery.seed_hash,
            "winner_count": lottery.winner_count,
            "ends_at": lottery.ends_at.isoformat(),
        },
    )


async def room_view(session: AsyncSession, lottery: Lottery) -> dict[str, Any]:
    """A lottery as the room's last message about it: ``lottery_started`` while it runs, ``lottery_drawn``
    (masked winners in draw order, the seed) once drawn — what a joining viewer is sent in the room's
    state, so nobody has to ask for it."""
    if lottery.status != LotteryStatus.drawn:
        return started_message(lottery)
    winners = list(
        (
            await session.scalars(
                select(LotteryWinner.user_id)
                .where(LotteryWinner.lottery_id == lottery.id)
                .order_by(LotteryWinner.rank)
            )
        ).all()
    )
    names = await _names(session, winners)
    return room_message(
        DRAWN,
        {
            "lottery_id": lottery.id,
            "keyword": lottery.keyword,
            "prize_name": lottery.prize_name,
            "seed_hash": lottery.seed_hash,
            "winners": [{"name": mask_name(names.get(u, ""))} for u in winners],
            "winner_count": lottery.winner_count,
            "entry_count": lottery.entry_count,
            "seed": lottery.seed,
        },
    )


def public_view(lottery: Lottery) -> dict[str, Any]:
    """What the room shows of a lottery (the seed only once drawn)."""
    drawn = lottery.status == LotteryStatus.drawn
    return {
        "id": lottery.id,
        "session_id": lottery.session_id,
        "keyword": lottery.keyword,
        "prize_name": lottery.prize_name,
        "prize_coupon_template_id": lottery.prize_coupon_template_id,
        "winner_count": lottery.winner_count,
        "status": lottery.status,
        "seed_hash": lottery.seed_hash,
        "seed": lottery.seed if drawn else None,
        "started_at": lottery.started_at.isoformat(),
        "ends_at": lottery.ends_at.isoformat(),
        "drawn_at": lottery.drawn_at.isoformat() if lottery.drawn_at else None,
        "entry_count": lottery.entry_count,
        "algorithm": ALGORITHM,
    }
