"""Fixtures for the core's own tests: a PostgreSQL-only database for the tests of PostgreSQL behaviour
(transaction ordering, row locks) that has no SQLite counterpart worth running, and a Redis hub that does
not drag a database along (so hub tests run once, not once per database)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from linli.core.db import Base, Database
from linli.core.hub import RedisHub


@pytest.fixture
async def pg_db(pg_database_url: str) -> AsyncIterator[Database]:
    """The run's migrated PostgreSQL database, emptied after the test."""
    database = Database(pg_database_url)
    yield database
    await database.dispose()
    cleanup = Database(pg_database_url, pool=False)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with cleanup.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await cleanup.dispose()


@pytest.fixture
def hub_prefix() -> str:
    """This test's own Redis key prefix."""
    return f"linli-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def hub(redis_url: str, hub_prefix: str) -> AsyncIterator[RedisHub]:
    redis_hub = RedisHub(redis_url, prefix=hub_prefix)
    await redis_hub.start()
    yield redis_hub
    await redis_hub.close()
