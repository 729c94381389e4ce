"""What each step of a paid order costs through the real server: CPU per request, by part of the machine.

    .venv/bin/python -m bench.request_costs                  # SQLite, one app process
    .venv/bin/python -m bench.request_costs --database-url postgresql+asyncpg://postgres@127.0.0.1/test \\
        --redis-url redis://127.0.0.1:6379/0                 # PostgreSQL, two app processes + Redis
    .venv/bin/python -m bench.request_costs --quick          # 250 orders (make bench)

``bench.flash_sale`` runs every step at once, so its CPU table says what the rush cost as a whole, not
which request costs what; its ``--step-costs`` measures each step in-process, through httpx's in-process
transport, whose own cost is in its figures. Here the same real ``uvicorn`` server as the flash sale's
serves one step at a time, on 64 keep-alive connections (aiohttp), each phase run to its end before the
next begins:

1. ``create``: ``--orders`` neighbours each order one unit with its sandbox payment (one request);
2. ``tap``: each taps the cashier's 支付 (the processor's side: it schedules its notifications, held
   back here so that they do not mix with the taps);
3. ``notify``: the client posts those notifications, signed as the sandbox signs them — the first, and
   the repeated and stale ones the sandbox sends too — to ``/api/v1/payments/notify/sandbox``;
4. ``consumers``: the time and CPU until the event consumers have caught up (no requests);
5. ``confirm``: each asks whether their order is paid (it is);
6. ``refusal``: as many other neighbours try to order the sold-out item.

Prints per phase: requests, requests a second, and CPU milliseconds per request of the app processes,
their poster helpers, PostgreSQL and the client (``bench.cpu_use``); every answer must be the expected
one, or the run fails.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from bench.cpu_use import APP, CLIENT, HELPERS, POSTGRES, CpuUse, cpu_use
from bench.event_log import peak_rss_mib, scratch_database
from bench.flash_sale import SECRET, Sale, caught_up, put_on_sale, server
from linli.core.db import Database
from linli.core.jobs import Job
from linli.orders.payments.providers.sandbox import DELIVER_JOB, sandbox_secret, signed_headers

console = Console(width=max(Console().width, 120))

CONNECTIONS = 64
# The sandbox's own deliveries wait this long: the client posts the notifications itself, in their phase.
HELD_BACK_SECONDS = 3600.0


@dataclass
class Phase:
    name: str
    requests: int
    seconds: float
    cpu: Counter[str]

    def per_request_ms(self, part: str) -> float:
        return self.cpu.get(part, 0.0) * 1000 / max(self.requests, 1)


async def run_phase(
    cpu: CpuUse,
    name: str,
    items: Sequence[Any],
    step: Callable[[Any], Awaitable[int]],
    expected: int,
) -> Phase:
    """``step`` for every item, ``CONNECTIONS`` at a time; each must answer ``expected``."""
    waiting = list(reversed(items))
    answers: Counter[int] = Counter()

    async def worker() -> None:
        while waiting:
            answers[await step(waiting.pop())] += 1

    cpu.mark(f"{name}:start")
    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
    seconds = time.perf_counter() - began
    cpu.mark(f"{name}:end")
    if set(answers) != {expected}:
        raise RuntimeError(f"{name}: expected every answer {expected}, got {dict(answers)}")
    return Phase(name, len(items), seconds, cpu.between(f"{name}:start", f"{name}:end"))


async def measure(base: str, db: Database, sale: Sale, orders: int, cpu: CpuUse) -> list[Phase]:
    buyers, refused = sale.tokens[:orders], sale.tokens[orders:]
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(base, connector=connector) as client:

        async def post(path: str, body: Any, token: str | None = None, **headers: str) -> tuple[int, Any]:
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            raw = body if isinstance(body, bytes) else None
            async with client.post(path, data=raw, json=None if raw else body, headers=headers) as response:
                return response.status, await response.json(content_type=None)

        placed: dict[str, dict[str, Any]] = {}

        async def create(token: str) -> int:
            body = {
                "session_id": sale.session_id,
                "lineup_item_id": sale.item_id,
                "quantity": 1,
                "pay": {"provider": "sandbox"},
            }
            status, order = await post("/api/v1/orders", body, token, **{"Idempotency-Key": token[-32:]})
            if status == 201:
                placed[token] = order
            return status

        async def tap(token: str) -> int:
            out_trade_no = placed[token]["payment"]["out_trade_no"]
            status, _ = await post(f"/api/v1/payments/sandbox/{out_trade_no}", {"result": "succeeded"}, token)
            return status

        secret = sandbox_secret(SECRET)

        async def notify(body: str) -> int:
            raw = body.encode()
            status, _ = await post("/api/v1/payments/notify/sandbox", raw, **signed_headers(secret, raw))
            return status

        async def confirm(token: str) -> int:
            status, answer = await post(f"/api/v1/orders/{placed[token]['id']}/payments/confirm", {}, token)
            if answer.get("order_status") != "paid":
                raise RuntimeError(f"confirm: the order is {answer.get('order_status')!r}, not paid")
            return status

        phases = [await run_phase(cpu, "create (order + payment)", buyers, create, 201)]
        phases.append(await run_phase(cpu, "sandbox tap (the processor's)", buyers, tap, 202))
        async with db.sessionmaker() as session:
            jobs = (await session.scalars(select(Job).where(Job.kind == DELIVER_JOB).order_by(Job.id))).all()
            bodies = [str(job.payload["body"]) for job in jobs]
        phases.append(await run_phase(cpu, "notification (first, repeated, stale)", bodies, notify, 200))
        cpu.mark("consumers:start")
        began = time.perf_counter()
        while not await caught_up(db):
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - began
        cpu.mark("consumers:end")
        used = cpu.between("consumers:start", "consumers:end")
        phases.append(Phase("consumers catching up (per paid order)", orders, seconds, used))
        phases.append(await run_phase(cpu, "confirm, already paid", buyers, confirm, 200))
        phases.append(await run_phase(cpu, "sold-out refusal", refused, create, 409))
    return phases


async def bench(args: argparse.Namespace) -> list[Phase]:
    async with scratch_database(args.database_url) as url:
        is_sqlite = url.startswith("sqlite")
        db = Database(url)
        try:
            sale = await put_on_sale(db, units=args.orders, neighbours=args.orders * 2)
            with tempfile.TemporaryDirectory(prefix="linli-bench-var-") as tmp:
                async with server(
                    url,
                    workers=1 if is_sqlite else args.workers,
                    redis_url=None if is_sqlite else args.redis_url,
                    var=Path(tmp),
                    profile=None,
                    sandbox_delay=HELD_BACK_SECONDS,
                ) as (base, pid):
                    with cpu_use(pid) as cpu:
                        return await measure(base, db, sale, args.orders, cpu)
        finally:
            await db.dispose()


def report(phases: list[Phase], title: str) -> None:
    table = Table(title=title)
    for column in ("step", "requests", "per s", "app ms", "helpers ms", "postgresql ms", "client ms"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for phase in phases:
        table.add_row(
            phase.name,
            f"{phase.requests:,}",
            f"{phase.requests / phase.seconds:,.0f}" if phase.seconds else "–",
            *(f"{phase.per_request_ms(part):.2f}" for part in (APP, HELPERS, POSTGRES, CLIENT)),
        )
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.request_costs", description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="a PostgreSQL URL (a scratch database beside it); else SQLite")
    parser.add_argument("--redis-url", help="Redis for the app processes' hub (PostgreSQL only)")
    parser.add_argument("--orders", type=int, default=2_500, help="orders paid (default 2,500)")
    parser.add_argument("--workers", type=int, default=2, help="server processes on PostgreSQL (default 2)")
    parser.add_argument("--quick", action="store_true", help="250 orders (make bench)")
    args = parser.parse_args(argv)
    if args.quick:
        args.orders = min(args.orders, 250)
    if args.orders < 1:
        parser.error("--orders must be positive")
    phases = asyncio.run(bench(args))
    where = (
        "SQLite, one app process" if not args.database_url else f"PostgreSQL, {args.workers} app processes"
    )
    report(phases, f"each step through the real server, {CONNECTIONS} connections: {where}; CPU per request")
    console.print(f"bench process peak RSS: {peak_rss_mib():.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
