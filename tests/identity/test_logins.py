"""The login cache: a remembered token costs no query, and what changes a login is forgotten at once —
in the process that changed it through the commit hook, in the others through the hub."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx
import orjson
from sqlalchemy import event, update

from linli.core.clock import utcnow
from linli.core.db import Database
from linli.core.hub import RedisHub
from linli.core.runtime import Runtime
from linli.identity import service
from linli.identity.logins import CHANNEL, LoginCache, logins_consumer, logins_of
from linli.identity.models import AuthSession, Role, User
from linli.identity.tokens import hash_token
from tests.factories import bearer, make_user_with_token


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements the block sends."""
    seen: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)


async def test_a_remembered_login_costs_no_query(client: httpx.AsyncClient, db: Database) -> None:
    user, token = await make_user_with_token(db, roles=(Role.host,), nickname="阿花")
    with statements(db) as first:
        looked_up = await client.get("/api/v1/me", headers=bearer(token))
    with statements(db) as second:
        remembered = await client.get("/api/v1/me", headers=bearer(token))

    assert looked_up.status_code == remembered.status_code == 200
    assert remembered.json() == looked_up.json()
    assert remembered.json()["roles"] == ["customer", "host"]
    assert any("auth_sessions" in s for s in first)
    assert second == []


async def test_a_remembered_user_still_saves_changes(client: httpx.AsyncClient, db: Database) -> None:
    user, token = await make_user_with_token(db, nickname="旧名")
    await client.get("/api/v1/me", headers=bearer(token))  # remembered from now on

    changed = await client.patch("/api/v1/me", json={"nickname": "新名"}, headers=bearer(token))

    assert changed.json()["nickname"] == "新名"
    async with db.sessionmaker() as session:
        assert (await session.get(User, user.id)).nickname == "新名"  # type: ignore[union-attr]
    # The profile change was forgotten at once: the next request reads the new name.
    assert (await client.get("/api/v1/me", headers=bearer(token))).json()["nickname"] == "新名"


async def test_logout_is_forgotten_at_once(client: httpx.AsyncClient, db: Database) -> None:
    _, token = await make_user_with_token(db)
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200

    assert (await client.post("/api/v1/auth/logout", headers=bearer(token))).status_code == 204

    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 401


async def test_a_role_taken_away_applies_to_the_next_request(client: httpx.AsyncClient, db: Database) -> None:
    operator, _ = await make_user_with_token(db, roles=(Role.operator,))
    host, token = await make_user_with_token(db, roles=(Role.host,))
    assert "host" in (await client.get("/api/v1/me", headers=bearer(token))).json()["roles"]

    async with db.sessionmaker() as session:
        actor = await session.get(User, operator.id)
        assert actor is not None
        await service.set_roles(session, host.id, [], actor=actor)
        await session.commit()

    assert (await client.get("/api/v1/me", headers=bearer(token))).json()["roles"] == ["customer"]


async def test_a_revocation_behind_the_verbs_back_waits_out_the_ttl(
    client: httpx.AsyncClient, db: Database, runtime: Runtime
) -> None:
    """Only the verbs tell the cache; a row changed by hand is seen when the entry runs out."""
    runtime.settings.auth_cache_seconds = 0.3
    _, token = await make_user_with_token(db)
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200
    async with db.sessionmaker() as session:
        await session.execute(
            update(AuthSession).where(AuthSession.token_hash == hash_token(token)).values(revoked_at=utcnow())
        )
        await session.commit()

    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200
    await asyncio.sleep(0.35)
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 401


async def test_never_remembered_past_the_sessions_own_expiry(
    client: httpx.AsyncClient, db: Database, runtime: Runtime
) -> None:
    _, token = await make_user_with_token(db)
    async with db.sessionmaker() as session:
        await session.execute(
            update(AuthSession)
            .where(AuthSession.token_hash == hash_token(token))
            .values(expires_at=utcnow() + timedelta(milliseconds=300))
        )
        await session.commit()
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200
    await asyncio.sleep(0.35)
    assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 401


async def test_wrong_tokens_are_never_remembered(client: httpx.AsyncClient, runtime: Runtime) -> None:
    for _ in range(20):
        response = await client.get("/api/v1/me", headers=bearer(uuid.uuid4().hex))
        assert response.status_code == 401
    assert len(logins_of(runtime)) == 0


async def test_a_ttl_of_zero_turns_it_off(client: httpx.AsyncClient, db: Database, runtime: Runtime) -> None:
    runtime.settings.auth_cache_seconds = 0
    _, token = await make_user_with_token(db)
    await client.get("/api/v1/me", headers=bearer(token))
    with statements(db) as again:
        assert (await client.get("/api/v1/me", headers=bearer(token))).status_code == 200
    assert any("auth_sessions" in s for s in again)
    assert len(logins_of(runtime)) == 0


def _user(user_id: int) -> User:
    user = User(id=user_id, phone=f"1380000{user_id:04d}", nickname="", is_active=True, created_at=utcnow())
    user.roles = []
    return user


def test_the_oldest_entries_make_room() -> None:
    cache = LoginCache(60, max_entries=3)
    expires = utcnow() + timedelta(days=1)
    for n in range(5):
        cache.put(f"t{n}", _user(n), expires)
    assert len(cache) == 3
    assert cache.get("t0") is None
    assert cache.get("t1") is None
    assert cache.get("t4") is not None
    cache.forget_user(4)
    assert cache.get("t4") is None
    assert len(cache) == 2


async def test_another_process_hears_of_a_change_through_redis(redis_url: str) -> None:
    """Process B remembers user 7; process A's consumer publishes the logout; B forgets user 7 only."""
    prefix = f"linli-test-{uuid.uuid4().hex[:8]}"
    hub_a, hub_b = RedisHub(redis_url, prefix=prefix), RedisHub(redis_url, prefix=prefix)
    await hub_a.start()
    await hub_b.start()
    cache_b = LoginCache(60)
    try:
        expires = utcnow() + timedelta(days=1)
        cache_b.put("seven", _user(7), expires)
        cache_b.put("eight", _user(8), expires)
        cache_b.listen(hub_b)
        listening = await hub_a.subscribe(CHANNEL)  # a second subscriber: the channel is live on Redis
        await asyncio.sleep(0.2)

        publish = logins_consumer(hub_a).handler
        logout = type("E", (), {"user_id": 7, "type": "identity.logged_out"})()
        await publish(None, logout)  # type: ignore[arg-type]
        assert orjson.loads(await asyncio.wait_for(listening.get(), 5)) == {"user_id": 7}
        for _ in range(50):
            if cache_b.get("seven") is None:
                break
            await asyncio.sleep(0.05)
        assert cache_b.get("seven") is None
        assert cache_b.get("eight") is not None
        await listening.close()
    finally:
        await cache_b.close()
        await hub_a.close()
        await hub_b.close()
