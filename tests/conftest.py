"""Test fixtures: every storage test runs on SQLite and on PostgreSQL, schema built by the migrations.

PostgreSQL: one fresh database per test run (dropped at the end), migrated once, tables truncated after
each test. SQLite: one migrated template file per run, copied for each test. Redis: a key prefix per
test. Without the services the PostgreSQL/Redis legs skip, unless ``LINLI_REQUIRE_SERVICES=1`` (CI),
where an unreachable service fails the run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text

from linli.core.config import Settings
from linli.core.db import Base, Database
from linli.core.hub import LocalHub, RedisHub
from linli.core.migrate import upgrade
from linli.core.runtime import Runtime
from linli.identity.models import Role
from linli.models import import_all_models
from tests.factories import Caller, make_user_with_token

PG_ADMIN_DSN = os.environ.get("LINLI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LINLI_TEST_REDIS", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("LINLI_REQUIRE_SERVICES") == "1"

import_all_models()


def _service_missing(what: str, exc: BaseException) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (LINLI_REQUIRE_SERVICES=1) but unreachable: {exc}")
    pytest.skip(f"{what} unreachable: {exc}")


async def _pg_admin_async(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


_pg_admin = _pg_admin_async


def pg_admin(sql: str) -> None:
    """Run one administrative statement (CREATE/DROP DATABASE) on the PostgreSQL server.

    In a thread of its own, so it works even where an event loop is already running (Playwright)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _pg_admin_async(sql)).result()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    name = f"linli_test_{uuid.uuid4().hex[:12]}"
    try:
        pg_admin(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        _service_missing("PostgreSQL", exc)
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    upgrade(url)
    yield url
    pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "linli.db"
        shutil.copy(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url: str = request.getfixturevalue("pg_database_url")
    yield url
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    asyncio.run(_truncate(url, tables))


async def _truncate(url: str, tables: str) -> None:
    db = Database(url, pool=False)
    async with db.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await db.dispose()


@pytest.fixture
async def operator(db: Database) -> Caller:
    user, token = await make_user_with_token(db, roles=(Role.operator,), nickname="运营小王")
    return Caller(user, token)


@pytest.fixture
async def customer(db: Database) -> Caller:
    user, token = await make_user_with_token(db, nickname="李姐")
    return Caller(user, token)


@pytest.fixture
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        _service_missing("Redis", exc)
    return REDIS_URL


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        var_dir=tmp_path / "var",
        secret_key="test-secret-key",
        run_workers_in_app=False,
        seed_demo=False,
        login_code_sender="memory",
        redis_prefix=f"linli-test-{uuid.uuid4().hex[:8]}",
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def runtime(settings: Settings, db: Database) -> AsyncIterator[Runtime]:
    rt = Runtime(settings=settings, db=db, hub=LocalHub())
    await rt.start()
    yield rt
    await rt.hub.close()


@pytest.fixture
async def redis_hub(redis_url: str, settings: Settings) -> AsyncIterator[RedisHub]:
    hub = RedisHub(redis_url, prefix=settings.redis_prefix)
    await hub.start()
    yield hub
    await hub.close()


@pytest.fixture
async def app(settings: Settings, runtime: Runtime) -> AsyncIterator[FastAPI]:
    from linli.web.app import create_app

    application = create_app(settings, runtime=runtime)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Browser tests run last: Playwright's sync API keeps its own event loop for the whole session,
    which must not overlap the per-test loops of the async tests."""
    browser, other = [], []
    for item in items:
        if "tests/browser/" in item.nodeid:
            item.add_marker(pytest.mark.browser)
            browser.append(item)
        else:
            other.append(item)
    items[:] = other + browser
