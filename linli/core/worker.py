"""The loops that run consumers and durable timers: inside the app by default, or in ``linli worker``."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from linli.core.consumers import Consumer, consume
from linli.core.jobs import run_due_jobs
from linli.core.observability import RequestGauge
from linli.core.runtime import Runtime

log = logging.getLogger(__name__)

# How soon to look again when another process held a consumer's cursor.
BUSY_ELSEWHERE_SECONDS = 0.02
# How often a consumer yielding to a rush looks whether it has quietened.
YIELD_RECHECK_SECONDS = 0.25


class BackgroundWorker:
    """Runs every registered consumer and the durable timers until stopped.

    ``stop`` lets the pass in flight finish (a job's completion, a batch's cursor move) before the loops
    end, so a clean shutdown leaves nothing half-done for the lease or the retry count to clean up.

    ``requests`` is the app's gauge of requests in flight: with it, the consumers that yield to requests
    wait out a rush in this process (``Consumer.yields_to_requests``). A worker of its own
    (``linli worker``) has none and never waits."""

    def __init__(self, runtime: Runtime, *, requests: RequestGauge | None = None) -> None:
        self.runtime = runtime
        self.requests = requests
        # consumer name -> loop time it began waiting for a quiet moment
        self.yielding: dict[str, float] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.wakes: dict[str, asyncio.Event] = {}
        self.stopping = asyncio.Event()

    def start(self) -> None:
        self.stopping.clear()
        lanes: dict[str, list[Consumer]] = {}
        for consumer in self.runtime.consumers:
            lanes.setdefault(consumer.lane, []).append(consumer)
        self.wakes = {lane: asyncio.Event() for lane in lanes}
        self.tasks = [
            *(
                asyncio.create_task(
                    self._consume(consumers, self.wakes[lane]), name=f"linli-consumers-{lane}"
                )
                for lane, consumers in lanes.items()
            ),
            asyncio.create_task(self._timers(), name="linli-timers"),
        ]

    def poke(self) -> None:
        """Something was just committed: look sooner than the poll interval (every lane)."""
        for wake in self.wakes.values():
            wake.set()

    async def stop(self, *, grace_seconds: float = 10.0) -> None:
        """Finish the work in hand (up to ``grace_seconds``), then end the loops."""
        self.stopping.set()
        self.poke()
        if self.tasks:
            _, unfinished = await asyncio.wait(self.tasks, timeout=grace_seconds)
            for task in unfinished:
                log.warning("background task %s did not stop in time; cancelling it", task.get_name())
                task.cancel()
            for task in unfinished:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.tasks = []

    async def _sleep(self, seconds: float, *, wake: asyncio.Event | None = None) -> None:
        seconds = max(seconds, 0.0)
        waits = [asyncio.ensure_future(self.stopping.wait())]
        if wake is not None:
            waits.append(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        if wake is not None:
            wake.clear()

    async def _consume(self, consumers: list[Consumer], wake: asyncio.Event) -> None:
        """Passes over one lane's consumers: on a poke after a commit that appended events, and at least every
        ``consumer_poll_seconds`` (events other processes wrote wake nobody here).

        A consumer whose last pass only stepped over other types' events (a comment, to the reservations
        consumer) rests until the next poll instead of running a transaction on every poke; one that
        handled something, or found nothing new, or is behind by a whole batch, stays prompt — so the
        room's consumer still runs on every comment while the others take the log in batches."""
        settings = self.runtime.settings
        db = self.runtime.db
        loop = asyncio.get_running_loop()
        resting: dict[str, float] = {}  # consumer name -> loop time it rests until
        seen_commits = -1
        polled = loop.time()
        again = True
        while not self.stopping.is_set():
            commits, now = db.event_commits, loop.time()
            if (
                again
                or commits != seen_commits
                or now - polled >= settings.consumer_poll_seconds
                or any(until <= now for until in resting.values())
            ):
                seen_commits, polled = commits, now
                # Something moved: look again at once (a consumer may be a whole batch behind).
                moved, elsewhere = await self._pass(consumers, resting, now)
                again = moved > 0
                if again:
                    continue
                if elsewhere:
                    # Another process holds a cursor (it passed what it found, or it polled while we
                    # were poked): look again in a moment rather than at the next poll, or what we were
                    # poked about waits for that process's next pass.
                    await self._sleep(BUSY_ELSEWHERE_SECONDS, wake=wake)
                    again = True
                    continue
            due = min([polled + settings.consumer_poll_seconds, *resting.values()])
            await self._sleep(due - loop.time(), wake=wake)

    async def _pass(
        self, consumers: list[Consumer], resting: dict[str, float], now: float
    ) -> tuple[int, bool]:
        """One pass over the lane: events passed, and whether a cursor was busy in another process."""
        settings = self.runtime.settings
        moved = 0
        elsewhere = False
        for consumer in consumers:
            if self.stopping.is_set():
                break
            if resting.get(consumer.name, now) > now:
                continue
            if consumer.yields_to_requests and self._in_a_rush():
                since = self.yielding.setdefault(consumer.name, now)
                if now - since < settings.consumer_yield_seconds:
                    resting[consumer.name] = min(
                        now + YIELD_RECHECK_SECONDS, since + settings.consumer_yield_seconds
                    )
                    continue
            self.yielding.pop(consumer.name, None)
            try:
                result = await consume(
                    self.runtime.db,
                    consumer,
                    batch_size=settings.consumer_batch_size,
                    max_attempts=settings.consumer_max_attempts,
                )
            except Exception:
                # One consumer's trouble (its database pass failed) must not starve the others.
                log.exception("consumer %s pass failed", consumer.name)
                continue
            moved += result.passed
            elsewhere = elsewhere or result.elsewhere
            if result.passed and not result.handled and result.passed < settings.consumer_batch_size:
                resting[consumer.name] = now + settings.consumer_poll_seconds
            else:
                resting.pop(consumer.name, None)
        return moved, elsewhere

    def _in_a_rush(self) -> bool:
        return (
            self.requests is not None
            and self.requests.in_flight >= self.runtime.settings.consumer_yield_in_flight
        )

    async def _timers(self) -> None:
        settings = self.runtime.settings
        while not self.stopping.is_set():
            fired = 0
            try:
                fired = await run_due_jobs(
                    self.runtime.db, self.runtime.jobs, lease_seconds=settings.job_lease_seconds
                )
            except Exception:
                log.exception("timer pass failed")
            if fired == 0:
                await self._sleep(settings.job_poll_seconds)
