"""A lane: work on a thread with its own loop and database (PostgreSQL), or inline (SQLite)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import func, select

from linli.core.db import Database
from linli.core.events import Event, record_event
from linli.core.lane import Lane


async def _where(db: Database) -> tuple[int, Database]:
    async with db.sessionmaker() as session:
        await session.execute(select(1))
    return threading.get_ident(), db


async def test_work_runs_on_the_lanes_thread_with_its_own_database_on_postgresql(db: Database) -> None:
    lane = Lane(db, "test-lane", pool_size=2)
    try:
        thread, used = await lane.run(_where)
        if db.is_sqlite:  # one writer connection, shared with the app: inline, on the app's database
            assert (thread, used) == (threading.get_ident(), db)
        else:
            assert thread != threading.get_ident()
            assert used is lane.lane_db
            assert used is not db
            assert used.engine.pool.size() == 2  # type: ignore[attr-defined]
            # The same thread and database the next time.
            assert await lane.run(_where) == (thread, used)
    finally:
        await lane.close()


async def test_what_the_work_raises_reaches_the_caller_and_the_lane_goes_on(db: Database) -> None:
    lane = Lane(db, "test-lane")

    async def fails(_db: Database) -> None:
        raise LookupError("not here")

    try:
        with pytest.raises(LookupError, match="not here"):
            await lane.run(fails)
        thread, _ = await lane.run(_where)
        assert (thread == threading.get_ident()) == db.is_sqlite
    finally:
        await lane.close()


async def test_a_lanes_commit_that_appends_events_is_counted_by_the_apps_database(db: Database) -> None:
    lane = Lane(db, "test-lane")
    told: list[list[tuple[str, int | None]]] = []
    db.commit_hooks.append(told.append)
    before = db.event_commits

    async def append(lane_db: Database) -> None:
        async with lane_db.sessionmaker() as session:
            record_event(session, "test.on_lane", payload={"n": 1})
            await session.commit()

    try:
        await lane.run(append)
        for _ in range(100):  # told through the app's loop: a turn or two later
            if told:
                break
            await asyncio.sleep(0.01)
        assert db.event_commits == before + 1
        assert [[kind for kind, _ in appended] for appended in told] == [["test.on_lane"]]
        async with db.sessionmaker() as session:
            assert await session.scalar(select(func.count()).where(Event.type == "test.on_lane")) == 1
    finally:
        await lane.close()


async def test_a_closed_lane_starts_a_new_thread_for_the_next_work(db: Database) -> None:
    lane = Lane(db, "test-lane")

    def lanes() -> int:
        return sum(t.name == "test-lane" for t in threading.enumerate())

    try:
        await lane.run(_where)
        assert lanes() == (0 if db.is_sqlite else 1)
        await lane.close()
        assert lanes() == 0
        thread, used = await lane.run(_where)
        assert lanes() == (0 if db.is_sqlite else 1)
        assert (thread == threading.get_ident()) == db.is_sqlite
        assert (used is db) == db.is_sqlite
    finally:
        await lane.close()
    assert lanes() == 0
