"""Where a benchmark's CPU goes: CPU seconds by part of the machine, between named marks.

On a two-core box the client, the app, its helpers and PostgreSQL share the same cores, so "the sale took
N seconds" says little until it is split: which part burnt the cores, and how many milliseconds of CPU one
order cost. A thread samples every process's CPU time (psutil) twice a second and keeps, per part, the sum
of what its processes used; a process that appears counts from its start, one that ends keeps what it was
last seen using."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import psutil

APP = "app processes"
HELPERS = "app helpers (posters)"
POSTGRES = "postgresql"
REDIS = "redis"
CLIENT = "benchmark client"
OTHER = "other"


class CpuUse:
    """``mark(name)`` after ``start()``; ``between(a, b)`` the CPU seconds per part from mark a to mark b.

    ``server_pid`` is the server's supervisor: its children are the app processes, their children the
    helpers (the poster renderer). Everything named postgres or redis-server is the database or Redis."""

    def __init__(self, server_pid: int | None = None, *, interval: float = 0.5) -> None:
        self.server_pid = server_pid
        self.interval = interval
        self.marks: dict[str, Counter[str]] = {}
        self._seen: dict[int, tuple[float, float, str]] = {}  # pid -> (create time, CPU seconds seen, part)
        self._totals: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._me = psutil.Process().pid

    def start(self) -> None:
        self._sample()
        self._thread = threading.Thread(target=self._run, name="cpu-use", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def mark(self, name: str) -> None:
        self._sample()
        with self._lock:
            self.marks[name] = Counter(self._totals)

    def between(self, first: str, last: str) -> Counter[str]:
        used = Counter(self.marks[last])
        used.subtract(self.marks[first])
        return Counter({part: seconds for part, seconds in used.items() if seconds > 0})

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _part(self, process: psutil.Process) -> str:
        name = process.name()
        if name.startswith("postgres") or name == "pgbench":
            return POSTGRES
        if name.startswith("redis"):
            return REDIS
        ancestors = [p.pid for p in process.parents()]
        if process.pid == self.server_pid:
            return APP
        if self.server_pid is not None and self.server_pid in ancestors:
            return APP if ancestors[0] == self.server_pid else HELPERS
        if process.pid == self._me or self._me in ancestors:
            return CLIENT
        return OTHER

    def _sample(self) -> None:
        with self._lock:
            for process in psutil.process_iter():
                try:
                    with process.oneshot():
                        times = process.cpu_times()
                        used = times.user + times.system
                        created = process.create_time()
                        known = self._seen.get(process.pid)
                        if known is not None and known[0] == created:
                            before, part = known[1], known[2]
                        else:
                            # Present before the first sample: only what it uses from now on counts.
                            before, part = (0.0 if self._thread_started() else used), self._part(process)
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                self._seen[process.pid] = (created, used, part)
                self._totals[part] += max(used - before, 0.0)

    def _thread_started(self) -> bool:
        return self._thread is not None


@contextmanager
def cpu_use(server_pid: int | None = None) -> Iterator[CpuUse]:
    use = CpuUse(server_pid)
    use.start()
    try:
        yield use
    finally:
        use.stop()
