"""Durable timers: scheduled in the caller's transaction, claimed with a lease, fired after a restart."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.clock import utcnow
from linli.core.config import Settings
from linli.core.db import Database
from linli.core.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    PENDING,
    RUNNING,
    Job,
    JobRegistry,
    cancel_job,
    next_run_at,
    run_due_jobs,
    schedule_job,
)


class Crash(BaseException):
    """Stands for the runner's process dying mid-job."""


class Fired:
    """A job handler that records what fired, optionally failing a number of times first."""

    def __init__(self, *, failures: int = 0, error: BaseException | None = None) -> None:
        self.fired: list[int] = []
        self.failures = failures
        self.error = error

    async def __call__(self, session: AsyncSession, job: Job) -> None:
        self.fired.append(job.id)
        if self.failures > 0:
            self.failures -= 1
            raise self.error or ValueError(f"job {job.id} not yet")


def _registry(**handlers: Fired) -> JobRegistry:
    registry = JobRegistry()
    for kind, handler in handlers.items():
        registry.add(kind, handler)
    return registry


async def _schedule(
    db: Database, kind: str, run_at: datetime, *, key: str | None = None, max_attempts: int = 8, **payload
) -> int:
    async with db.sessionmaker() as session:
        job = await schedule_job(session, kind, run_at, payload, key=key, max_attempts=max_attempts)
        await session.commit()
        return job.id


async def _job(db: Database, job_id: int) -> Job:
    async with db.sessionmaker() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job


async def _count_jobs(db: Database) -> int:
    async with db.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(Job)) or 0)


