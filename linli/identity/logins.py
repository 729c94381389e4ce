"""Who is behind a token, remembered for a few seconds per process.

Every authenticated request used to open a transaction for one look-up (token → user and roles): on the
hot paths (placing an order, posting a comment) that round trip and its ``BEGIN``/``COMMIT`` cost more
than the work itself. A hit here costs a ``merge(load=False)`` of the remembered user into the
request's session instead — no database at all — and that copy behaves as if it had been loaded (a
handler that changes it writes its changes as usual).

What may make a login wrong is forgotten rather than waited out:

- in this process, right after the commit that changed it (``Database.commit_hooks``): a logout, a
  change of roles or profile, and the next request looks the token up again;
- in every other process, through the hub: the ``identity.logins`` consumer publishes the user's id
  on ``CHANNEL`` for each such event, and each process's listener forgets that user;
- in any case after ``ttl`` seconds (``LINLI_AUTH_CACHE_SECONDS``; 0 turns the cache off), and never
  past the session's own expiry.

Only tokens that named an active user are remembered, so a wrong or revoked token always costs the
look-up (nothing an attacker sends can fill the cache).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from datetime import datetime

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from linli.core.clock import utcnow
from linli.core.consumers import Consumer
from linli.core.db import Database
from linli.core.events import Event
from linli.core.hub import Hub, Subscription
from linli.core.runtime import Runtime
from linli.identity import events
from linli.identity.models import AuthSession, User, UserRole

log = logging.getLogger(__name__)

CHANNEL = "identity:logins"
CONSUMER = "identity.logins"
# Events after which a remembered login may be wrong (revoked, other roles, another nickname).
CHANGES = frozenset({events.LOGGED_OUT, events.ROLES_CHANGED, events.PROFILE_UPDATED})
MAX_ENTRIES = 100_000
EXTRAS_KEY = "identity.login_cache"


class LoginCache:
    """Token hash → (the user as loaded, with roles; when to look again; the session's expiry)."""

    def __init__(self, ttl_seconds: float, *, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[User, float, datetime]] = OrderedDict()
        self._tokens_of: dict[int, set[str]] = {}
        self._listener: asyncio.Task[None] | None = None
        # Look-ups waiting for the next batch (token hash → its future), and the task that runs them.
        self._wanted: dict[str, asyncio.Future[User | None]] = {}
        self._looking: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token_hash: str) -> User | None:
        """The remembered (detached) user behind ``token_hash``, if still fresh; never modify it."""
        entry = self._entries.get(token_hash)
        if entry is None:
            return None
        user, fresh_until, expires_at = entry
        if time.monotonic() >= fresh_until or utcnow() >= expires_at:
            self.forget_token(token_hash)
            return None
        return user

    def put(self, token_hash: str, user: User, expires_at: datetime) -> None:
        """Remember a copy of ``user`` (as loaded, roles too) for ``token_hash`` until the ttl or
        ``expires_at``; ``user`` itself stays with its session."""
        self._remember(token_hash, _detached_copy(user), expires_at)

    def forget_token(self, token_hash: str) -> None:
        entry = self._entries.pop(token_hash, None)
        if entry is not None:
            tokens = self._tokens_of.get(entry[0].id)
            if tokens is not None:
                tokens.discard(token_hash)
                if not tokens:
                    del self._tokens_of[entry[0].id]

    def forget_user(self, user_id: int) -> None:
        for token_hash in list(self._tokens_of.get(user_id, ())):
            self.forget_token(token_hash)

    def on_commit(self, appended: list[tuple[str, int | None]]) -> None:
        """``Database.commit_hooks``: forget the users whose logins a commit in this process changed."""
        for event_type, user_id in appended:
            if event_type in CHANGES and user_id is not None:
                self.forget_user(user_id)

    # --- looking tokens up, many at a time ------------------------------------------------------------

    async def look_up(self, db: Database, token_hash: str) -> User | None:
        """The (detached, never to be modified) active user behind a live token, or None: remembered,
        or looked up together with the other tokens asked for meanwhile — one query for all of them,
        outside any request's transaction."""
        user = self.get(token_hash)
        if user is not None:
            return user
        future = self._wanted.get(token_hash)
        if future is None:
            future = self._wanted[token_hash] = asyncio.get_running_loop().create_future()
            if self._looking is None or self._looking.done():
                self._looking = asyncio.create_task(self._look_up_wanted(db), name="identity-logins")
        return await asyncio.shield(future)

    async def _look_up_wanted(self, db: Database) -> None:
        while self._wanted:
            wanted, self._wanted = self._wanted, {}
            try:
                found = await _live_logins(db, sorted(wanted))
            except Exception as exc:
                for future in wanted.values():
                    if not future.done():
                        future.set_exception(exc)
                continue
            for token_hash, future in wanted.items():
                login = found.get(token_hash)
                if login is not None:
                    self._remember(token_hash, *login)
                if not future.done():
                    future.set_result(login[0] if login is not None else None)

    def _remember(self, token_hash: str, user: User, expires_at: datetime) -> None:
        if not self.enabled:
            return
        self.forget_token(token_hash)
        self._entries[token_hash] = (user, time.monotonic() + self.ttl, expires_at)
        self._tokens_of.setdefault(user.id, set()).add(token_hash)
        while len(self._entries) > self.max_entries:
            self.forget_token(next(iter(self._entries)))

    # --- other processes' changes ---------------------------------------------------------------------

    def listen(self, hub: Hub) -> None:
        """Forget what other processes report, from now on (idempotent; needs a running loop)."""
        if self._listener is None or self._listener.done():
            self._listener = asyncio.get_running_loop().create_task(self._listen(hub))

    async def _listen(self, hub: Hub) -> None:
        subscription: Subscription = await hub.subscribe(CHANNEL, maxsize=10_000)
        try:
            while True:
                data = await subscription.get()
                if subscription.lagged:
                    # Some reports were lost: whom to forget is unknown, so forget everyone.
                    subscription.lagged = False
                    self.clear()
                try:
                    self.forget_user(int(orjson.loads(data)["user_id"]))
                except (ValueError, KeyError, TypeError):
                    log.warning("undecodable login change dropped")
        finally:
            with contextlib.suppress(Exception):
                await subscription.close()

    def clear(self) -> None:
        self._entries.clear()
        self._tokens_of.clear()

    async def close(self) -> None:
        if self._looking is not None:
            self._looking.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._looking
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        self.clear()


