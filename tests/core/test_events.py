"""The event log: written in the caller's transaction, read by cursor so nothing can appear behind it."""

from __future__ import annotations

import asyncio
import os
import random

from sqlalchemy import func, select, text

from linli.core.db import Database
from linli.core.events import Event, Position, Subjects, latest_position, read_events, record_event

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"


async def _all_events(db: Database) -> list[Event]:
    async with db.sessionmaker() as session:
        return await read_events(session, Position(), limit=100_000)


async def _read_after(db: Database, position: Position, *, limit: int = 200) -> list[Event]:
    async with db.sessionmaker() as session:
        return await read_events(session, position, limit=limit)


async def _read_until(db: Database, position: Position, count: int, *, timeout: float = 10) -> list[Event]:
    """Events after ``position`` once ``count`` of them are readable.

    On PostgreSQL the read horizon is cluster-wide: a transaction open in another database on the same
    server (another test run) holds it back for a moment, so the committed tail is polled for."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        events = await _read_after(db, position, limit=count + 1)
        if len(events) >= count or asyncio.get_running_loop().time() > deadline:
            return events
        await asyncio.sleep(0.01)


class TestRecordEvent:
    async def test_an_event_in_a_rolled_back_transaction_does_not_exist(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            record_event(session, "test.rolled_back", subjects=Subjects(user_id=1))
            await session.flush()
            await session.rollback()
        async with db.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(Event)) == 0
        assert await _all_events(db) == []

    async def test_a_committed_event_keeps_its_subjects_actor_and_payload(self, db: Database) -> None:
        subjects = Subjects(
            user_id=7, anonymous_id="anon-1", session_id=3, community_id=4, order_id=5, product_id=6
        )
        payload = {"price_fen": 2500, "note": "春日青团节", "items": [1, 2]}
        async with db.sessionmaker() as session:
            record_event(session, "order.paid", actor_id=9, subjects=subjects, payload=payload)
            await session.commit()

        [event] = await _all_events(db)
        assert event.type == "order.paid"
        assert event.actor_id == 9
        assert (
            event.user_id,
            event.anonymous_id,
            event.session_id,
            event.community_id,
            event.order_id,
            event.product_id,
        ) == (7, "anon-1", 3, 4, 5, 6)
        assert event.payload == payload
        assert event.occurred_at.tzinfo is not None

    async def test_read_events_returns_commit_order_and_respects_limit_and_types(self, db: Database) -> None:
        for index in range(5):
            async with db.sessionmaker() as session:
                record_event(session, "test.a" if index % 2 == 0 else "test.b", payload={"n": index})
                await session.commit()

        events = await _all_events(db)
        assert [e.payload["n"] for e in events] == [0, 1, 2, 3, 4]
        first_two = await _read_after(db, Position(), limit=2)
        assert [e.payload["n"] for e in first_two] == [0, 1]
        rest = await _read_after(db, Position(first_two[-1].txid, first_two[-1].id))
        assert [e.payload["n"] for e in rest] == [2, 3, 4]
        async with db.sessionmaker() as session:
            only_b = await read_events(session, Position(), types=frozenset({"test.b"}))
        assert [e.payload["n"] for e in only_b] == [1, 3]

    async def test_latest_position_is_past_every_committed_event(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            for _ in range(3):
                record_event(session, "test.old")
            await session.commit()
        async with db.sessionmaker() as session:
            end = await latest_position(session)
        assert await _read_after(db, end) == []
        async with db.sessionmaker() as session:
            record_event(session, "test.new")
            await session.commit()
        assert [e.type for e in await _read_after(db, end)] == ["test.new"]


class TestPostgresOrdering:
    """Sequence values are taken before commit; a reader must never pass an event still being written."""

    async def test_a_reader_does_not_pass_an_older_open_transaction(self, pg_db: Database) -> None:
        async with pg_db.sessionmaker() as slow:
            record_event(slow, "test.slow")
            await slow.flush()  # lower id and lower transaction id, not committed
            async with pg_db.sessionmaker() as quick:
                record_event(quick, "test.quick")
                await quick.commit()

            assert await _read_after(pg_db, Position()) == []
            await slow.commit()

        events = await _read_until(pg_db, Position(), 2)
        assert [e.type for e in events] == ["test.slow", "test.quick"]

    async def test_a_cursor_loses_nothing_when_id_order_and_transaction_order_differ(
        self, pg_db: Database
    ) -> None:
        """B takes its transaction id first but its event id last; A is still open when B commits."""
        seen: list[Event] = []
        position = Position()
        async with pg_db.sessionmaker() as b:
            await b.execute(text("SELECT pg_current_xact_id()"))
            async with pg_db.sessionmaker() as a:
                await a.execute(text("SELECT pg_current_xact_id()"))
                event_a = record_event(a, "test.a")
                await a.flush()
                event_b = record_event(b, "test.b")
                await b.flush()
                assert event_a.id < event_b.id
                assert event_b.txid < event_a.txid
                await b.commit()

                batch = await _read_after(pg_db, position)
                seen += batch
                if batch:
                    position = Position(batch[-1].txid, batch[-1].id)
                await a.commit()

        seen += await _read_until(pg_db, position, 2 - len(seen))
        assert sorted(e.type for e in seen) == ["test.a", "test.b"]

    async def test_a_reader_with_its_own_transaction_id_does_not_pass_its_own_writes(
        self, pg_db: Database
    ) -> None:
        """A consumer locks its cursor row (which gives its transaction an id) before it reads, and its
        handlers may append events; those must not land behind the position it moves to."""
        async with pg_db.sessionmaker() as reader:
            await reader.execute(text("SELECT pg_current_xact_id()"))
            async with pg_db.sessionmaker() as other:
                record_event(other, "test.other")
                await other.commit()
            batch = await read_events(reader, Position())
            record_event(reader, "test.reaction")
            await reader.commit()
        position = Position(batch[-1].txid, batch[-1].id) if batch else Position()

        later = await _read_until(pg_db, position, 2 - len(batch))
        assert "test.reaction" in [e.type for e in batch + later]
        assert sorted(e.type for e in batch + later) == ["test.other", "test.reaction"]

    async def test_a_transaction_open_in_another_database_does_not_hold_the_log_back(
        self, pg_db: Database
    ) -> None:
        """Transaction ids and snapshots are server-wide; another application's long transaction on the
        same PostgreSQL server must not stall Linli's consumers."""
        import asyncpg

        # The server's administrative database: not ours, on the same server.
        neighbour = await asyncpg.connect(os.environ.get("LINLI_TEST_PG", PG_ADMIN_DSN), timeout=5)
        try:
            elsewhere = neighbour.transaction()
            await elsewhere.start()
            await neighbour.execute("SELECT pg_current_xact_id()")  # an id older than ours, still open
            async with pg_db.sessionmaker() as session:
                record_event(session, "test.while_neighbour_busy")
                await session.commit()
            events = await _read_after(pg_db, Position())
            assert [e.type for e in events] == ["test.while_neighbour_busy"]
            await elsewhere.rollback()
        finally:
            await neighbour.close()

    async def test_many_writers_and_a_concurrent_cursor_reader_see_every_event_exactly_once(
        self, pg_db: Database
    ) -> None:
        writers, per_writer = 8, 25
        rng = random.Random(42)

        async def write(writer: int) -> None:
            for n in range(per_writer):
                async with pg_db.sessionmaker() as session:
                    record_event(session, "test.many", payload={"w": writer, "n": n})
                    await session.flush()
                    # Hold the transaction open a little so commits interleave out of id order.
                    await asyncio.sleep(rng.random() * 0.004)
                    await session.commit()

        seen: list[int] = []
        total = writers * per_writer

        async def read() -> None:
            position = Position()
            while len(seen) < total:
                batch = await _read_after(pg_db, position, limit=17)
                seen.extend(e.id for e in batch)
                if batch:
                    position = Position(batch[-1].txid, batch[-1].id)
                else:
                    await asyncio.sleep(0.001)
            # Anything read past the total would be a duplicate.
            seen.extend(e.id for e in await _read_after(pg_db, position))

        reader = asyncio.create_task(read())
        await asyncio.gather(*(write(w) for w in range(writers)))
        await asyncio.wait_for(reader, timeout=20)

        all_ids = [e.id for e in await _all_events(pg_db)]
        assert len(all_ids) == writers * per_writer
        assert len(seen) == len(set(seen)), "an event was read twice"
        assert sorted(seen) == sorted(all_ids), "an event was skipped"
