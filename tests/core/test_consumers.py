"""Named consumers: stored cursors, at-least-once delivery, handler writes committed with the cursor."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.consumers import (
    Consumer,
    ConsumerCursor,
    ConsumerFailure,
    ConsumerRegistry,
    batching,
    consume,
    drain,
    run_consumer_once,
)
from linli.core.db import Database
from linli.core.events import Event, Position, read_events, record_event


class Crash(BaseException):
    """Stands for the process dying mid-batch: not an ``Exception``, so nothing handles it."""


async def _record(db: Database, *types: str) -> list[int]:
    async with db.sessionmaker() as session:
        events = [record_event(session, t, payload={"n": i}) for i, t in enumerate(types)]
        await session.commit()
    return [e.id for e in events]


async def _cursor(db: Database, name: str) -> ConsumerCursor | None:
    async with db.sessionmaker() as session:
        return await session.get(ConsumerCursor, name)


async def _failures(db: Database, name: str) -> list[ConsumerFailure]:
    async with db.sessionmaker() as session:
        return list(
            (await session.scalars(select(ConsumerFailure).where(ConsumerFailure.consumer == name))).all()
        )


async def _events_of_type(db: Database, type: str) -> list[Event]:
    async with db.sessionmaker() as session:
        return await read_events(session, Position(), limit=10_000, types=frozenset({type}))


class Recorder:
    """A handler that remembers what it was given, optionally failing on chosen events."""

    def __init__(self, *, fail_on: dict[int, int] | None = None) -> None:
        self.seen: list[int] = []
        # event id → how many times to fail before succeeding (a large number: always)
        self.fail_on = dict(fail_on or {})

    async def __call__(self, session: AsyncSession, event: Event) -> None:
        self.seen.append(event.id)
        if self.fail_on.get(event.id, 0) > 0:
            self.fail_on[event.id] -= 1
            raise RuntimeError(f"cannot handle {event.id}")


class TestCursor:
    async def test_cursor_is_stored_and_resumed_after_a_restart(self, settings, db: Database) -> None:
        first = await _record(db, "test.x", "test.x", "test.x")
        handler = Recorder()
        consumer = Consumer("resume", handler)
        assert await run_consumer_once(db, consumer) == 3
        assert handler.seen == first
        assert await run_consumer_once(db, consumer) == 0

        await db.dispose()
        restarted = Database(settings.database_url)
        try:
            second = await _record(restarted, "test.x", "test.x")
            handler_after_restart = Recorder()
            moved = await run_consumer_once(restarted, Consumer("resume", handler_after_restart))
            assert moved == 2
            assert handler_after_restart.seen == second
            cursor = await _cursor(restarted, "resume")
            assert cursor is not None
            assert cursor.event_id == second[-1]
        finally:
            await restarted.dispose()

    async def test_batches_follow_batch_size_and_drain_runs_every_consumer_to_the_end(
        self, db: Database
    ) -> None:
        ids = await _record(db, *["test.x"] * 7)
        a, b = Recorder(), Recorder()
        registry = ConsumerRegistry()
        registry.add(Consumer("a", a))
        registry.add(Consumer("b", b))
        assert await run_consumer_once(db, Consumer("a", a), batch_size=3) == 3
        assert await drain(db, registry, batch_size=3) == 4 + 7
        assert a.seen == ids
        assert b.seen == ids

    async def test_a_name_can_be_registered_once(self) -> None:
        registry = ConsumerRegistry()
        registry.add(Consumer("once", Recorder()))
        with pytest.raises(ValueError, match="registered twice"):
            registry.add(Consumer("once", Recorder()))

    async def test_a_new_consumer_not_from_the_beginning_starts_at_the_end_of_the_log(
        self, db: Database
    ) -> None:
        await _record(db, "test.old", "test.old")
        handler = Recorder()
        consumer = Consumer("tail", handler, from_beginning=False)
        assert await run_consumer_once(db, consumer) == 0
        [new] = await _record(db, "test.new")
        assert await run_consumer_once(db, consumer) == 1
        assert handler.seen == [new]

    async def test_types_filter_delivers_only_those_types_and_still_moves_past_the_others(
        self, db: Database
    ) -> None:
        ids = await _record(db, "test.a", "test.b", "test.a", "test.c")
        handler = Recorder()
        consumer = Consumer("only-a", handler, types=frozenset({"test.a"}))
        assert await run_consumer_once(db, consumer) == 4
        assert handler.seen == [ids[0], ids[2]]
        cursor = await _cursor(db, "only-a")
        assert cursor is not None
        assert cursor.event_id == ids[-1]


class TestAtLeastOnce:
    async def test_a_failing_handler_is_retried_and_the_cursor_waits_for_it(self, db: Database) -> None:
        ids = await _record(db, "test.x", "test.x", "test.x")
        handler = Recorder(fail_on={ids[1]: 2})
        consumer = Consumer("retry", handler)

        assert await run_consumer_once(db, consumer, max_attempts=5) == 1
        cursor = await _cursor(db, "retry")
        assert cursor is not None
        assert (cursor.event_id, cursor.failing_event_id, cursor.attempts) == (ids[0], ids[1], 1)

        assert await run_consumer_once(db, consumer, max_attempts=5) == 0
        cursor = await _cursor(db, "retry")
        assert cursor is not None
        assert (cursor.event_id, cursor.attempts) == (ids[0], 2)

        assert await run_consumer_once(db, consumer, max_attempts=5) == 2
        # A batch runs straight through first; when a handler raises, it runs again event by event, so the
        # events before the failing one are handled twice (rolled back once): at-least-once delivery.
        # The failing event itself is run once per pass.
        assert handler.seen == [ids[0], ids[1], ids[0], ids[1], ids[1], ids[2]]
        cursor = await _cursor(db, "retry")
        assert cursor is not None
        assert (cursor.event_id, cursor.failing_event_id, cursor.attempts) == (ids[2], None, 0)
        assert await _failures(db, "retry") == []

    async def test_after_max_attempts_the_event_is_set_aside_and_the_consumer_moves_on(
        self, db: Database
    ) -> None:
        ids = await _record(db, "test.x", "test.poison", "test.x")
        handler = Recorder(fail_on={ids[1]: 1_000})
        consumer = Consumer("poisoned", handler)

        moved = [await run_consumer_once(db, consumer, max_attempts=3) for _ in range(3)]
        assert moved == [1, 0, 2]
        # ids[0] again when the first pass reran its batch event by event (at-least-once).
        assert Counter(handler.seen) == {ids[0]: 2, ids[1]: 3, ids[2]: 1}
        [failure] = await _failures(db, "poisoned")
        assert (failure.event_id, failure.attempts) == (ids[1], 3)
        assert failure.error == f"RuntimeError: cannot handle {ids[1]}"
        assert await run_consumer_once(db, consumer, max_attempts=3) == 0

    async def test_a_failed_handler_leaves_none_of_its_writes(self, db: Database) -> None:
        [source] = await _record(db, "test.source")
        attempts = 0

        async def react_then_fail(session: AsyncSession, event: Event) -> None:
            nonlocal attempts
            attempts += 1
            record_event(session, "test.reaction", payload={"attempt": attempts})
            await session.flush()
            if attempts == 1:
                raise RuntimeError("flaky")

        consumer = Consumer("reactor", react_then_fail, types=frozenset({"test.source"}))
        assert await run_consumer_once(db, consumer) == 0
        assert await _events_of_type(db, "test.reaction") == []
        assert await run_consumer_once(db, consumer) >= 1
        [reaction] = await _events_of_type(db, "test.reaction")
        assert reaction.payload == {"attempt": 2}
        assert source < reaction.id

    async def test_handler_writes_and_the_cursor_move_commit_together(self, db: Database) -> None:
        ids = await _record(db, "test.source", "test.source", "test.source")
        crash_on = ids[2]

        async def react(session: AsyncSession, event: Event) -> None:
            record_event(session, "test.reaction", payload={"source": event.id})
            await session.flush()
            if event.id == crash_on:
                raise Crash

        consumer = Consumer("atomic", react, types=frozenset({"test.source"}))
        with pytest.raises(Crash):
            await run_consumer_once(db, consumer)
        # The process died before the commit: neither the reactions nor the cursor moved.
        assert await _events_of_type(db, "test.reaction") == []
        cursor = await _cursor(db, "atomic")
        assert cursor is None or cursor.event_id == 0

        crash_on = -1
        await drain(db, _registry(consumer))
        reactions = await _events_of_type(db, "test.reaction")
        assert sorted(e.payload["source"] for e in reactions) == ids

    async def test_a_consumer_sees_the_events_its_own_handlers_append(self, db: Database) -> None:
        """A chain (order.paid → poster.ready, both handled by one consumer) must not skip its own events."""
        await _record(db, "test.ping")
        seen: list[str] = []

        async def chain(session: AsyncSession, event: Event) -> None:
            seen.append(event.type)
            if event.type == "test.ping":
                record_event(session, "test.pong")

        assert await drain(db, _registry(Consumer("chain", chain))) == 2
        assert seen == ["test.ping", "test.pong"]


def _registry(*consumers: Consumer) -> ConsumerRegistry:
    registry = ConsumerRegistry()
    for consumer in consumers:
        registry.add(consumer)
    return registry


class TestConcurrentRunners:
    async def test_two_runners_of_one_consumer_never_process_an_event_twice(self, db: Database) -> None:
        """PostgreSQL: the second runner skips the locked cursor row; SQLite: it waits for the write lock."""
        ids = await _record(db, *["test.x"] * 60)
        seen: list[int] = []

        async def slow(session: AsyncSession, event: Event) -> None:
            seen.append(event.id)
            await asyncio.sleep(0.001)

        consumer = Consumer("shared", slow)

        async def runner() -> list[int]:
            moved = []
            deadline = asyncio.get_running_loop().time() + 20
            while len(set(seen)) < len(ids) and asyncio.get_running_loop().time() < deadline:
                moved.append(await run_consumer_once(db, consumer, batch_size=7))
                await asyncio.sleep(0)
            return moved

        first, second = await asyncio.gather(runner(), runner())
        assert sorted(seen) == ids, "an event was delivered twice or never"
        assert sum(first) + sum(second) == len(ids)
        if not db.is_sqlite:
            # Both really ran at the same time: at least once one of them found the cursor taken.
            assert 0 in first + second

    async def test_runners_racing_to_create_the_cursor_all_return(self, db: Database) -> None:
        ids = await _record(db, "test.x", "test.x")
        seen: list[int] = []

        async def handler(session: AsyncSession, event: Event) -> None:
            seen.append(event.id)
            await asyncio.sleep(0.01)

        consumer = Consumer("fresh", handler)
        results = await asyncio.gather(*(run_consumer_once(db, consumer) for _ in range(4)))
        assert all(moved in (0, len(ids)) for moved in results)
        while await run_consumer_once(db, consumer):
            pass
        assert sorted(seen) == ids, "an event was delivered twice or never"

    async def test_a_tail_consumer_created_during_an_open_write_still_gets_that_write(
        self, pg_db: Database
    ) -> None:
        """ "From the end of the log" must not mean "past an event a running transaction is writing"."""
        handler = Recorder()
        consumer = Consumer("tail", handler, from_beginning=False)
        async with pg_db.sessionmaker() as slow:
            in_flight = record_event(slow, "test.slow")
            await slow.flush()
            await _record(pg_db, "test.quick")
            await run_consumer_once(pg_db, consumer)
            await slow.commit()

        deadline = asyncio.get_running_loop().time() + 10
        while in_flight.id not in handler.seen and asyncio.get_running_loop().time() < deadline:
            await run_consumer_once(pg_db, consumer)
            await asyncio.sleep(0.01)
        assert in_flight.id in handler.seen


class TestStraightRun:
    async def test_a_batch_without_failures_runs_without_a_savepoint_per_event(self, db: Database) -> None:
        from sqlalchemy import event as sa_event

        handler = Recorder()
        assert await run_consumer_once(db, Consumer("straight", handler)) == 0  # its cursor exists now
        ids = await _record(db, "test.x", "test.x", "test.x")
        statements: list[str] = []

        def note(_conn, _cursor, statement: str, *_rest) -> None:  # type: ignore[no-untyped-def]
            statements.append(statement)

        sa_event.listen(db.engine.sync_engine, "before_cursor_execute", note)
        try:
            assert await run_consumer_once(db, Consumer("straight", handler)) == 3
        finally:
            sa_event.remove(db.engine.sync_engine, "before_cursor_execute", note)
        assert handler.seen == ids
        assert not [s for s in statements if s.startswith("SAVEPOINT")]

    async def test_a_failure_keeps_the_writes_of_the_events_before_it_and_none_of_its_own(
        self, db: Database
    ) -> None:
        ids = await _record(db, "test.x", "test.x", "test.x")

        async def handler(session: AsyncSession, event: Event) -> None:
            record_event(session, "test.written", payload={"for": event.id})
            await session.flush()
            if event.id == ids[1]:
                raise RuntimeError("cannot")

        assert await run_consumer_once(db, Consumer("writes", handler, types=frozenset({"test.x"}))) == 1
        written = [e.payload["for"] for e in await _events_of_type(db, "test.written")]
        assert written == [ids[0]]
        cursor = await _cursor(db, "writes")
        assert cursor is not None
        assert (cursor.event_id, cursor.failing_event_id, cursor.attempts) == (ids[0], ids[1], 1)


class TestBatchHandler:
    async def test_a_straight_run_goes_to_the_batch_handler_at_once_in_log_order(self, db: Database) -> None:
        single, batches = Recorder(), []

        async def at_once(session: AsyncSession, events: list[Event]) -> None:
            batches.append([e.id for e in events])

        consumer = Consumer("sets", single, types=frozenset({"test.x"}), batch_handler=at_once)
        assert await run_consumer_once(db, consumer) == 0
        ids = await _record(db, "test.x", "test.other", "test.x", "test.x")
        result = await consume(db, consumer)
        assert (result.passed, result.handled) == (4, 3)
        assert batches == [[ids[0], ids[2], ids[3]]]
        assert single.seen == []
        cursor = await _cursor(db, "sets")
        assert cursor is not None
        assert (cursor.event_id, cursor.failing_event_id, cursor.attempts) == (ids[3], None, 0)
        assert await run_consumer_once(db, consumer) == 0
        assert batches == [[ids[0], ids[2], ids[3]]]  # nothing new: not called again

    async def test_batching_hands_runs_of_one_type_at_once_and_the_rest_one_by_one(
        self, db: Database
    ) -> None:
        calls: list[tuple[str, list[int]]] = []

        async def run(session: AsyncSession, events: list[Event]) -> None:
            calls.append(("run", [e.id for e in events]))

        async def one(session: AsyncSession, event: Event) -> None:
            calls.append(("one", [event.id]))

        consumer = Consumer("runs", one, batch_handler=batching("test.paid", run, one))
        assert await run_consumer_once(db, consumer) == 0
        ids = await _record(db, "test.paid", "test.paid", "test.refunded", "test.paid", "test.ended")
        assert await run_consumer_once(db, consumer) == 5
        assert calls == [
            ("run", ids[:2]),
            ("one", [ids[2]]),
            ("run", [ids[3]]),
            ("one", [ids[4]]),
        ]

    async def test_a_failing_batch_runs_again_event_by_event_and_counts_the_failing_one(
        self, db: Database
    ) -> None:
        ids = await _record(db, "test.x", "test.x", "test.x")
        batches: list[list[int]] = []

        async def at_once(session: AsyncSession, events: list[Event]) -> None:
            batches.append([e.id for e in events])
            record_event(session, "test.written", payload={"batch": True})
            await session.flush()
            raise RuntimeError("the set-based path failed")

        async def one(session: AsyncSession, event: Event) -> None:
            record_event(session, "test.written", payload={"for": event.id})
            await session.flush()
            if event.id == ids[1]:
                raise RuntimeError("cannot")

        consumer = Consumer("fallback", one, types=frozenset({"test.x"}), batch_handler=at_once)
        assert await run_consumer_once(db, consumer) == 1
        assert batches == [ids]
        # The batch's writes are gone; the event before the failing one is handled, one by one.
        assert [e.payload for e in await _events_of_type(db, "test.written")] == [{"for": ids[0]}]
        cursor = await _cursor(db, "fallback")
        assert cursor is not None
        assert (cursor.event_id, cursor.failing_event_id, cursor.attempts) == (ids[0], ids[1], 1)
