"""Identity's verbs: login codes, logins and sessions, profiles, roles and device stitching.

Two verbs own their transactions instead of flushing into the request's: ``send_login_code`` (the code
must be committed before another party — the phone — sees it) and ``check_code`` (a wrong try must stay
counted although the request then fails). Both must run before the request's session executes a query:
SQLite takes its write lock at BEGIN, so a second transaction would wait on the first.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.clock import utcnow
from linli.core.config import Settings
from linli.core.db import Database
from linli.core.events import Subjects, record_event
from linli.core.ratelimit import enforce
from linli.core.runtime import Runtime
from linli.identity import events
from linli.identity.errors import (
    AccountDisabled,
    CannotRemoveOwnOperatorRole,
    CodeAlreadyUsed,
    CodeBurned,
    CodeExpired,
    InvalidCode,
    InvalidNickname,
    InvalidPhone,
    MalformedCode,
    NoCodeRequested,
    UnknownRole,
    UserNotFound,
)
from linli.identity.models import AuthSession, Device, LoginCode, Role, User, UserRole
from linli.identity.senders import get_sender, mask_phone
from linli.identity.tokens import hash_token, issue_session

# [0-9], not \d: Python's \d also matches Arabic-Indic and full-width digits.
PHONE_RE = re.compile(r"1[3-9][0-9]{9}")
CODE_RE = re.compile(r"[0-9]{6}")
NICKNAME_MAX = 20


# --- input -------------------------------------------------------------------------------------------


def normalize_phone(raw: str) -> str:
    """A mainland China mobile number as 11 digits; spaces, dashes and a ``+86`` prefix are tolerated."""
    phone = re.sub(r"[\s-]", "", raw or "")
    phone = phone.removeprefix("+86")
    if not PHONE_RE.fullmatch(phone):
        raise InvalidPhone("enter a mainland China mobile number: 11 digits starting with 13–19")
    return phone


def clean_nickname(raw: str) -> str:
    nickname = (raw or "").strip()
    if not 1 <= len(nickname) <= NICKNAME_MAX:
        raise InvalidNickname(f"a nickname has 1 to {NICKNAME_MAX} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in nickname):
        raise InvalidNickname("a nickname cannot contain control characters")
    return nickname


def parse_roles(values: Iterable[str]) -> set[Role]:
    roles = set()
    for value in values:
        try:
            roles.add(Role(value))
        except ValueError:
            known = ", ".join(r.value for r in Role)
            raise UnknownRole(f"unknown role {value!r}; roles are {known}") from None
    return roles


# --- login codes -------------------------------------------------------------------------------------


def hash_code(secret: str, phone: str, code: str) -> str:
    """Codes are stored only as an HMAC under the secret key: a leaked table cannot be brute-forced
    offline, and a code is bound to the phone it was sent to."""
    return hmac.new(secret.encode(), f"login-code:{phone}:{code}".encode(), hashlib.sha256).hexdigest()


async def issue_code(session: AsyncSession, settings: Settings, *, phone: str, client_ip: str | None) -> str:
    """Store a fresh 6-digit code for ``phone`` (as its HMAC) and return it in clear, to be sent after
    commit. It supersedes every earlier code: ``check_code`` looks only at the newest one."""
    code = f"{secrets.randbelow(1_000_000):06d}"
    now = utcnow()
    row = LoginCode(
        phone=phone,
        code_hash=hash_code(settings.resolved_secret_key(), phone, code),
        created_at=now,
        expires_at=now + timedelta(seconds=settings.login_code_ttl_seconds),
        attempts=0,
        client_ip=client_ip,
    )
    session.add(row)
    await session.flush()
    user_id = await session.scalar(select(User.id).where(User.phone == phone))
    record_event(
        session,
        events.CODE_REQUESTED,
        subjects=Subjects(user_id=user_id),
        payload={"phone": mask_phone(phone), "code_id": row.id, "expires_at": row.expires_at.isoformat()},
    )
    await session.flush()
    return code


async def limit_code_requests(db: Database, settings: Settings, *, phone: str, client: str) -> None:
    """Count a code request against the per-client and per-phone limits (each in its own committed
    transaction); raises ``TooManyRequests`` with a retry delay past any of them."""
    await enforce(
        db,
        f"identity:code:client:{client}",
        limit=settings.rate_code_per_client_per_hour,
        window_seconds=3600,
        message="too many code requests from this network; try again later",
    )
    await enforce(
        db,
        f"identity:code:phone:{phone}",
        limit=settings.rate_code_per_phone_per_minute,
        window_seconds=60,
        message="a code was just sent to this number; wait a minute before asking again",
    )
    await enforce(
        db,
        f"identity:code:phone:{phone}",
        limit=settings.rate_code_per_phone_per_hour,
        window_seconds=3600,
        message="too many codes were requested for this number; try again later",
    )


async def send_login_code(runtime: Runtime, *, phone: str, client: str) -> None:
    """Rate-limit, store and send a new login code for an already normalised ``phone``.

    Owns its transactions: the code is committed before the sender hands it to the phone, so a code
    that arrives always works. Run it before the request's session executes any query."""
    await limit_code_requests(runtime.db, runtime.settings, phone=phone, client=client)
    async with runtime.db.sessionmaker() as session:
        code = await issue_code(session, runtime.settings, phone=phone, client_ip=client)
        await session.commit()
    await get_sender(runtime).send(phone, code)


