"""A lane: a thread with its own event loop and its own database connections, for short transactions that
hold a hot row.

In a rush the app's loop has hundreds of requests ready at every turn, and a turn takes 100–900 ms. A
transaction run there holds its row locks across those turns: between its last ``UPDATE`` and its
``COMMIT`` every other transaction wanting the row waits for a whole turn of a busy loop. When the row is
the flash sale's item (a paid order moves its units from reserved to sold), everything that wants the
item — the next paid order, the checkout batch reserving for the next orders — queues behind that turn,
and the queue grows with the load. On a lane's loop a transaction's steps wait only for the database and
the GIL.

``Lane.run(work)`` runs ``work(db)`` there with the lane's own ``Database`` and returns what it returns
(or raises what it raises). On SQLite — one writer connection, shared with the app — the work runs in the
caller's loop with the app's database instead. The lane's commits that append events are told to the
app's database, so its consumers wake as for its own commits.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from linli.core.db import Database

log = logging.getLogger(__name__)

T = TypeVar("T")


class Lane:
    """This process's lane ``name`` for ``db``'s database; the thread starts with the first work."""

    def __init__(
        self, db: Database, name: str, *, pool_size: int = 4, own_thread: bool | None = None
    ) -> None:
        self.db = db
        self.name = name
        self.pool_size = pool_size
        self.own_thread = (not db.is_sqlite) if own_thread is None else own_thread
        self._lock = threading.Lock()
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lane_db: Database | None = None
        self._app_loop: asyncio.AbstractEventLoop | None = None
        self._start_error: Exception | None = None

    @property
    def lane_db(self) -> Database:
        """Where the lane's work runs: its own database on its thread, or the app's."""
        return self._lane_db if self.own_thread and self._lane_db is not None else self.db

    async def run(self, work: Callable[[Database], Awaitable[T]]) -> T:
        if not self.own_thread:
            return await work(self.db)
        self._app_loop = asyncio.get_running_loop()
        loop = self.loop()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._work(work), loop))

    def call_soon(self, callback: Callable[..., object], *args: object) -> None:
        """Call ``callback(*args)`` on the lane's loop (from the app's loop); starts the thread if need be."""
        self._app_loop = asyncio.get_running_loop()
        self.loop().call_soon_threadsafe(callback, *args)

    async def _work(self, work: Callable[[Database], Awaitable[T]]) -> T:
        assert self._lane_db is not None
        return await work(self._lane_db)

    def loop(self) -> asyncio.AbstractEventLoop:
        """The lane's loop, its thread started if it is not running."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._started.clear()
                self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
                self._thread.start()
            thread = self._thread
        self._started.wait()
        loop = self._loop
        if loop is None:
            # The thread could not start (its database, its loop): the caller fails now, and the next
            # one tries a new thread.
            with self._lock:
                if self._thread is thread:
                    self._thread = None
            raise RuntimeError(f"the {self.name} thread did not start") from self._start_error
        return loop

    def _serve(self) -> None:
        try:
            try:
                import uvloop

                loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
                loop = asyncio.new_event_loop()
            lane_db = self._lane_db = Database(self.db.url, pool_size=self.pool_size)
        except Exception as exc:
            log.exception("the %s thread could not start", self.name)
            self._start_error, self._loop = exc, None
            self._started.set()
            return
        lane_db.commit_hooks.append(self._tell_app)
        self._start_error, self._loop = None, loop
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(lane_db.dispose())
            loop.close()

    def _tell_app(self, appended: list[tuple[str, int | None]]) -> None:
        """A lane's commit appended events: the app's database counts it (its consumers wake on it)."""
        if self._app_loop is not None:
            self._app_loop.call_soon_threadsafe(self.db.note_event_commit, appended)

    async def close(self, before: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        """Stop the thread (after ``before`` has run on its loop, when given)."""
        loop, thread = self._loop, self._thread
        if not self.own_thread or loop is None or thread is None:
            if before is not None:
                await before()
            return
        if before is not None:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(before(), loop))
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 10)
        with self._lock:
            self._thread, self._loop = None, None
            self._started.clear()
