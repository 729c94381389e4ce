"""The background worker: consumers and timers running in the app's process, started and stopped with it."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.clock import utcnow
from linli.core.config import Settings
from linli.core.consumers import Consumer, ConsumerCursor
from linli.core.db import Database
from linli.core.events import Event, record_event
from linli.core.hub import LocalHub
from linli.core.jobs import DONE, Job, schedule_job
from linli.core.runtime import Runtime
from linli.core.worker import BackgroundWorker


async def test_worker_fires_a_due_job_and_delivers_an_event_then_stops_cleanly(
    settings: Settings, db: Database
) -> None:
    runtime = Runtime(settings=settings, db=db, hub=LocalHub())
    delivered: asyncio.Queue[str] = asyncio.Queue()

    async def on_event(session: AsyncSession, event: Event) -> None:
        await delivered.put(f"event:{event.payload['n']}")

    async def on_job(session: AsyncSession, job: Job) -> None:
        await delivered.put(f"job:{job.payload['n']}")

    runtime.consumers.add(Consumer("test.worker", on_event, types=frozenset({"test.worker"})))
    runtime.jobs.add("test.worker", on_job)

    worker = BackgroundWorker(runtime)
    worker.start()
    try:
        async with db.sessionmaker() as session:
            event = record_event(session, "test.worker", payload={"n": 1})
            job = await schedule_job(session, "test.worker", utcnow(), {"n": 2})
            await session.commit()
        worker.poke()

        got = {await asyncio.wait_for(delivered.get(), timeout=3) for _ in range(2)}
        assert got == {"event:1", "job:2"}
    finally:
        await asyncio.wait_for(worker.stop(), timeout=3)

    assert worker.tasks == []
    async with db.sessionmaker() as session:
        stored_job = await session.get(Job, job.id)
        cursor = await session.get(ConsumerCursor, "test.worker")
    assert stored_job is not None
    assert stored_job.status == DONE
    assert cursor is not None
    assert cursor.event_id == event.id


async def test_a_stopped_worker_leaves_work_for_the_next_one(settings: Settings, db: Database) -> None:
    runtime = Runtime(settings=settings, db=db, hub=LocalHub())
    seen: list[int] = []

    async def on_event(session: AsyncSession, event: Event) -> None:
        seen.append(event.id)

    runtime.consumers.add(Consumer("test.later", on_event))
    worker = BackgroundWorker(runtime)
    worker.start()
    await asyncio.sleep(0)
    await asyncio.wait_for(worker.stop(), timeout=3)

    async with db.sessionmaker() as session:
        event = record_event(session, "test.later")
        await session.commit()
    await asyncio.sleep(0.05)
    assert seen == []

    worker = BackgroundWorker(runtime)
    worker.start()
    try:
        for _ in range(300):
            if seen:
                break
            await asyncio.sleep(0.01)
    finally:
        await asyncio.wait_for(worker.stop(), timeout=3)
    assert seen == [event.id]
