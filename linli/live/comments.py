"""Comments in a room and their moderation: post, reply, delete; mute for a while, ban by account and
device; the operators' sensitive-word list.

Every verb checks first, then writes, then appends its event in the same transaction; it flushes and never
commits. What the room sees of it travels as that event, through the ``live.room`` consumer (see
``live.room.publisher``), once the transaction has committed.

Comments are plain text: stored as typed (whitespace collapsed), never interpreted as markup anywhere —
the pages insert them with ``textContent``.
"""

from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from linli.core.clock import utcnow
from linli.core.errors import TooManyRequests
from linli.core.events import Subjects, record_event
from linli.core.ratelimit import count_hit
from linli.core.runtime import Runtime
from linli.identity.models import Device, Role, User
from linli.live.errors import (
    CannotModerateStaff,
    CommentNotFound,
    CommentRefused,
    InvalidComment,
    NotModerator,
    RoomClosed,
    SensitiveWordExists,
    SensitiveWordNotFound,
    SessionNotFound,
    UserBanned,
    UserMuted,
    UserNotFound,
)
from linli.live.models import Comment, LiveSession, Moderation, ModerationKind, SensitiveWord, SessionStatus
from linli.live.wordfilter import EMPTY, WordFilter, normalise

MAX_COMMENT_CHARS = 200
RECENT_COMMENTS = 50
# Per neighbour and room; hosts and operators are exempt. Counted in the posting transaction, so only
# comments that were accepted count (a refused one leaves the window as it was).
COMMENT_RATE_LIMIT = 5
COMMENT_RATE_WINDOW_SECONDS = 10
MAX_MUTE_MINUTES = 7 * 24 * 60

POSTED, DELETED = "comment.posted", "comment.deleted"
MUTED, UNMUTED, BANNED, UNBANNED = "user.muted", "user.unmuted", "user.banned", "user.unbanned"
WORD_ADDED, WORD_REMOVED = "live.sensitive_word_added", "live.sensitive_word_removed"


# --- who may do what ------------------------------------------------------------------------------


def is_staff(user: User) -> bool:
    """Hosts and operators: exempt from the comment rate limit, never muted or banned."""
    return user.has_role(Role.host, Role.operator)


def can_moderate(live_session: LiveSession, user: User) -> bool:
    return user.has_role(Role.operator) or (
        live_session.host_id is not None and live_session.host_id == user.id
    )


def require_moderator(live_session: LiveSession, user: User) -> None:
    if not can_moderate(live_session, user):
        raise NotModerator("only this session's host or an operator can do this")


async def room_for_comments(session: AsyncSession, session_id: int) -> LiveSession:
    """The session a comment goes to, as neighbours may see it (not a draft, not archived): its row only.

    Posting reads none of its relationships (lineup, host, communities), and loading them eagerly was
    three more queries on every comment; touching one here raises instead of loading."""
    live_session = await session.get(LiveSession, session_id, options=[raiseload("*")])
    if (
        live_session is None
        or live_session.archived_at is not None
        or live_session.status == SessionStatus.draft
    ):
        raise SessionNotFound(f"no live session with id {session_id}", session_id=session_id)
    return live_session


def _open_for_comments(live_session: LiveSession) -> None:
    if live_session.archived_at is not None or live_session.status not in (
        SessionStatus.scheduled,
        SessionStatus.live,
    ):
        raise RoomClosed("comments are open while the session is upcoming or live")


# --- the text -------------------------------------------------------------------------------------


def clean_text(raw: str) -> str:
    """Whitespace runs (newlines included) become one space; 1–200 characters; no control characters."""
    text = " ".join((raw or "").split())
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Co") for ch in text):
        raise InvalidComment("a comment cannot contain control characters")
    if not text:
        raise InvalidComment("write something first", field="text")
    if len(text) > MAX_COMMENT_CHARS:
        raise InvalidComment(
            f"a comment has at most {MAX_COMMENT_CHARS} characters", field="text", max=MAX_COMMENT_CHARS
        )
    return text


# How long a process trusts its automaton without asking the database whether the list changed: the
# comment path's one statement fewer. A change made in this process is seen at once; one made in another
# process within this many seconds.
WORD_LIST_CHECK_SECONDS = 1.0
_words_changed_at = float("-inf")


def _word_list_changed() -> None:
    """This process changed the list: the next comments check it again (until the change is surely
    committed and seen)."""
    global _words_changed_at
    _words_changed_at = time.monotonic()