async def check_code(db: Database, settings: Settings, *, phone: str, code: str, client: str) -> int:
    """Check ``code`` against the newest code sent to ``phone``; returns that code's id for ``log_in``.

    Owns its transactions and commits them whatever the outcome, so wrong tries stay counted although
    the request then fails: first the per-client and per-phone verify limits, then the code's attempt
    counter, bumped under a row lock (PostgreSQL) or the write lock (SQLite); the last allowed wrong try
    burns the code. Run it before the request's session executes any query."""
    code = (code or "").strip()
    if not CODE_RE.fullmatch(code):
        raise MalformedCode("enter the 6-digit code from the text message")
    await enforce(
        db,
        f"identity:verify:client:{client}",
        limit=settings.rate_verify_per_client_per_10min,
        window_seconds=600,
        message="too many login attempts from this network; try again later",
    )
    await enforce(
        db,
        f"identity:verify:phone:{phone}",
        limit=settings.rate_verify_per_phone_per_10min,
        window_seconds=600,
        message="too many login attempts for this number; try again later",
    )
    async with db.sessionmaker() as session:
        query = select(LoginCode).where(LoginCode.phone == phone).order_by(LoginCode.id.desc()).limit(1)
        if not db.is_sqlite:
            query = query.with_for_update()
        row = await session.scalar(query)
        now = utcnow()
        if row is None:
            raise NoCodeRequested("no code was sent to this number; ask for one first")
        if row.consumed_at is not None:
            raise CodeAlreadyUsed("this code has already been used; ask for a new one")
        if row.burned_at is not None:
            raise CodeBurned("too many wrong tries: this code no longer works; ask for a new one")
        if row.expires_at <= now:
            raise CodeExpired("this code has expired; ask for a new one")
        if hmac.compare_digest(row.code_hash, hash_code(settings.resolved_secret_key(), phone, code)):
            return row.id
        row.attempts += 1
        left = settings.login_code_max_attempts - row.attempts
        if left <= 0:
            row.burned_at = now
            record_event(
                session,
                events.CODE_BURNED,
                payload={"phone": mask_phone(phone), "code_id": row.id, "attempts": row.attempts},
            )
        await session.commit()
    if left <= 0:
        raise CodeBurned(
            "wrong code, and that was the last try: this code no longer works; ask for a new one"
        )
    raise InvalidCode(f"wrong code; {left} tries left", attempts_left=left)


# --- logins and sessions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    user: User
    token: str
    registered: bool


