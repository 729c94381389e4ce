"""SQLite's one writer: transactions of a process queue for its single connection in order, and a request
that waited too long is refused cleanly (503), never a 500 — what a flash sale on SQLite needs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select, text

from linli.core import db as core_db
from linli.core.config import Settings
from linli.core.consumers import ConsumerCursor
from linli.core.db import Database, DatabaseBusy
from linli.core.events import record_event
from linli.core.runtime import Runtime


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "queue.db"
    path.write_bytes(sqlite_template.read_bytes())
    return f"sqlite+aiosqlite:///{path}"


async def test_parallel_writers_queue_in_one_process_and_all_commit(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:

        async def write(n: int) -> None:
            async for session in db.session():
                record_event(session, "test.queued", payload={"n": n})
                await session.flush()
                await asyncio.sleep(0.001)  # other writers get the loop meanwhile, and wait

        await asyncio.gather(*(write(n) for n in range(40)))
        async with db.sessionmaker() as session:
            count = await session.scalar(text("SELECT count(*) FROM events WHERE type = 'test.queued'"))
        assert count == 40
        assert db.engine.pool.size() == 1  # type: ignore[attr-defined]
    finally:
        await db.dispose()


async def test_a_transaction_that_waits_too_long_is_refused_as_busy(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core_db, "SQLITE_QUEUE_SECONDS", 0.2)
    db = Database(sqlite_url)
    try:
        async with db.sessionmaker() as holder:
            await holder.execute(select(ConsumerCursor))  # holds the one connection

            async def read() -> None:
                async for session in db.session():
                    await session.execute(select(ConsumerCursor))

            with pytest.raises(DatabaseBusy) as refused:
                await read()
            assert refused.value.status_code == 503
            await holder.rollback()
        async for session in db.session():  # served again once the holder is done
            assert (await session.execute(select(ConsumerCursor))).all() == []
    finally:
        await db.dispose()


async def test_a_process_keeps_the_postgresql_connections_it_was_configured_for(
    settings: Settings,
) -> None:
    """``LINLI_DATABASE_POOL_SIZE`` bounds what a process holds: with 3, six requests at once share three
    connections (the others wait for one) and the server sees no more than three from it."""
    if settings.is_sqlite:
        pytest.skip("SQLite's pool is its one writer connection")
    runtime = Runtime.from_settings(settings.model_copy(update={"database_pool_size": 3}))
    try:
        assert runtime.db.engine.pool.size() == 3  # type: ignore[attr-defined]

        async def hold() -> int:
            async with runtime.db.sessionmaker() as session:
                pid = await session.scalar(text("SELECT pg_backend_pid()"))
                await asyncio.sleep(0.05)
                return int(pid)

        pids = await asyncio.gather(*(hold() for _ in range(6)))
        assert len(set(pids)) == 3
    finally:
        await runtime.close()
    with pytest.raises(ValidationError):
        Settings(database_pool_size=0)
