"""The event log under load: append N events in batched transactions, then drain them through a consumer.

    .venv/bin/python -m bench.event_log                      # SQLite (a scratch file), 20,000 events
    .venv/bin/python -m bench.event_log --database-url postgresql+asyncpg://postgres@127.0.0.1/test
    .venv/bin/python -m bench.event_log --quick              # 5,000 events

On PostgreSQL a scratch database is created next to the one named (so the benchmark neither needs nor
touches its tables) and dropped afterwards. Prints append and consume throughput, per-batch latency
percentiles and the process's peak resident memory; exits non-zero unless every event was consumed
exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.consumers import Consumer, run_consumer_once
from linli.core.db import Database
from linli.core.events import Event, Subjects, record_event
from linli.core.migrate import upgrade

console = Console()
TYPES = ("live.viewed", "comment.posted", "card.clicked", "order.paid", "share.poster_shown")


@dataclass
class Phase:
    name: str
    events: int = 0
    seconds: float = 0.0
    batch_seconds: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.batch_seconds)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _payload(n: int) -> dict[str, object]:
    return {"n": n, "price_fen": 2500, "quantity": 1 + n % 3, "note": "春日青团节"}


async def append(db: Database, total: int, batch: int, writers: int, progress: Progress) -> Phase:
    """``writers`` concurrent writers append ``total`` events, ``batch`` per transaction."""
    phase = Phase("append")
    task = progress.add_task("append", total=total)
    batches = [(start, min(batch, total - start)) for start in range(0, total, batch)]
    queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    for item in batches:
        queue.put_nowait(item)

    async def writer() -> None:
        while not queue.empty():
            start, size = queue.get_nowait()
            began = time.perf_counter()
            async with db.sessionmaker() as session:
                for n in range(start, start + size):
                    record_event(
                        session,
                        TYPES[n % len(TYPES)],
                        actor_id=n % 997,
                        subjects=Subjects(user_id=n % 997, session_id=1, community_id=1 + n % 8),
                        payload=_payload(n),
                    )
                await session.commit()
            phase.batch_seconds.append(time.perf_counter() - began)
            phase.events += size
            progress.advance(task, size)

    began = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    phase.seconds = time.perf_counter() - began
    return phase


async def consume(db: Database, total: int, batch: int, progress: Progress) -> tuple[Phase, Counter[int]]:
    """Drain the log through one consumer, a batch per transaction, counting every delivery."""
    phase = Phase("consume")
    task = progress.add_task("consume", total=total)
    deliveries: Counter[int] = Counter()

    async def handler(session: AsyncSession, event: Event) -> None:
        deliveries[event.payload["n"]] += 1

    consumer = Consumer(f"bench-{uuid.uuid4().hex[:8]}", handler)
    began = time.perf_counter()
    idle_since: float | None = None
    while phase.events < total:
        batch_began = time.perf_counter()
        moved = await run_consumer_once(db, consumer, batch_size=batch)
        if moved:
            phase.batch_seconds.append(time.perf_counter() - batch_began)
            phase.events += moved
            progress.advance(task, moved)
            idle_since = None
            continue
        # On PostgreSQL a transaction open elsewhere on the server holds the read horizon back a moment.
        idle_since = idle_since or time.perf_counter()
        if time.perf_counter() - idle_since > 10:
            break
        await asyncio.sleep(0.01)
    phase.seconds = time.perf_counter() - began
    return phase, deliveries


@asynccontextmanager
async def scratch_database(database_url: str | None) -> AsyncIterator[str]:
    """A migrated, empty database: a SQLite file in a temporary directory, or a PostgreSQL database
    created on the server of ``database_url`` and dropped afterwards."""
    if database_url is None or database_url.startswith("sqlite"):
        with tempfile.TemporaryDirectory(prefix="linli-bench-") as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            await asyncio.to_thread(upgrade, url)
            yield url
        return

    import asyncpg

    server = make_url(database_url)
    admin_dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"linli_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        await asyncio.to_thread(upgrade, url)
        yield url
    finally:
        admin = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def peak_rss_mib() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run(args: argparse.Namespace) -> int:
    async with scratch_database(args.database_url) as url:
        db = Database(url)
        kind = db.engine.dialect.name
        console.print(
            f"[bold]event log[/bold] on {kind}: {args.events:,} events, {args.batch} per transaction, "
            f"{args.writers} writer(s)"
        )
        try:
            columns = (
                TextColumn("{task.description:>8}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            with Progress(*columns, console=console, transient=True) as progress:
                appended = await append(db, args.events, args.batch, args.writers, progress)
                consumed, deliveries = await consume(db, args.events, args.batch, progress)
        finally:
            await db.dispose()

    table = Table(title=f"event log on {kind}")
    table.add_column("phase")
    table.add_column("events", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("events/s", justify="right")
    table.add_column("batch p50 ms", justify="right")
    table.add_column("batch p99 ms", justify="right")
    for phase in (appended, consumed):
        table.add_row(
            phase.name,
            f"{phase.events:,}",
            f"{phase.seconds:.2f}",
            f"{phase.per_second:,.0f}",
            f"{phase.percentile(0.50) * 1000:.1f}",
            f"{phase.percentile(0.99) * 1000:.1f}",
        )
    console.print(table)
    console.print(f"peak RSS: {peak_rss_mib():.0f} MiB")

    missing = args.events - len(deliveries)
    repeated = sum(count - 1 for count in deliveries.values() if count > 1)
    if missing or repeated:
        console.print(f"[red]FAILED[/red]: {missing} event(s) never consumed, {repeated} consumed twice")
        return 1
    console.print("[green]every event consumed exactly once[/green]")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.event_log", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events to append (default 20,000)")
    parser.add_argument("--batch", type=int, default=500, help="events per transaction, both phases")
    parser.add_argument("--writers", type=int, default=1, help="concurrent appending writers")
    parser.add_argument("--database-url", help="a PostgreSQL URL (a scratch database is made beside it)")
    parser.add_argument("--quick", action="store_true", help="5,000 events (for `make bench`)")
    args = parser.parse_args(argv)
    if args.quick:
        args.events = min(args.events, 5_000)
    if args.events < 1 or args.batch < 1 or args.writers < 1:
        parser.error("--events, --batch and --writers must be positive")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
