"""The background worker: consumers and timers running in the app's process, started and stopped with it."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Receive, Scope, Send

import linli.core.worker as worker_module
from linli.core.clock import utcnow
from linli.core.config import Settings
from linli.core.consumers import Consumer, ConsumerCursor, Pass, consume
from linli.core.db import Database
from linli.core.events import Event, record_event
from linli.core.hub import LocalHub
from linli.core.jobs import DONE, Job, schedule_job
from linli.core.observability import RequestGauge, RequestIdMiddleware
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


async def test_a_consumer_that_only_steps_over_other_events_rests_until_the_next_poll(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The room's consumer runs on every commit; one whose types are rare (reservations) does not run a
    transaction per comment, but takes the other events in a batch at the poll — and still gets its own."""
    runtime = Runtime(
        settings=settings.model_copy(update={"consumer_poll_seconds": 5.0}), db=db, hub=LocalHub()
    )
    prompt_seen: asyncio.Queue[int] = asyncio.Queue()
    rare_seen: asyncio.Queue[int] = asyncio.Queue()
    passes = {"prompt": 0, "rare": 0}

    def counting(name: str, queue: asyncio.Queue[int]) -> Consumer:
        async def handler(session: AsyncSession, event: Event) -> None:
            await queue.put(event.id)

        return Consumer(name, handler, types=frozenset({name}))

    runtime.consumers.add(counting("prompt", prompt_seen))
    runtime.consumers.add(counting("rare", rare_seen))

    async def counted(db: Database, consumer: Consumer, **kwargs: int) -> Pass:
        passes[consumer.name] += 1
        return await consume(db, consumer, **kwargs)

    monkeypatch.setattr(worker_module, "consume", counted)
    worker = BackgroundWorker(runtime)
    worker.start()
    try:
        await asyncio.sleep(0.1)  # the first passes find the log empty
        before = dict(passes)
        for _ in range(5):
            async with db.sessionmaker() as session:
                event = record_event(session, "prompt")
                await session.commit()
            worker.poke()
            # Well before the 5 s poll: the poke after the commit ran it.
            assert await asyncio.wait_for(prompt_seen.get(), timeout=2.5) == event.id
        # The rare one stepped over the first of those events, then rested.
        assert passes["rare"] - before["rare"] <= 2

        async with db.sessionmaker() as session:
            rare = record_event(session, "rare")
            await session.commit()
        worker.poke()
        # Its own event reaches it, at the latest when it wakes from its rest.
        assert await asyncio.wait_for(rare_seen.get(), timeout=8) == rare.id
    finally:
        await asyncio.wait_for(worker.stop(), timeout=3)


async def test_commits_that_append_events_are_counted_and_others_are_not(db: Database) -> None:
    """What lets the worker ignore a poke after a read or a refused request."""
    start = db.event_commits
    async with db.sessionmaker() as session:
        record_event(session, "test.counted")
        await session.commit()
    assert db.event_commits == start + 1

    async with db.sessionmaker() as session:
        await session.get(ConsumerCursor, "nobody")
        await session.commit()
    async with db.sessionmaker() as session:
        record_event(session, "test.rolled_back")
        await session.flush()
        await session.rollback()
        await session.commit()
    assert db.event_commits == start + 1


async def test_a_consumer_that_yields_to_requests_waits_out_a_rush_but_not_past_its_bound(
    settings: Settings, db: Database
) -> None:
    """While the process serves many requests, the group counts and posters wait (up to
    ``consumer_yield_seconds``); the room's consumer does not. Once quiet, they are prompt again."""
    runtime = Runtime(
        settings=settings.model_copy(
            update={
                "consumer_yield_seconds": 1.5,
                "consumer_yield_in_flight": 8,
                "consumer_poll_seconds": 0.1,
            }
        ),
        db=db,
        hub=LocalHub(),
    )
    seen: dict[str, asyncio.Queue[int]] = {"room": asyncio.Queue(), "counts": asyncio.Queue()}

    def recording(name: str, *, yields: bool) -> Consumer:
        async def handler(session: AsyncSession, event: Event) -> None:
            await seen[name].put(event.id)

        return Consumer(name, handler, types=frozenset({"test.paid"}), yields_to_requests=yields)

    runtime.consumers.add(recording("room", yields=False))
    runtime.consumers.add(recording("counts", yields=True))
    requests = RequestGauge()
    worker = BackgroundWorker(runtime, requests=requests)
    worker.start()

    async def paid() -> int:
        async with db.sessionmaker() as session:
            event = record_event(session, "test.paid")
            await session.commit()
        worker.poke()
        return event.id

    loop = asyncio.get_running_loop()
    try:
        await asyncio.sleep(0.1)  # the first passes find the log empty
        requests.in_flight = 8  # a rush
        first = await paid()
        began = loop.time()
        assert await asyncio.wait_for(seen["room"].get(), timeout=1) == first
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(seen["counts"].get(), timeout=0.8)
        # Still a rush, but it waited as long as it may: it runs once, then waits again.
        assert await asyncio.wait_for(seen["counts"].get(), timeout=2) == first
        assert 1.3 <= loop.time() - began <= 2.5

        requests.in_flight = 7  # below the mark: quiet enough
        second = await paid()
        assert await asyncio.wait_for(seen["counts"].get(), timeout=0.6) == second
        assert await asyncio.wait_for(seen["room"].get(), timeout=0.6) == second
    finally:
        await asyncio.wait_for(worker.stop(), timeout=3)


async def test_the_request_gauge_counts_requests_in_flight_and_forgets_one_that_failed() -> None:
    gauge = RequestGauge()
    during: list[int] = []
    all_in = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        during.append(gauge.in_flight)
        if len(during) == 3:
            all_in.set()
        await all_in.wait()  # the three requests are served at the same time
        if scope["path"] == "/boom":
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = RequestIdMiddleware(app, gauge=gauge)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=middleware), base_url="http://t"
    ) as client:
        answers = await asyncio.gather(*(client.get("/ok") for _ in range(3)))
        with pytest.raises(RuntimeError):
            await client.get("/boom")
    assert [answer.status_code for answer in answers] == [204, 204, 204]
    assert during == [1, 2, 3, 1]
    assert gauge.in_flight == 0