async def log_in(
    session: AsyncSession,
    settings: Settings,
    *,
    phone: str,
    code_id: int,
    anonymous_id: str | None,
    user_agent: str | None = None,
    client_ip: str | None = None,
    via: str = "api",
) -> Login:
    """Consume the code ``check_code`` accepted and log its phone in: the user is created (customer) on
    first login, the device's anonymous id is linked to them, and a session token is issued.

    The code is consumed by a conditional update, so it logs in once however many requests race."""
    now = utcnow()
    consumed = await session.scalar(
        update(LoginCode)
        .where(
            LoginCode.id == code_id,
            LoginCode.phone == phone,
            LoginCode.consumed_at.is_(None),
            LoginCode.burned_at.is_(None),
            LoginCode.expires_at > now,
        )
        .values(consumed_at=now)
        .returning(LoginCode.id)
    )
    if consumed is None:
        raise CodeAlreadyUsed("this code has already been used; ask for a new one")
    user, registered = await _get_or_create_user(session, phone)
    if registered:
        record_event(
            session,
            events.USER_REGISTERED,
            actor_id=user.id,
            subjects=Subjects(user_id=user.id, anonymous_id=anonymous_id),
            payload={"via": via, "roles": sorted(user.role_names)},
        )
    if not user.is_active:
        raise AccountDisabled("this account has been disabled")
    user.last_login_at = now
    previous_user_id = None
    if anonymous_id:
        previous_user_id = await link_device(
            session, anonymous_id=anonymous_id, user=user, user_agent=user_agent
        )
    token = await issue_session(
        session,
        user,
        ttl_days=settings.session_ttl_days,
        anonymous_id=anonymous_id,
        user_agent=user_agent,
        client_ip=client_ip,
    )
    record_event(
        session,
        events.LOGGED_IN,
        actor_id=user.id,
        subjects=Subjects(user_id=user.id, anonymous_id=anonymous_id),
        payload={"via": via, "registered": registered, "previous_device_user_id": previous_user_id},
    )
    await session.flush()
    return Login(user=user, token=token, registered=registered)


async def link_device(
    session: AsyncSession, *, anonymous_id: str, user: User, user_agent: str | None = None
) -> int | None:
    """Record that the browser behind ``anonymous_id`` is ``user``'s (identity stitching). Returns the
    user it belonged to before when that was someone else; the device follows its latest login."""
    now = utcnow()
    agent = (user_agent or "")[:255] or None
    query = select(Device).where(Device.anonymous_id == anonymous_id)
    device = await session.scalar(query)
    if device is None:
        device = Device(
            anonymous_id=anonymous_id, user_id=user.id, first_seen_at=now, last_seen_at=now, user_agent=agent
        )
        try:
            async with session.begin_nested():
                session.add(device)
            return None
        except IntegrityError:
            # Another request of the same browser registered it a moment ago.
            device = (await session.execute(query)).scalar_one()
    previous = device.user_id if device.user_id not in (None, user.id) else None
    device.user_id = user.id
    device.last_seen_at = now
    if agent:
        device.user_agent = agent
    await session.flush()
    return previous


