"""The loops that run consumers and durable timers: inside the app by default, or in ``linli worker``."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from linli.core.consumers import run_consumer_once
from linli.core.jobs import run_due_jobs
from linli.core.runtime import Runtime

log = logging.getLogger(__name__)


class BackgroundWorker:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.tasks: list[asyncio.Task[None]] = []
        self.wake = asyncio.Event()

    def start(self) -> None:
        self.tasks = [
            asyncio.create_task(self._consume(), name="linli-consumers"),
            asyncio.create_task(self._timers(), name="linli-timers"),
        ]

    def poke(self) -> None:
        """Something was just committed: look sooner than the poll interval."""
        self.wake.set()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks = []

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout=seconds)
        self.wake.clear()

    async def _consume(self) -> None:
        settings = self.runtime.settings
        while True:
            moved = 0
            try:
                for consumer in self.runtime.consumers:
                    moved += await run_consumer_once(
                        self.runtime.db,
                        consumer,
                        batch_size=settings.consumer_batch_size,
                        max_attempts=settings.consumer_max_attempts,
                    )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("consumer pass failed")
            if moved == 0:
                await self._sleep(settings.consumer_poll_seconds)

    async def _timers(self) -> None:
        settings = self.runtime.settings
        while True:
            fired = 0
            try:
                fired = await run_due_jobs(
                    self.runtime.db, self.runtime.jobs, lease_seconds=settings.job_lease_seconds
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("timer pass failed")
            if fired == 0:
                await asyncio.sleep(settings.job_poll_seconds)
