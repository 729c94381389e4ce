"""Does a Redis gate in front of the database pay for a hot item? Measured, both ways, on one rush.

    .venv/bin/python -m bench.stock_gate --database-url postgresql+asyncpg://postgres@127.0.0.1/test \\
        --redis-url redis://127.0.0.1:6379/0
    .venv/bin/python -m bench.stock_gate --quick      # SQLite, and Redis if LINLI_REDIS_URL is set

The same rush twice, in this process, on the app's own checkout path (``CheckoutQueue.place``, the
group-committing queue every ``POST /api/v1/orders`` goes through) without the HTTP layer around it:
``--neighbours`` neighbours, ``--concurrency`` at a time, each trying once to buy 1–3 of ``--units``.

- **database**: every attempt goes to the queue; the database's conditional update decides.
- **gate + database**: an atomic Lua script in Redis first takes the units from a counter of what is left
  (or refuses at once when too few are left); only attempts the gate let through reach the queue, and an
  attempt the database still refuses (the per-user limit) gives its units back to the gate.

Prints, per mode: time to sell out, orders per second up to it, latency p50/p99 of the successful and of
the refused attempts, refusals per second after the sell-out, and the audit — oversold units (reserved
beyond stock) and, for the gate, whether its counter ended equal to what the database has left (an
under-selling gate would refuse units the database still had). The verdict compares the two.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from bench.event_log import peak_rss_mib, scratch_database
from bench.flash_sale import PER_USER_LIMIT, percentile, put_on_sale
from linli.core.db import Database
from linli.identity.models import User
from linli.live.models import LineupItem
from linli.orders.checkout import CheckoutQueue
from linli.orders.errors import PurchaseLimitReached, SoldOut
from linli.orders.schemas import OrderCreate

console = Console(width=max(Console().width, 150))

# Takes ARGV[1] units from KEYS[1] if that many are left: {1, left after} — or refuses: {0, left}.
TAKE = """
local left = tonumber(redis.call('GET', KEYS[1]))
if left == nil then return {0, -1} end
local want = tonumber(ARGV[1])
if left < want then return {0, left} end
return {1, redis.call('DECRBY', KEYS[1], want)}
"""


@dataclass
class Mode:
    name: str
    orders: int = 0
    units: int = 0
    refused: int = 0
    limit_refused: int = 0
    gate_refused: int = 0
    sellout_seconds: float = 0.0
    seconds: float = 0.0
    ok_ms: list[float] = field(default_factory=list)
    refused_ms: list[float] = field(default_factory=list)
    refused_after_sellout: int = 0
    oversold: int = 0
    db_left: int = 0
    gate_left: int | None = None

    @property
    def orders_per_second(self) -> float:
        return self.orders / self.sellout_seconds if self.sellout_seconds else 0.0

    @property
    def refusals_per_second_after(self) -> float:
        tail = self.seconds - self.sellout_seconds
        return self.refused_after_sellout / tail if tail > 0 else 0.0


async def _users(db: Database, count: int) -> list[User]:
    """The sale's neighbours (the newest ``count`` users) as the app's login look-up hands them to the
    queue: id and phone."""
    async with db.sessionmaker() as session:
        query = select(User.id, User.phone).order_by(User.id.desc()).limit(count)
        rows = (await session.execute(query)).all()
    return [User(id=row.id, phone=row.phone) for row in reversed(rows)]


async def _rush(
    db: Database,
    *,
    mode: Mode,
    units: int,
    neighbours: int,
    concurrency: int,
    seed: int,
    gate: Any | None,
) -> Mode:
    sale = await put_on_sale(db, units=units, neighbours=neighbours)
    users = await _users(db, neighbours)
    rng = random.Random(seed)
    wanted = [rng.randint(1, PER_USER_LIMIT) for _ in users]
    queue = CheckoutQueue(db, reservation_minutes=10)
    take = key = None
    if gate is not None:
        key = f"linli:bench:gate:{uuid.uuid4().hex}:item:{sale.item_id}"
        await gate.set(key, units)
        take = gate.register_script(TAKE)
    began = time.perf_counter()
    last_ok = began
    sold_out_at: float | None = None
    cursor = iter(range(len(users)))

    async def attempt(index: int) -> None:
        nonlocal last_ok, sold_out_at
        qty = wanted[index]
        data = OrderCreate(session_id=sale.session_id, lineup_item_id=sale.item_id, quantity=qty)
        start = time.perf_counter()
        if take is not None:
            granted, _left = await take(keys=[key], args=[qty])
            if not granted:
                done = time.perf_counter()
                mode.refused += 1
                mode.gate_refused += 1
                mode.refused_ms.append((done - start) * 1000)
                if sold_out_at is None:
                    sold_out_at = done
                mode.refused_after_sellout += 1
                return
        try:
            await queue.place(users[index], data)
        except (SoldOut, PurchaseLimitReached) as exc:
            done = time.perf_counter()
            if gate is not None:
                await gate.incrby(key, qty)  # the database said no: the units go back to the gate
            mode.refused += 1
            mode.limit_refused += isinstance(exc, PurchaseLimitReached)
            mode.refused_ms.append((done - start) * 1000)
            if isinstance(exc, SoldOut) and sold_out_at is None:
                sold_out_at = done
            if sold_out_at is not None:
                mode.refused_after_sellout += 1
            return
        done = time.perf_counter()
        mode.orders += 1
        mode.units += qty
        mode.ok_ms.append((done - start) * 1000)
        last_ok = done

    async def client() -> None:
        for index in cursor:
            await attempt(index)

    try:
        await asyncio.gather(*(client() for _ in range(concurrency)))
    finally:
        await queue.close()
    end = time.perf_counter()
    mode.sellout_seconds = last_ok - began
    mode.seconds = end - began
    async with db.sessionmaker() as session:
        item = await session.get(LineupItem, sale.item_id)
        assert item is not None
        mode.oversold = max(0, item.reserved + item.sold - item.stock)
        mode.db_left = item.stock - item.reserved - item.sold
    if gate is not None:
        mode.gate_left = int(await gate.get(key))
        await gate.delete(key)
    return mode


def report(database: str, modes: list[Mode], rss: float) -> int:
    table = Table(title=f"stock gate — {database}, in-process checkout path (peak RSS {rss:.0f} MiB)")
    for column in (
        "mode",
        "sold out (s)",
        "orders/s",
        "ok p50/p99 ms",
        "refused p50/p99 ms",
        "refusals/s after",
        "orders",
        "oversold",
        "left: db / gate",
    ):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for m in modes:
        table.add_row(
            m.name,
            f"{m.sellout_seconds:.2f}",
            f"{m.orders_per_second:,.0f}",
            f"{percentile(m.ok_ms, 0.5):.1f} / {percentile(m.ok_ms, 0.99):.1f}",
            f"{percentile(m.refused_ms, 0.5):.2f} / {percentile(m.refused_ms, 0.99):.2f}",
            f"{m.refusals_per_second_after:,.0f}",
            f"{m.orders:,}",
            str(m.oversold),
            f"{m.db_left} / {'—' if m.gate_left is None else m.gate_left}",
        )
    console.print(table)
    failed = any(m.oversold for m in modes) or any(
        m.gate_left is not None and m.gate_left != m.db_left for m in modes
    )
    if len(modes) == 2:
        plain, gated = modes
        refused_gain = percentile(plain.refused_ms, 0.5) - percentile(gated.refused_ms, 0.5)
        sellout_gain = plain.sellout_seconds - gated.sellout_seconds
        console.print(
            f"verdict: the gate answers a refusal {refused_gain:+.2f} ms sooner at p50 and "
            f"moves the sell-out by {sellout_gain:+.2f} s; "
            f"its counter {'matches' if gated.gate_left == gated.db_left else 'DRIFTED FROM'} the database."
        )
    if failed:
        console.print("[red]FAILED: oversold units, or a gate that drifted from the database[/red]")
    return 1 if failed else 0


async def bench(args: argparse.Namespace) -> int:
    code = 0
    urls: list[str | None] = [None] if not args.skip_sqlite else []
    if args.database_url and not args.database_url.startswith("sqlite"):
        urls.append(args.database_url)
    gate = None
    if args.redis_url:
        import redis.asyncio as redis

        gate = redis.from_url(args.redis_url)
    try:
        for database_url in urls:
            async with scratch_database(database_url) as url:
                name = "sqlite" if url.startswith("sqlite") else "postgresql"
                db = Database(url)
                try:
                    modes = []
                    for label, with_gate in (("database", None), ("gate + database", gate)):
                        if label != "database" and gate is None:
                            console.print("no --redis-url: the gate is not measured")
                            continue
                        with console.status(f"{name}: {label}, {args.neighbours:,} neighbours rushing …"):
                            modes.append(
                                await _rush(
                                    db,
                                    mode=Mode(label),
                                    units=args.units,
                                    neighbours=args.neighbours,
                                    concurrency=args.concurrency,
                                    seed=args.seed,
                                    gate=with_gate,
                                )
                            )
                    code |= report(name, modes, peak_rss_mib())
                finally:
                    await db.dispose()
    finally:
        if gate is not None:
            await gate.aclose()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stock_gate", description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, default=5_000)
    parser.add_argument("--neighbours", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64, help="attempts in flight (default 64)")
    parser.add_argument("--database-url", help="a PostgreSQL URL: also run there (a scratch database)")
    parser.add_argument("--redis-url", default=os.environ.get("LINLI_REDIS_URL"), help="Redis for the gate")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="1,000 neighbours for 250 units (make bench)")
    args = parser.parse_args(argv)
    if args.quick:
        args.units, args.neighbours = 250, 1_000
    return asyncio.run(bench(args))


if __name__ == "__main__":
    raise SystemExit(main())