async def word_filter(session: AsyncSession, runtime: Runtime | None) -> WordFilter:
    """This process's automaton, rebuilt when the word list changed (by its count and highest id),
    which is asked at most once every ``WORD_LIST_CHECK_SECONDS``."""
    cache = runtime.extras if runtime is not None else {}
    current: WordFilter = cache.get("live.word_filter", EMPTY)
    checked: float = cache.get("live.word_filter_checked", float("-inf"))
    now = time.monotonic()
    fresh = now - checked < WORD_LIST_CHECK_SECONDS
    if fresh and now - _words_changed_at >= WORD_LIST_CHECK_SECONDS:
        return current
    count, top = (await session.execute(select(func.count(), func.max(SensitiveWord.id)))).one()
    signature = (int(count or 0), int(top or 0))
    if current.signature != signature:
        words = (await session.scalars(select(SensitiveWord.word))).all()
        current = WordFilter.build(words, signature)
        cache["live.word_filter"] = current
    cache["live.word_filter_checked"] = now
    return current


# --- moderation state -----------------------------------------------------------------------------


def _active(now: datetime) -> Any:
    return (Moderation.lifted_at.is_(None)) & (or_(Moderation.until.is_(None), Moderation.until > now))


async def active_ban(
    session: AsyncSession, session_id: int, *, user_id: int | None, anonymous_id: str | None
) -> Moderation | None:
    """The ban that keeps this account or device out of the room, if any."""
    subjects = []
    if user_id is not None:
        subjects.append(Moderation.user_id == user_id)
    if anonymous_id:
        subjects.append(Moderation.anonymous_id == anonymous_id)
    if not subjects:
        return None
    return await session.scalar(
        select(Moderation)
        .where(
            Moderation.session_id == session_id,
            Moderation.kind == ModerationKind.ban.value,
            _active(utcnow()),
            or_(*subjects),
        )
        .limit(1)
    )