async def _live_logins(db: Database, token_hashes: list[str]) -> dict[str, tuple[User, datetime]]:
    """The active users behind those of ``token_hashes`` that are live, with their sessions' expiry,
    roles loaded, detached (the session is closed, not committed: nothing is expired)."""
    async with db.sessionmaker() as session:
        rows = await session.execute(
            select(User, AuthSession.token_hash, AuthSession.expires_at)
            .options(joinedload(User.roles))
            .join(AuthSession, AuthSession.user_id == User.id)
            .where(
                AuthSession.token_hash.in_(token_hashes),
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > utcnow(),
                User.is_active.is_(True),
            )
        )
        return {token_hash: (user, expires_at) for user, token_hash, expires_at in rows.unique().all()}


def _detached_copy(user: User) -> User:
    """A copy of ``user`` and its roles that belongs to no session and has no changes: what
    ``merge(load=False)`` takes, as if just loaded."""
    copy = User(**{column.key: getattr(user, column.key) for column in User.__table__.columns})
    make_transient_to_detached(copy)
    roles = []
    for role in user.roles:
        role_copy = UserRole(
            **{column.key: getattr(role, column.key) for column in UserRole.__table__.columns}
        )
        make_transient_to_detached(role_copy)
        roles.append(role_copy)
    set_committed_value(copy, "roles", roles)
    return copy


def logins_of(runtime: Runtime) -> LoginCache:
    """This process's login cache (created on first use, hooked to the database's commits)."""
    cache = runtime.extras.get(EXTRAS_KEY)
    if cache is None:
        cache = runtime.extras[EXTRAS_KEY] = LoginCache(runtime.settings.auth_cache_seconds)
        runtime.db.commit_hooks.append(cache.on_commit)
    assert isinstance(cache, LoginCache)
    return cache


async def user_in(session: AsyncSession, template: User) -> User:
    """``template`` (a remembered, detached user) as a persistent object of ``session``, without a query."""
    return await session.merge(template, load=False)


def logins_consumer(hub: Hub) -> Consumer:
    """Tells every process, through the hub, whose logins changed (they forget them)."""

    async def publish(_session: AsyncSession, event: Event) -> None:
        if event.user_id is not None:
            await hub.publish(CHANNEL, orjson.dumps({"user_id": event.user_id}))

    return Consumer(name=CONSUMER, handler=publish, types=CHANGES, from_beginning=False)