async def log_out(session: AsyncSession, token: str) -> int | None:
    """Revoke the session behind ``token``; returns its user's id, or None when it was not live."""
    row = (
        await session.execute(
            update(AuthSession)
            .where(AuthSession.token_hash == hash_token(token), AuthSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .returning(AuthSession.user_id, AuthSession.anonymous_id)
        )
    ).first()
    if row is None:
        return None
    user_id, anonymous_id = row
    record_event(
        session,
        events.LOGGED_OUT,
        actor_id=user_id,
        subjects=Subjects(user_id=user_id, anonymous_id=anonymous_id),
    )
    await session.flush()
    return int(user_id)


# --- users, profiles, roles --------------------------------------------------------------------------


async def _get_or_create_user(session: AsyncSession, phone: str, *, nickname: str = "") -> tuple[User, bool]:
    query = select(User).where(User.phone == phone)
    user = await session.scalar(query)
    if user is not None:
        return user, False
    user = User(phone=phone, nickname=nickname, is_active=True, created_at=utcnow())
    user.roles = [UserRole(role=Role.customer.value)]
    try:
        async with session.begin_nested():
            session.add(user)
    except IntegrityError:
        # Registered concurrently (a login racing the seed or the CLI): use theirs.
        return (await session.execute(query)).scalar_one(), False
    return user, True


async def update_profile(session: AsyncSession, user: User, *, nickname: str) -> User:
    """Change what a neighbour calls themselves; 1–20 characters, no control characters."""
    nickname = clean_nickname(nickname)
    if nickname != user.nickname:
        user.nickname = nickname
        record_event(
            session,
            events.PROFILE_UPDATED,
            actor_id=user.id,
            subjects=Subjects(user_id=user.id),
            payload={"fields": ["nickname"]},
        )
        await session.flush()
    return user


def _apply_roles(user: User, wanted: set[str]) -> tuple[list[str], list[str]]:
    current = user.role_names
    added = sorted(wanted - current)
    removed = sorted(current - wanted)
    if added or removed:
        user.roles = [r for r in user.roles if r.role in wanted] + [UserRole(role=name) for name in added]
    return added, removed


async def set_roles(session: AsyncSession, user_id: int, roles: Iterable[Role], *, actor: User) -> User:
    """Replace a user's roles with ``roles``; customer is every user's base role and always kept.
    An operator cannot take away their own operator role, so nobody locks themselves out by mistake."""
    user = await session.get(User, user_id)
    if user is None:
        raise UserNotFound(f"no user {user_id}")
    wanted = {r.value for r in roles} | {Role.customer.value}
    if user.id == actor.id and user.has_role(Role.operator) and Role.operator.value not in wanted:
        raise CannotRemoveOwnOperatorRole("you cannot remove your own operator role; ask another operator")
    added, removed = _apply_roles(user, wanted)
    if added or removed:
        record_event(
            session,
            events.ROLES_CHANGED,
            actor_id=actor.id,
            subjects=Subjects(user_id=user.id),
            payload={"added": added, "removed": removed, "roles": sorted(wanted)},
        )
        await session.flush()
    return user


async def ensure_user(
    session: AsyncSession, phone: str, *, nickname: str | None = None, roles: Iterable[Role] = ()
) -> User:
    """Create the user for ``phone`` (with ``nickname``, if they have none yet) or add ``roles`` to
    theirs; never removes a role. Idempotent: repeating a call changes and records nothing."""
    phone = normalize_phone(phone)
    user, created = await _get_or_create_user(
        session, phone, nickname=clean_nickname(nickname) if nickname else ""
    )
    if created:
        record_event(
            session,
            events.USER_REGISTERED,
            subjects=Subjects(user_id=user.id),
            payload={"via": "ensure_user"},
        )
    elif nickname and not user.nickname:
        user.nickname = clean_nickname(nickname)
    added, _ = _apply_roles(user, user.role_names | {r.value for r in roles})
    if added:
        record_event(
            session,
            events.ROLES_CHANGED,
            subjects=Subjects(user_id=user.id),
            payload={"added": added, "removed": [], "roles": sorted(user.role_names)},
        )
    await session.flush()
    return user


@dataclass(frozen=True)
class UserList:
    items: list[User]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


async def list_users(session: AsyncSession, *, q: str = "", page: int = 1, per_page: int = 20) -> UserList:
    """Users, newest first, whose phone or nickname contains ``q``; one page of them and the total."""
    page, per_page = max(1, page), min(max(1, per_page), 100)
    condition = None
    q = (q or "").strip()
    if q:
        condition = or_(User.phone.contains(q, autoescape=True), User.nickname.icontains(q, autoescape=True))
    total_query = select(func.count(User.id))
    items_query = select(User).order_by(User.id.desc()).offset((page - 1) * per_page).limit(per_page)
    if condition is not None:
        total_query = total_query.where(condition)
        items_query = items_query.where(condition)
    total = await session.scalar(total_query) or 0
    items = list((await session.scalars(items_query)).all())
    return UserList(items=items, total=total, page=page, per_page=per_page)