class TestSchedule:
    async def test_a_committed_job_fires_when_due_and_not_before(self, db: Database) -> None:
        now = utcnow()
        job_id = await _schedule(db, "test.remind", now + timedelta(minutes=10), who="邻居")
        handler = Fired()
        registry = _registry(**{"test.remind": handler})

        assert await run_due_jobs(db, registry, now=now) == 0
        assert await next_run_at(db) == now + timedelta(minutes=10)
        assert await run_due_jobs(db, registry, now=now + timedelta(minutes=10)) == 1
        assert handler.fired == [job_id]
        job = await _job(db, job_id)
        assert (job.status, job.attempts, job.payload) == (DONE, 1, {"who": "邻居"})
        assert job.finished_at is not None
        assert job.locked_until is None
        assert await run_due_jobs(db, registry, now=now + timedelta(days=1)) == 0
        assert await next_run_at(db) is None

    async def test_a_job_scheduled_in_a_rolled_back_transaction_never_exists(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            await schedule_job(session, "test.remind", utcnow(), key="rolled-back")
            await session.rollback()
        assert await _count_jobs(db) == 0
        handler = Fired()
        assert await run_due_jobs(db, _registry(**{"test.remind": handler}), now=utcnow() + timedelta(1)) == 0
        assert handler.fired == []

    async def test_scheduling_a_known_key_returns_the_first_job_unchanged(self, db: Database) -> None:
        now = utcnow()
        first = await _schedule(db, "test.cutoff", now, key="cutoff:1", n=1)
        async with db.sessionmaker() as session:
            again = await schedule_job(
                session, "test.cutoff", now + timedelta(hours=1), {"n": 2}, key="cutoff:1"
            )
            same_txn = await schedule_job(session, "test.cutoff", now, {"n": 3}, key="cutoff:2")
            same_txn_again = await schedule_job(session, "test.cutoff", now, {"n": 4}, key="cutoff:2")
            await session.commit()
        assert again.id == first
        assert same_txn.id == same_txn_again.id
        assert await _count_jobs(db) == 2
        job = await _job(db, first)
        assert (job.run_at, job.payload) == (now, {"n": 1})

    async def test_concurrent_schedules_of_one_key_make_one_job(self, db: Database) -> None:
        run_at = utcnow()

        async def schedule() -> int:
            async with db.sessionmaker() as session:
                job = await schedule_job(session, "test.cutoff", run_at, key="cutoff:race")
                await asyncio.sleep(0.02)  # both transactions open at once
                await session.commit()
                return job.id

        ids = await asyncio.gather(*(schedule() for _ in range(4)))
        assert len(set(ids)) == 1
        assert await _count_jobs(db) == 1

    async def test_cancel_job(self, db: Database) -> None:
        now = utcnow()
        job_id = await _schedule(db, "test.expire", now, key="expire:9")
        async with db.sessionmaker() as session:
            assert await cancel_job(session, "expire:9") is True
            assert await cancel_job(session, "no-such-key") is False
            await session.commit()
        handler = Fired()
        assert (
            await run_due_jobs(db, _registry(**{"test.expire": handler}), now=now + timedelta(hours=1)) == 0
        )
        assert handler.fired == []
        assert (await _job(db, job_id)).status == CANCELLED
        async with db.sessionmaker() as session:
            assert await cancel_job(session, "expire:9") is False

    async def test_a_cancelled_key_can_be_scheduled_again(self, db: Database) -> None:
        """An operator moves a group cutoff: cancel the old timer, schedule the new time."""
        now = utcnow()
        await _schedule(db, "test.cutoff", now + timedelta(hours=1), key="cutoff:7", at="old")
        async with db.sessionmaker() as session:
            assert await cancel_job(session, "cutoff:7")
            moved = await schedule_job(
                session, "test.cutoff", now + timedelta(hours=2), {"at": "new"}, key="cutoff:7"
            )
            await session.commit()
        assert (moved.status, moved.run_at, moved.payload) == (
            PENDING,
            now + timedelta(hours=2),
            {"at": "new"},
        )
        handler = Fired()
        registry = _registry(**{"test.cutoff": handler})
        assert await run_due_jobs(db, registry, now=now + timedelta(hours=1)) == 0
        assert await run_due_jobs(db, registry, now=now + timedelta(hours=2)) == 1
        assert handler.fired == [moved.id]

    async def test_a_kind_can_be_registered_once(self) -> None:
        registry = _registry(**{"test.once": Fired()})
        with pytest.raises(ValueError, match="registered twice"):
            registry.add("test.once", Fired())


class TestRunning:
    async def test_a_due_job_fires_after_a_restart(self, settings: Settings, db: Database) -> None:
        now = utcnow()
        job_id = await _schedule(db, "test.durable", now + timedelta(seconds=30))
        await db.dispose()

        restarted = Database(settings.database_url)
        try:
            handler = Fired()
            assert (
                await run_due_jobs(
                    restarted, _registry(**{"test.durable": handler}), now=now + timedelta(seconds=31)
                )
                == 1
            )
            assert handler.fired == [job_id]
            assert (await _job(restarted, job_id)).status == DONE
        finally:
            await restarted.dispose()

    async def test_a_claimed_job_runs_without_reading_its_row_again_and_completes_in_one_update(
        self, db: Database
    ) -> None:
        now = utcnow()
        job_id = await _schedule(db, "test.lean", now, note="hello")
        statements: list[str] = []
        seen: list[tuple[int, str, int, dict[str, object]]] = []

        def note(_conn, _cursor, statement: str, *_rest) -> None:  # type: ignore[no-untyped-def]
            statements.append(" ".join(statement.split()).upper())

        async def handler(session: AsyncSession, job: Job) -> None:
            # The handler sees the row as claimed: running, its attempt counted, its payload.
            seen.append((job.id, job.status, job.attempts, dict(job.payload)))
            statements.append("HANDLER")

        sa_event.listen(db.engine.sync_engine, "before_cursor_execute", note)
        try:
            assert await run_due_jobs(db, _registry(**{"test.lean": handler}), now=now) == 1  # type: ignore[arg-type]
        finally:
            sa_event.remove(db.engine.sync_engine, "before_cursor_execute", note)
        assert seen == [(job_id, RUNNING, 1, {"note": "hello"})]
        after = statements[statements.index("HANDLER") + 1 :]
        before = statements[: statements.index("HANDLER")]
        # The claim's SELECT … FOR UPDATE and its UPDATE; nothing of this job's own run before the handler.
        assert sum(s.startswith("SELECT") for s in before) == 1
        assert [s.split(" SET ")[0] for s in after if not s.startswith(("BEGIN", "COMMIT"))] == [
            "UPDATE JOBS"
        ]
        job = await _job(db, job_id)
        assert (job.status, job.attempts, job.locked_until) == (DONE, 1, None)
        assert job.finished_at is not None

    async def test_a_job_whose_runner_died_is_claimed_again_once_its_lease_lapses(self, db: Database) -> None:
        now = utcnow()
        job_id = await _schedule(db, "test.lease", now)
        with pytest.raises(Crash):
            await run_due_jobs(
                db, _registry(**{"test.lease": Fired(failures=1, error=Crash())}), now=now, lease_seconds=60
            )
        job = await _job(db, job_id)
        assert (job.status, job.attempts) == (RUNNING, 1)
        assert job.locked_until == now + timedelta(seconds=60)

        handler = Fired()
        registry = _registry(**{"test.lease": handler})
        assert await run_due_jobs(db, registry, now=now + timedelta(seconds=30)) == 0
        assert await run_due_jobs(db, registry, now=now + timedelta(seconds=61)) == 1
        assert handler.fired == [job_id]
        job = await _job(db, job_id)
        assert (job.status, job.attempts) == (DONE, 2)

    async def test_a_job_that_keeps_killing_its_runner_fails_after_max_attempts(self, db: Database) -> None:
        now = utcnow()
        job_id = await _schedule(db, "test.poison", now, max_attempts=2)
        registry = _registry(**{"test.poison": Fired(failures=100, error=Crash())})
        for lapse in range(2):
            with pytest.raises(Crash):
                await run_due_jobs(db, registry, now=now + timedelta(seconds=61 * lapse), lease_seconds=60)
        assert await run_due_jobs(db, registry, now=now + timedelta(seconds=200), lease_seconds=60) == 0
        job = await _job(db, job_id)
        assert (job.status, job.attempts) == (FAILED, 2)
        assert job.last_error is not None
        assert "lease lapsed" in job.last_error

    async def test_a_failing_job_is_retried_later_with_backoff(self, db: Database) -> None:
        now = utcnow()
        job_id = await _schedule(db, "test.flaky", now)
        handler = Fired(failures=2)
        registry = _registry(**{"test.flaky": handler})

        assert await run_due_jobs(db, registry, now=now) == 1
        job = await _job(db, job_id)
        assert (job.status, job.attempts) == (PENDING, 1)
        assert job.last_error == f"ValueError: job {job_id} not yet"
        first_delay = job.run_at - now
        assert first_delay > timedelta(0)
        assert await run_due_jobs(db, registry, now=now) == 0, "retried before its backoff"

        assert await run_due_jobs(db, registry, now=job.run_at) == 1
        job2 = await _job(db, job_id)
        assert (job2.status, job2.attempts) == (PENDING, 2)
        assert job2.run_at - job.run_at > first_delay, "the backoff grows"

        assert await run_due_jobs(db, registry, now=job2.run_at) == 1
        done = await _job(db, job_id)
        assert (done.status, done.attempts) == (DONE, 3)
        assert handler.fired == [job_id] * 3

    async def test_a_job_failing_max_attempts_times_is_marked_failed_with_its_last_error(
        self, db: Database
    ) -> None:
        now = utcnow()
        job_id = await _schedule(db, "test.doomed", now, max_attempts=3)
        handler = Fired(failures=100)
        registry = _registry(**{"test.doomed": handler})
        when = now
        for _ in range(3):
            assert await run_due_jobs(db, registry, now=when) == 1
            when = (await _job(db, job_id)).run_at + timedelta(hours=2)
        job = await _job(db, job_id)
        assert (job.status, job.attempts) == (FAILED, 3)
        assert job.last_error == f"ValueError: job {job_id} not yet"
        assert job.finished_at is not None
        assert await run_due_jobs(db, registry, now=when + timedelta(days=30)) == 0
        assert len(handler.fired) == 3

    async def test_a_job_without_a_handler_fails_with_a_clear_error(self, db: Database) -> None:
        now = utcnow()
        job_id = await _schedule(db, "test.orphan", now, max_attempts=1)
        assert await run_due_jobs(db, JobRegistry(), now=now) == 1
        job = await _job(db, job_id)
        assert job.status == FAILED
        assert job.last_error == "LookupError: no handler for job kind 'test.orphan'"

    async def test_a_handlers_writes_roll_back_when_it_fails(self, db: Database) -> None:
        from linli.core.events import Position, read_events, record_event

        now = utcnow()
        await _schedule(db, "test.writer", now, max_attempts=1)

        async def write_then_fail(session: AsyncSession, job: Job) -> None:
            record_event(session, "test.from_job")
            await session.flush()
            raise RuntimeError("after writing")

        registry = JobRegistry()
        registry.add("test.writer", write_then_fail)
        assert await run_due_jobs(db, registry, now=now) == 1
        async with db.sessionmaker() as session:
            assert await read_events(session, Position()) == []


class TestConcurrentRunners:
    async def test_runners_never_fire_the_same_job_twice(self, db: Database) -> None:
        now = utcnow()
        async with db.sessionmaker() as session:
            for n in range(40):
                await schedule_job(session, "test.many", now, {"n": n})
            await session.commit()
        fired: list[int] = []

        async def slow(session: AsyncSession, job: Job) -> None:
            fired.append(job.id)
            await asyncio.sleep(0.002)

        registry = JobRegistry()
        registry.add("test.many", slow)

        async def runner() -> int:
            total = 0
            while moved := await run_due_jobs(db, registry, now=now, limit=5):
                total += moved
            return total

        counts = await asyncio.gather(runner(), runner(), runner())
        assert sum(counts) == 40
        assert Counter(fired).most_common(1)[0][1] == 1, "a job fired twice"
        assert len(fired) == 40
        if not db.is_sqlite:  # SQLite runs the claims one after another
            assert sum(1 for c in counts if c) >= 2, "the runners really ran side by side"


class TestOneRunsManyAtOnce:
    async def test_independent_jobs_overlap_and_a_serial_kinds_keep_their_line(self, db: Database) -> None:
        now = utcnow()
        async with db.sessionmaker() as session:
            for n in range(6):
                await schedule_job(session, "test.free", now, {"n": n})
                await schedule_job(session, "test.line", now + timedelta(microseconds=n), {"n": n})
            await session.commit()
        running: Counter[str] = Counter()
        most: Counter[str] = Counter()
        line_order: list[int] = []

        def handler(kind: str):  # type: ignore[no-untyped-def]
            async def run(session: AsyncSession, job: Job) -> None:
                running[kind] += 1
                most[kind] = max(most[kind], running[kind])
                if kind == "test.line":
                    line_order.append(job.payload["n"])
                await asyncio.sleep(0.02)
                running[kind] -= 1

            return run

        registry = JobRegistry()
        registry.add("test.free", handler("test.free"))
        registry.add("test.line", handler("test.line"), serial=True)
        assert await run_due_jobs(db, registry, now=now + timedelta(seconds=1), concurrency=4) == 12
        if not db.is_sqlite:  # SQLite's one connection takes the transactions one after another
            assert most["test.free"] > 1, "independent jobs waited on each other"
        assert most["test.line"] == 1, "a serial kind's jobs ran side by side"
        assert line_order == list(range(6))
        async with db.sessionmaker() as session:
            statuses = (await session.scalars(select(Job.status))).all()
        assert set(statuses) == {DONE}