async def active_mute(session: AsyncSession, session_id: int, user_id: int) -> Moderation | None:
    return await session.scalar(
        select(Moderation)
        .where(
            Moderation.session_id == session_id,
            Moderation.kind == ModerationKind.mute.value,
            Moderation.user_id == user_id,
            _active(utcnow()),
        )
        .order_by(Moderation.until.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class Bans:
    user_ids: frozenset[int]
    anonymous_ids: frozenset[str]


async def banned_in(session: AsyncSession, session_id: int) -> Bans:
    """Everyone banned from the room now, by account and by device (the room keeps them in memory)."""
    rows = (
        await session.execute(
            select(Moderation.user_id, Moderation.anonymous_id).where(
                Moderation.session_id == session_id,
                Moderation.kind == ModerationKind.ban.value,
                _active(utcnow()),
            )
        )
    ).all()
    return Bans(
        user_ids=frozenset(r[0] for r in rows if r[0] is not None),
        anonymous_ids=frozenset(r[1] for r in rows if r[1]),
    )


# --- comments -------------------------------------------------------------------------------------


def comment_payload(comment: Comment) -> dict[str, Any]:
    """How a comment travels: in its event, in the room's messages, in the API."""
    reply = comment.reply_to
    return {
        "id": comment.id,
        "user": {"id": comment.user_id, "name": comment.user.display_name},
        "text": comment.text,
        "at": comment.created_at.isoformat(),
        "staff": is_staff(comment.user),
        "reply_to": None
        if reply is None
        else {
            "id": reply.id,
            "user": {"id": reply.user_id, "name": reply.user.display_name},
            "text": reply.text,
        },
    }


async def post_comment(
    session: AsyncSession,
    live_session: LiveSession,
    user: User,
    text: str,
    *,
    anonymous_id: str | None = None,
    reply_to_id: int | None = None,
    runtime: Runtime | None = None,
) -> Comment:
    """Store a neighbour's comment (or a host's reply to one) and emit ``comment.posted``.

    Refused when the room is closed, the poster is banned (account or device) or muted, the text is
    invalid or holds a refused word, or — for neighbours — past ``COMMENT_RATE_LIMIT`` comments in the
    window (a counter row bumped by a conditional update, so it holds across processes)."""
    _open_for_comments(live_session)
    clean = clean_text(text)
    staff = is_staff(user)
    if not staff:
        ban = await active_ban(session, live_session.id, user_id=user.id, anonymous_id=anonymous_id)
        if ban is not None:
            raise UserBanned("you have been removed from this live room")
        mute = await active_mute(session, live_session.id, user.id)
        if mute is not None and mute.until is not None:
            raise UserMuted(
                "you are muted in this room for now", until=mute.until.isoformat(), reason=mute.reason
            )
    reply_to = None
    if reply_to_id is not None:
        if not can_moderate(live_session, user):
            raise NotModerator("only the host or an operator replies to a comment")
        reply_to = await _comment(session, live_session, reply_to_id)
    found = (await word_filter(session, runtime)).matches(clean)
    if found:
        raise CommentRefused("this comment contains words that are not allowed here", field="text")
    if not staff:
        count, retry_after = await count_hit(
            session,
            f"live:comment:{live_session.id}:{user.id}",
            window_seconds=COMMENT_RATE_WINDOW_SECONDS,
        )
        if count > COMMENT_RATE_LIMIT:
            raise TooManyRequests("you are commenting too fast; wait a moment", retry_after=retry_after)
    comment = Comment(
        session_id=live_session.id,
        user_id=user.id,
        user=user,
        anonymous_id=anonymous_id,
        text=clean,
        reply_to=reply_to,
        created_at=utcnow(),
    )
    session.add(comment)
    await session.flush()
    record_event(
        session,
        POSTED,
        actor_id=user.id,
        subjects=Subjects(user_id=user.id, anonymous_id=anonymous_id, session_id=live_session.id),
        payload=comment_payload(comment),
    )
    return comment


async def _comment(session: AsyncSession, live_session: LiveSession, comment_id: int) -> Comment:
    comment = await session.get(Comment, comment_id)
    if comment is None or comment.session_id != live_session.id or comment.deleted_at is not None:
        raise CommentNotFound(f"no comment {comment_id} in this room", comment_id=comment_id)
    return comment


async def recent_comments(
    session: AsyncSession, session_id: int, *, limit: int = RECENT_COMMENTS
) -> list[Comment]:
    """The latest ``limit`` comments not deleted, oldest first."""
    rows = (
        await session.scalars(
            select(Comment)
            .where(Comment.session_id == session_id, Comment.deleted_at.is_(None))
            .order_by(Comment.id.desc())
            .limit(limit)
        )
    ).all()
    return list(reversed(rows))


async def delete_comment(
    session: AsyncSession, live_session: LiveSession, comment_id: int, *, actor: User
) -> Comment:
    """Hide a comment from the room (kept, marked deleted); deleting it again changes nothing."""
    require_moderator(live_session, actor)
    comment = await session.get(Comment, comment_id)
    if comment is None or comment.session_id != live_session.id:
        raise CommentNotFound(f"no comment {comment_id} in this room", comment_id=comment_id)
    if comment.deleted_at is not None:
        return comment
    moved = await session.scalar(
        update(Comment)
        .where(Comment.id == comment.id, Comment.deleted_at.is_(None))
        .values(deleted_at=utcnow(), deleted_by_id=actor.id)
        .returning(Comment.id)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(comment)
    if moved is None:
        return comment  # deleted concurrently
    record_event(
        session,
        DELETED,
        actor_id=actor.id,
        subjects=Subjects(user_id=comment.user_id, session_id=live_session.id),
        payload={"comment_id": comment.id},
    )
    return comment


# --- mutes and bans -------------------------------------------------------------------------------


async def _subject(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFound(f"no user {user_id}", user_id=user_id)
    if is_staff(user):
        raise CannotModerateStaff("hosts and operators cannot be muted or banned")
    return user


async def mute_user(
    session: AsyncSession,
    live_session: LiveSession,
    user_id: int,
    minutes: int,
    *,
    actor: User,
    reason: str = "",
) -> Moderation:
    """Stop a neighbour posting in this room for ``minutes`` (they still watch); ``user.muted``."""
    require_moderator(live_session, actor)
    user = await _subject(session, user_id)
    minutes = max(1, min(minutes, MAX_MUTE_MINUTES))
    mute = Moderation(
        session_id=live_session.id,
        kind=ModerationKind.mute.value,
        user_id=user.id,
        until=utcnow() + timedelta(minutes=minutes),
        reason=reason[:200],
        actor_id=actor.id,
        created_at=utcnow(),
    )
    session.add(mute)
    await session.flush()
    record_event(
        session,
        MUTED,
        actor_id=actor.id,
        subjects=Subjects(user_id=user.id, session_id=live_session.id),
        payload={
            "minutes": minutes,
            "until": mute.until.isoformat() if mute.until else None,
            "reason": reason,
        },
    )
    return mute


async def device_ids(session: AsyncSession, live_session: LiveSession, user_id: int) -> set[str]:
    """The browsers this user was seen on: those they commented from here and those they logged in on."""
    commented = await session.scalars(
        select(Comment.anonymous_id)
        .where(
            Comment.session_id == live_session.id,
            Comment.user_id == user_id,
            Comment.anonymous_id.is_not(None),
        )
        .distinct()
    )
    # Identity's device table, read only: the anonymous ids linked to the account at login.
    logged_in = await session.scalars(select(Device.anonymous_id).where(Device.user_id == user_id))
    return {a for a in [*commented.all(), *logged_in.all()] if a}


async def ban_user(
    session: AsyncSession,
    live_session: LiveSession,
    user_id: int,
    *,
    actor: User,
    reason: str = "",
    anonymous_ids: set[str] | None = None,
) -> list[Moderation]:
    """Ban a neighbour from this room for the rest of the session, by account and by every device they
    were seen on, so logging out or in as someone else on the same phone does not bring them back.
    ``user.banned`` makes every process close their sockets; banning twice adds only new devices."""
    require_moderator(live_session, actor)
    user = await _subject(session, user_id)
    devices = await device_ids(session, live_session, user.id) | (anonymous_ids or set())
    existing = (
        await session.execute(
            select(Moderation.user_id, Moderation.anonymous_id).where(
                Moderation.session_id == live_session.id,
                Moderation.kind == ModerationKind.ban.value,
                Moderation.lifted_at.is_(None),
                or_(Moderation.user_id == user.id, Moderation.anonymous_id.in_(sorted(devices) or [""])),
            )
        )
    ).all()
    have_user = any(r[0] == user.id for r in existing)
    have_devices = {r[1] for r in existing if r[1]}
    now = utcnow()
    rows = []
    if not have_user:
        rows.append(Moderation(user_id=user.id))
    rows += [Moderation(anonymous_id=a) for a in sorted(devices - have_devices)]
    for row in rows:
        row.session_id, row.kind, row.reason = live_session.id, ModerationKind.ban.value, reason[:200]
        row.actor_id, row.created_at = actor.id, now
        session.add(row)
    await session.flush()
    record_event(
        session,
        BANNED,
        actor_id=actor.id,
        subjects=Subjects(user_id=user.id, session_id=live_session.id),
        payload={"user_id": user.id, "anonymous_ids": sorted(devices), "reason": reason},
    )
    return rows


async def ban_devices(session: AsyncSession, session_id: int, user_id: int, anonymous_ids: set[str]) -> int:
    """Extend a user's ban to browsers a room saw them watching on (their sockets' anonymous ids), so
    those stay out too; returns how many were new."""
    if not anonymous_ids:
        return 0
    have = set(
        (
            await session.scalars(
                select(Moderation.anonymous_id).where(
                    Moderation.session_id == session_id,
                    Moderation.kind == ModerationKind.ban.value,
                    Moderation.lifted_at.is_(None),
                    Moderation.anonymous_id.in_(sorted(anonymous_ids)),
                )
            )
        ).all()
    )
    new = sorted(anonymous_ids - have)
    for anonymous_id in new:
        session.add(
            Moderation(
                session_id=session_id,
                kind=ModerationKind.ban.value,
                anonymous_id=anonymous_id,
                reason=f"device of banned user {user_id}",
                created_at=utcnow(),
            )
        )
    await session.flush()
    return len(new)


async def lift(
    session: AsyncSession, live_session: LiveSession, user_id: int, kind: ModerationKind, *, actor: User
) -> int:
    """Lift a user's mutes or bans (a ban with the devices it covered); returns how many were lifted."""
    require_moderator(live_session, actor)
    devices = await device_ids(session, live_session, user_id) if kind is ModerationKind.ban else set()
    subject = Moderation.user_id == user_id
    if devices:
        subject = or_(subject, Moderation.anonymous_id.in_(sorted(devices)))
    result = await session.execute(
        update(Moderation)
        .where(
            Moderation.session_id == live_session.id,
            Moderation.kind == kind.value,
            Moderation.lifted_at.is_(None),
            subject,
        )
        .values(lifted_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    lifted = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if lifted:
        record_event(
            session,
            UNMUTED if kind is ModerationKind.mute else UNBANNED,
            actor_id=actor.id,
            subjects=Subjects(user_id=user_id, session_id=live_session.id),
            payload={"user_id": user_id, "anonymous_ids": sorted(devices)},
        )
    return lifted


# --- the operators' word list ---------------------------------------------------------------------


async def list_words(session: AsyncSession) -> list[SensitiveWord]:
    return list((await session.scalars(select(SensitiveWord).order_by(SensitiveWord.word))).all())


async def add_word(session: AsyncSession, word: str, *, actor: User) -> SensitiveWord:
    """Refuse ``word`` in comments from now on (in every process: see ``word_filter``)."""
    clean = " ".join(word.split())
    if not normalise(clean):
        raise InvalidComment("a word needs at least one letter or digit", field="word")
    row = SensitiveWord(word=clean, created_by_id=actor.id, created_at=utcnow())
    try:
        async with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise SensitiveWordExists(f"“{clean}” is already on the list", field="word") from None
    record_event(session, WORD_ADDED, actor_id=actor.id, payload={"word_id": row.id})
    _word_list_changed()
    return row


async def remove_word(session: AsyncSession, word_id: int, *, actor: User) -> None:
    row = await session.get(SensitiveWord, word_id)
    if row is None:
        raise SensitiveWordNotFound(f"no word {word_id}", word_id=word_id)
    await session.delete(row)
    await session.flush()
    record_event(session, WORD_REMOVED, actor_id=actor.id, payload={"word_id": word_id})
    _word_list_changed()
