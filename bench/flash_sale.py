"""The flash sale: neighbours rush a hot live item through the real HTTP API and pay through the sandbox.

    .venv/bin/python -m bench.flash_sale                     # SQLite: 20,000 neighbours for 5,000 units
    .venv/bin/python -m bench.flash_sale --database-url postgresql+asyncpg://postgres@127.0.0.1/test \\
        --redis-url redis://127.0.0.1:6379/0                 # then PostgreSQL (+ Redis), and pgbench
    .venv/bin/python -m bench.flash_sale --quick             # 1,000 neighbours for 250 units (make bench)

Each database gets a scratch copy (migrated), one live session with one item of ``--units`` units at
¥25 (3 per person), and ``--neighbours`` logged-in members of one community. A real server process
(``uvicorn linli.web.main:app --workers N``) serves it on 127.0.0.1; ``--connections`` HTTP/1.1 keep-alive
connections (aiohttp) carry the neighbours, each trying once to buy 1–3 units: ``POST /api/v1/orders`` with
``pay`` (the order and its sandbox payment in one request, as the checkout sheet does), and on 201, after
``--pay-after`` seconds, ``POST /api/v1/payments/sandbox/…`` (the cashier's 支付). The sandbox processor
then notifies the server as a real one does — late, signed, sometimes twice or stale — from the server's
own durable jobs, and the run waits until every payment has settled and the event consumers (which yield
to requests during the rush) have caught up.

Prints: time to sell out (the last successful reservation), successful orders per second over that time,
create-order latency p50/p99 (all attempts, and the successful ones), rejected attempts per second,
oversold units (reserved + sold beyond stock, or sold without a paid order behind them) and lost payments
(money the processor took with no paid or refunded order for it) — both must be 0, or the run fails —
how long a neighbour waited from the 支付 tap until their order was paid (p50/p99), the time until
every payment settled and until the consumers caught up, the ratio of orders per second to the
``pgbench`` tps of the bare transaction (reserve + insert order) at the same number of connections
on the same PostgreSQL server, and the CPU seconds each part of the machine used (``bench.cpu_use``).
``--step-costs`` adds each step's SQL statements and CPU per request, in-process; ``--profile DIR`` runs
the server under py-spy (raw stacks per run, for flamegraphs).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
from rich.console import Console
from rich.table import Table
from sqlalchemy import event, func, insert, literal, select
from sqlalchemy.engine import make_url

from bench.cpu_use import cpu_use
from bench.event_log import peak_rss_mib, scratch_database
from linli.catalog.models import Product
from linli.community.models import Community, Membership, PickupPoint
from linli.core import jobs
from linli.core.clock import as_utc, utcnow
from linli.core.consumers import ConsumerCursor
from linli.core.db import Database
from linli.core.events import Position, read_events
from linli.core.jobs import Job
from linli.core.lowpriority import die_with_parent
from linli.identity.models import AuthSession, User, UserRole
from linli.identity.tokens import hash_token
from linli.live.models import LineupItem, LiveSession
from linli.orders.models import PAID_STATUSES, Order, OrderLine
from linli.orders.payments.models import Payment, PaymentStatus, Refund

console = Console(width=max(Console().width, 180))

SECRET = "bench-flash-sale"
# The sandbox cashier sends the neighbour back to the room this long after 支付 (cashier.html).
CASHIER_RETURN_SECONDS = 3.0
PER_USER_LIMIT = 3
PRICE_FEN = 2500


@dataclass
class Sale:
    session_id: int
    item_id: int
    tokens: list[str]


@dataclass
class Run:
    database: str
    workers: int
    connections: int
    units: int
    neighbours: int
    orders: int = 0
    units_ordered: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    paid_taps: int = 0
    confirms: int = 0
    # out_trade_no → wall-clock time its 支付 tap was answered; and, after the audit, seconds from each
    # tap to its order being paid (the processor's notification reached us and was taken).
    tapped_at: dict[str, float] = field(default_factory=dict)
    paid_after_tap: list[float] = field(default_factory=list)
    sellout_seconds: float = 0.0
    load_seconds: float = 0.0
    settle_seconds: float | None = None
    caught_up_seconds: float | None = None
    create_seconds: list[float] = field(default_factory=list)
    # When each of those attempts was answered, in seconds from the start of the rush (same order).
    create_answered: list[float] = field(default_factory=list)
    create_ok_seconds: list[float] = field(default_factory=list)
    oversold: int = 0
    lost_payments: int = 0
    units_left: int = 0
    paid_orders: int = 0
    steps: dict[str, StepCost] = field(default_factory=dict)
    retried_jobs: dict[str, tuple[int, str]] = field(default_factory=dict)
    backends: Counter[str] = field(default_factory=Counter)
    cpu_rush: Counter[str] = field(default_factory=Counter)
    cpu_after: Counter[str] = field(default_factory=Counter)
    note: str = ""

    @property
    def orders_per_second(self) -> float:
        return self.orders / self.sellout_seconds if self.sellout_seconds else 0.0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def rejected_per_second(self) -> float:
        # Rejections come mostly after the sell-out, so they are counted over the whole load.
        return self.rejected_total / self.load_seconds if self.load_seconds else 0.0


def latency_by_phase(run: Run) -> str:
    """Create latency before the sell-out (the attempts answered by then, most of them orders) and after
    it (refusals, sharing the cores with the payments that follow): where the p99 comes from."""
    before: list[float] = []
    after: list[float] = []
    for at, took in zip(run.create_answered, run.create_seconds, strict=True):
        (before if at <= run.sellout_seconds else after).append(took)

    def figures(values: list[float]) -> str:
        if not values:
            return "none"
        p50, p99 = (percentile(values, q) * 1000 for q in (0.5, 0.99))
        return f"{len(values):,} answered, p50 {p50:.0f} / p99 {p99:.0f} ms"

    return f"create latency until the sell-out: {figures(before)}; after it: {figures(after)}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- the sale's data ---------------------------------------------------------------------------------


async def put_on_sale(db: Database, *, units: int, neighbours: int) -> Sale:
    """One live session with one item of ``units`` units, and ``neighbours`` members of one community
    with a pickup point, each holding a bearer token. Bulk inserts: 20,000 logins take seconds."""
    now = utcnow()
    tokens = [f"bench-{uuid.uuid4().hex}" for _ in range(neighbours)]
    async with db.sessionmaker() as session:
        community = Community(name="梧桐苑", address="梧桐路 88 弄", pickup_points=[])
        live_session = LiveSession(
            title="春日青团节",
            scheduled_start=now - timedelta(minutes=5),
            status="live",
            started_at=now - timedelta(minutes=1),
            lineup=[],
            communities=[],
        )
        product = Product(name="春季限定青团", store_price_fen=3000, images=[])
        session.add_all([community, live_session, product])
        await session.flush()
        session.add(PickupPoint(community_id=community.id, name="1 号门岗", address="梧桐路 88 弄 1 号"))
        item = LineupItem(
            session_id=live_session.id,
            product_id=product.id,
            live_price_fen=PRICE_FEN,
            stock=units,
            reserved=0,
            sold=0,
            per_user_limit=PER_USER_LIMIT,
        )
        session.add(item)
        await session.flush()
        base = 15000000000 + random.randrange(10**8) * 10
        ids = list(
            await session.scalars(
                insert(User).returning(User.id),
                [
                    {"phone": str(base + i), "nickname": f"邻居{i}", "is_active": True, "created_at": now}
                    for i in range(neighbours)
                ],
            )
        )
        await session.execute(
            insert(UserRole), [{"user_id": i, "role": "customer", "granted_at": now} for i in ids]
        )
        await session.execute(
            insert(Membership),
            [{"user_id": i, "community_id": community.id, "source": "chosen", "joined_at": now} for i in ids],
        )
        expires = now + timedelta(days=1)
        await session.execute(
            insert(AuthSession),
            [
                {"token_hash": hash_token(t), "user_id": i, "created_at": now, "expires_at": expires}
                for i, t in zip(ids, tokens, strict=True)
            ],
        )
        sale = Sale(session_id=live_session.id, item_id=item.id, tokens=tokens)
        await session.commit()
    return sale


async def audit(db: Database, sale: Sale, run: Run) -> None:
    """Oversold units and lost payments, from the database alone."""
    async with db.sessionmaker() as session:
        row = (
            await session.execute(
                select(LineupItem.stock, LineupItem.reserved, LineupItem.sold).where(
                    LineupItem.id == sale.item_id
                )
            )
        ).one()
        paid_units = await session.scalar(
            select(func.coalesce(func.sum(OrderLine.quantity), 0))
            .join(Order, Order.id == OrderLine.order_id)
            .where(
                OrderLine.lineup_item_id == sale.item_id, Order.status.in_([s.value for s in PAID_STATUSES])
            )
        )
        run.paid_orders = (
            await session.scalar(
                select(func.count())
                .select_from(Order)
                .where(
                    Order.session_id == sale.session_id, Order.status.in_([s.value for s in PAID_STATUSES])
                )
            )
            or 0
        )
        lost = await session.scalar(lost_payments_query())
        paid = (
            await session.execute(
                select(Payment.out_trade_no, Order.paid_at)
                .join(Order, Order.id == Payment.order_id)
                .where(Order.session_id == sale.session_id, Order.paid_at.is_not(None))
            )
        ).all()
        retried = (
            await session.execute(
                select(Job.kind, func.count(), func.max(Job.last_error))
                .where(Job.last_error.is_not(None))
                .group_by(Job.kind)
            )
        ).all()
    run.units_left = row.stock - row.reserved - row.sold
    run.paid_after_tap = [
        max(as_utc(paid_at).timestamp() - run.tapped_at[no], 0.0)
        for no, paid_at in paid
        if no in run.tapped_at and paid_at is not None
    ]
    run.retried_jobs = {kind: (n, str(error)[:160]) for kind, n, error in retried}
    run.oversold = max(row.reserved + row.sold - row.stock, 0) + abs(row.sold - int(paid_units or 0))
    run.lost_payments = int(lost or 0)
    if row.reserved + row.sold != run.units_ordered:
        run.note += f" held {row.reserved + row.sold} units but {run.units_ordered} were ordered;"
        run.oversold = max(run.oversold, row.reserved + row.sold - run.units_ordered)


def lost_payments_query() -> Any:
    """Money the sandbox processor took (its "paid" job) without a succeeded payment whose order is paid,
    or a refund of it under way."""
    settled = (
        select(Payment.id)
        .join(Order, Order.id == Payment.order_id)
        .where(
            literal("sandbox:") + Payment.out_trade_no + literal(":paid") == Job.key,
            Payment.status == PaymentStatus.succeeded.value,
            Order.status.in_([s.value for s in PAID_STATUSES]) | Payment.id.in_(select(Refund.payment_id)),
        )
    )
    return select(func.count()).select_from(Job).where(Job.key.like("sandbox:%:paid"), ~settled.exists())


async def settled(db: Database, run: Run) -> bool:
    """Every payment the processor took has settled. Asked four times a second while the server works:
    the full check (a join over every payment) runs only once the sandbox has no delivery left to make —
    run every time, it took PostgreSQL a core for the minute payments were arriving."""
    async with db.sessionmaker() as session:
        delivering = await session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.key.like("sandbox:%"), Job.status.in_((jobs.PENDING, jobs.RUNNING)))
        )
        if delivering:
            return False
        return int(await session.scalar(lost_payments_query()) or 0) == 0


# --- the server ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def server(
    url: str,
    *,
    workers: int,
    redis_url: str | None,
    var: Path,
    profile: Path | None,
    separate_worker: bool = False,
    sandbox_delay: float = 0.5,
) -> AsyncIterator[tuple[str, int]]:
    """``uvicorn linli.web.main:app`` on a free port, its durable jobs (the sandbox's notifications,
    expiries) and event consumers run in its own processes — or, with ``separate_worker``, in one
    ``linli worker`` beside them, as the README deploys production; yields the base URL and the
    supervisor's pid once ``/healthz`` answers. The sandbox notifies ``sandbox_delay`` seconds after a
    tap."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "LINLI_DATABASE_URL": url,
        "LINLI_SECRET_KEY": SECRET,
        "LINLI_VAR_DIR": str(var),
        "LINLI_SEED_DEMO": "false",
        "LINLI_PUBLIC_BASE_URL": base,
        "LINLI_RUN_WORKERS_IN_APP": "false" if separate_worker else "true",
        "LINLI_JOB_POLL_SECONDS": "0.2",
        "LINLI_PAYMENTS_SANDBOX_DELAY_SECONDS": str(sandbox_delay),
        # As in production: console-rendered lines (and their rich tracebacks) cost the loop real time.
        "LINLI_LOG_JSON": os.environ.get("LINLI_LOG_JSON", "true"),
    }
    if redis_url:
        env["LINLI_REDIS_URL"] = redis_url
        env["LINLI_REDIS_PREFIX"] = f"linli-bench-{uuid.uuid4().hex[:8]}"
    command = command_line(port, workers)
    if profile is not None:
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        command = [py_spy, "record", "--subprocesses", "--format", "raw", "--rate", "250"]
        command += ["-o", str(profile), "--", *command_line(port, workers)]
    log = (var / "server.log").open("w")
    worker = None
    if separate_worker:
        worker = subprocess.Popen(
            [sys.executable, "-m", "linli.cli", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    process = subprocess.Popen(
        command,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    try:
        async with httpx.AsyncClient(base_url=base, timeout=2.0) as client:
            for _ in range(1200):
                if process.poll() is not None:
                    raise RuntimeError(f"the server exited: {(var / 'server.log').read_text()[-2000:]}")
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("the server did not answer /healthz within 120 s")
        yield base, process.pid
    finally:
        # The server's own process group: uvicorn's supervisor and its workers (and py-spy).
        os.killpg(process.pid, signal.SIGINT if profile is not None else signal.SIGTERM)
        try:
            await asyncio.to_thread(process.wait, 15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # Under py-spy the leader is py-spy, which ends once it has written its stacks: uvicorn's workers
        # could outlive it and go on polling, taking CPU from the runs after this one.
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        if worker is not None:
            worker.terminate()
            try:
                await asyncio.to_thread(worker.wait, 15)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        log.close()


def command_line(port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "linli.web.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
        # Longer than any pause of a loaded client, so the server never closes a connection the client is
        # about to reuse (a POST lost in that race is not retried).
        "--timeout-keep-alive",
        "120",
        # A stopped run must not leave a server finishing a backlog of requests whose client is gone.
        "--timeout-graceful-shutdown",
        "5",
    ]


# --- the neighbours ------------------------------------------------------------------------------------


async def rush(
    base: str,
    sale: Sale,
    run: Run,
    *,
    seed: int,
    pay_after: tuple[float, float],
    confirm: bool = True,
    tried: Callable[[], None] = lambda: None,
) -> None:
    """Every neighbour tries once, ``run.connections`` at a time; the successful ones pay. ``tried`` is
    called when the last neighbour has had their answer (payments may still be on their way).

    ``pay_after`` is how long a neighbour takes from the order to the cashier's 支付 (seconds, drawn
    uniformly): (0, 0) pays at once on the same connection, before that connection's next neighbour
    tries; otherwise payers come back after their pause on connections of their own, as people on their
    own phones do, while the rush goes on.

    The load comes from aiohttp on keep-alive connections: on these 2 cores the client shares the CPU
    with the server, and httpx's pool spent ~2.7 ms of CPU per request at 64 connections (it capped the
    whole run near 400 requests a second), aiohttp ~0.12 ms."""
    rng = random.Random(seed)
    queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    for token in sale.tokens:
        queue.put_nowait((token, rng.randint(1, PER_USER_LIMIT)))
    began = time.perf_counter()
    last_success = began
    paying: set[asyncio.Task[None]] = set()

    async def post(
        client: aiohttp.ClientSession, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, Any]:
        async with client.post(path, json=body, headers=headers) as response:
            return response.status, orjson.loads(await response.read() or b"null")

    def failed(exc: Exception) -> None:
        run.errors += 1
        if len(run.error_samples) < 3:
            run.error_samples.append(f"{type(exc).__name__}: {exc}")

    async def pay(
        client: aiohttp.ClientSession, order_id: int, out_trade_no: str, headers: dict[str, str], pause: float
    ) -> None:
        try:
            if pause:
                await asyncio.sleep(pause)
            status, tap = await post(
                client,
                f"/api/v1/payments/sandbox/{out_trade_no}",
                {"result": "succeeded"},
                headers,
            )
            if status != 202:
                raise RuntimeError(f"sandbox pay {status}: {str(tap)[:200]}")
            run.paid_taps += 1
            run.tapped_at[out_trade_no] = time.time()
        except Exception as exc:  # a benchmark reports failures instead of stopping at the first
            failed(exc)
            return
        if not confirm:
            return  # the notification alone pays it
        # On their own phone (the payers' connections), whatever the rush's connection does next.
        task = asyncio.create_task(returned(order_id, headers))
        paying.add(task)
        task.add_done_callback(paying.discard)

    async def returned(order_id: int, headers: dict[str, str]) -> None:
        """Back in the room from the cashier, as the sheet does: ask whether the money went through (the
        server asks the processor) until the order shows paid, 1, 2, 3, 4 s apart, then every 5 s."""
        try:
            await asyncio.sleep(CASHIER_RETURN_SECONDS)
            for tries in range(1, 31):
                path = f"/api/v1/orders/{order_id}/payments/confirm"
                status, answer = await post(payers, path, {}, headers)
                if status != 200:
                    raise RuntimeError(f"confirm {status}: {str(answer)[:200]}")
                run.confirms += 1
                if answer["order_status"] == "paid":
                    return
                await asyncio.sleep(min(tries, 5))
            raise RuntimeError(f"order {order_id} not paid two minutes after its tap")
        except Exception as exc:
            failed(exc)

    async def neighbour(client: aiohttp.ClientSession, payers: aiohttp.ClientSession) -> None:
        nonlocal last_success
        while not queue.empty():
            token, quantity = queue.get_nowait()
            headers = {"Authorization": f"Bearer {token}"}
            body = {
                "session_id": sale.session_id,
                "lineup_item_id": sale.item_id,
                "quantity": quantity,
                "pay": {"provider": "sandbox"},  # the payment opens with the order, as the sheet does
            }
            try:
                started = time.perf_counter()
                status, order = await post(
                    client, "/api/v1/orders", body, {**headers, "Idempotency-Key": token[-32:]}
                )
                took = time.perf_counter() - started
                run.create_seconds.append(took)
                run.create_answered.append(started + took - began)
                if status == 409:
                    run.rejected[str(order.get("error"))] += 1
                    continue
                if status != 201:
                    raise RuntimeError(f"create {status}: {str(order)[:200]}")
                if not order.get("payment"):
                    raise RuntimeError(f"no payment with the order: {str(order)[:200]}")
                run.create_ok_seconds.append(took)
                last_success = time.perf_counter()
                run.orders += 1
                run.units_ordered += quantity
            except Exception as exc:
                failed(exc)
                continue
            out_trade_no = order["payment"]["out_trade_no"]
            if pay_after[1] <= 0:
                await pay(client, order["id"], out_trade_no, headers, 0)
            else:
                pause = rng.uniform(*pay_after)
                task = asyncio.create_task(pay(payers, order["id"], out_trade_no, headers, pause))
                paying.add(task)
                task.add_done_callback(paying.discard)

    timeout = aiohttp.ClientTimeout(total=60.0)
    async with (
        aiohttp.ClientSession(
            base, connector=aiohttp.TCPConnector(limit=run.connections), timeout=timeout
        ) as client,
        # Payers (their taps and their coming back) get as many connections as the buyers: with no
        # limit, 2,500 phones asking whether they paid crowd the buyers' 64 out of the two cores.
        aiohttp.ClientSession(
            base, connector=aiohttp.TCPConnector(limit=run.connections), timeout=timeout
        ) as payers,
    ):
        await asyncio.gather(*(neighbour(client, payers) for _ in range(run.connections)))
        run.load_seconds = time.perf_counter() - began
        run.sellout_seconds = last_success - began
        tried()
        while paying:
            await asyncio.gather(*list(paying))


@asynccontextmanager
async def sample_backends(url: str, run: Run) -> AsyncIterator[None]:
    """What the server's PostgreSQL backends are doing, sampled every 50 ms while the block runs: running
    a statement, waiting for a lock (the hot item row), or idle in a transaction — waiting on the app
    process between two statements, while holding whatever the transaction has locked."""
    import asyncpg

    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            rows = await conn.fetch(
                "SELECT state, wait_event_type, wait_event, left(query, 40) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            )
            for state, wait_type, wait, query in rows:
                if state == "idle":
                    continue
                label = state if wait_type in (None, "Client") else f"{state}, waiting on {wait_type}:{wait}"
                if state == "idle in transaction" and query.startswith("UPDATE lineup_items"):
                    # It has moved the item's counters: the hot row stays locked until the app commits.
                    label += " holding the item row"
                run.backends[label] += 1
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)

    task = asyncio.create_task(sample())
    try:
        yield
    finally:
        stop.set()
        await task
        await conn.close()


async def caught_up(db: Database) -> bool:
    """Every event consumer has passed the whole log (group counts, posters, attribution: the work that
    yields to requests during the rush)."""
    async with db.sessionmaker() as session:
        for cursor in (await session.scalars(select(ConsumerCursor))).all():
            if await read_events(session, Position(cursor.txid, cursor.event_id), limit=1):
                return False
    return True


async def wait_settled(db: Database, run: Run, *, timeout: float) -> None:
    """Until every payment the processor took has paid its order (its notifications arrive late), then
    until the event consumers have caught up with the log."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        if run.settle_seconds is None and await settled(db, run):
            run.settle_seconds = time.perf_counter() - began
        if run.settle_seconds is not None and await caught_up(db):
            run.caught_up_seconds = time.perf_counter() - began
            return
        await asyncio.sleep(0.25)


# --- statements per step (in-process, counted by an engine listener) -----------------------------------


@dataclass
class StepCost:
    requests: int = 0
    statements: int = 0
    cpu_seconds: float = 0.0

    @property
    def statements_each(self) -> float:
        return self.statements / self.requests if self.requests else 0.0

    @property
    def cpu_ms_each(self) -> float:
        return self.cpu_seconds * 1000 / self.requests if self.requests else 0.0


async def step_costs(url: str, var: Path, *, buyers: int = 200) -> dict[str, StepCost]:
    """What each step of a checkout costs in the app, measured in-process through the ASGI app (no HTTP
    server, no other load): SQL statements and CPU milliseconds per request for ``buyers`` neighbours
    each creating an order with its sandbox payment (one request, as the sheet does), tapping 支付 and
    being notified, then the event consumers' work for those events, then sold-out refusals. The CPU is
    this whole process's — the in-process client included, so ``GET /healthz`` is measured too as the
    floor every request pays."""
    from asgi_lifespan import LifespanManager

    from linli.core.config import Settings
    from linli.core.consumers import Consumer, run_consumer_once
    from linli.core.hub import LocalHub
    from linli.core.runtime import Runtime
    from linli.orders.payments.providers.base import ReportedStatus
    from linli.orders.payments.providers.sandbox import (
        _notification_body,
        sandbox_secret,
        signed_headers,
    )
    from linli.referral.tasks import prerenderer_of
    from linli.web.app import create_app

    db = Database(url)
    sale = await put_on_sale(db, units=buyers * PER_USER_LIMIT, neighbours=buyers)
    logging.disable(logging.INFO)  # create_app configures logging: no line per request here
    settings = Settings(
        database_url=url, var_dir=var, secret_key=SECRET, run_workers_in_app=False, seed_demo=False
    )
    runtime = Runtime(settings=settings, db=db, hub=LocalHub())
    app = create_app(settings, runtime=runtime)
    costs: dict[str, StepCost] = {}
    current = [""]

    def count(*_: object) -> None:
        costs.setdefault(current[0], StepCost()).statements += 1

    @asynccontextmanager
    async def step(name: str, requests: int = 1) -> AsyncIterator[None]:
        current[0] = name
        cost = costs.setdefault(name, StepCost())
        began = time.process_time()
        try:
            yield
        finally:
            cost.cpu_seconds += time.process_time() - began
            cost.requests += requests
            current[0] = ""

    async def drain(consumer: Consumer) -> None:
        while await run_consumer_once(db, consumer):
            pass

    secret = sandbox_secret(SECRET)
    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                for consumer in runtime.consumers:
                    await drain(consumer)  # the cursors start past the sale's set-up
                for _ in range(buyers):
                    async with step("GET /healthz (the floor)"):
                        await client.get("/healthz")
                for token in sale.tokens:
                    headers = {"Authorization": f"Bearer {token}"}
                    body = {
                        "session_id": sale.session_id,
                        "lineup_item_id": sale.item_id,
                        "quantity": 1,
                        "pay": {"provider": "sandbox"},
                    }
                    async with step("create order, with its payment"):
                        order = (await client.post("/api/v1/orders", json=body, headers=headers)).json()
                    payment = order["payment"]
                    async with step("sandbox tap"):
                        await client.post(
                            f"/api/v1/payments/sandbox/{payment['out_trade_no']}",
                            json={"result": "succeeded"},
                            headers=headers,
                        )
                    note = _notification_body(
                        secret,
                        out_trade_no=payment["out_trade_no"],
                        amount_fen=payment["amount_fen"],
                        status=ReportedStatus.succeeded,
                        label="paid",
                        at=utcnow(),
                    ).encode()

                    notify = partial(
                        client.post,
                        "/api/v1/payments/notify/sandbox",
                        content=note,
                        headers=signed_headers(secret, note),
                    )
                    confirm = partial(
                        client.post, f"/api/v1/orders/{order['id']}/payments/confirm", headers=headers
                    )
                    # Half the buyers are paid by their notification, then confirm; the other half by
                    # confirming (the processor asked), then the notification comes: each path both ways.
                    first, then = (
                        (("notification that takes the payment", notify), ("confirm, already paid", confirm))
                        if order["id"] % 2
                        else (
                            ("confirm that takes the payment (asks the processor)", confirm),
                            ("notification, already taken", notify),
                        )
                    )
                    for name, send in (first, then):
                        async with step(name):
                            answer = await send()
                        assert answer.status_code == 200, answer.text
                        assert send is notify or answer.json()["order_status"] == "paid", answer.text
                for consumer in runtime.consumers:
                    async with step(f"consumer {consumer.name}, per order", buyers):
                        await drain(consumer)
                await prerenderer_of(runtime).settle()  # its drawings run in a process of its own
                async with db.sessionmaker() as session:
                    item = await session.get(LineupItem, sale.item_id)
                    assert item is not None
                    item.stock = item.reserved + item.sold
                    await session.commit()
                for token in sale.tokens:
                    headers = {"Authorization": f"Bearer {token}"}
                    body = {"session_id": sale.session_id, "lineup_item_id": sale.item_id, "quantity": 1}
                    async with step("sold-out refusal"):
                        await client.post("/api/v1/orders", json=body, headers=headers)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
        await db.dispose()
    costs.pop("", None)
    return costs


# --- pgbench ----------------------------------------------------------------------------------------------

PGBENCH_SCHEMA = """
CREATE TABLE items (id int PRIMARY KEY, stock int NOT NULL, reserved int NOT NULL DEFAULT 0,
                    sold int NOT NULL DEFAULT 0, CHECK (reserved + sold <= stock));
CREATE TABLE orders (id bigserial PRIMARY KEY, item_id int NOT NULL REFERENCES items, user_id int NOT NULL,
                     quantity int NOT NULL, total_fen int NOT NULL, status varchar(24) NOT NULL,
                     created_at timestamptz NOT NULL);
INSERT INTO items (id, stock) VALUES (1, 2000000000);
"""
PGBENCH_SCRIPT = """\\set qty random(1, 3)
\\set uid random(1, 20000)
BEGIN;
UPDATE items SET reserved = reserved + :qty
  WHERE id = 1 AND stock - reserved - sold >= :qty RETURNING reserved;
INSERT INTO orders (item_id, user_id, quantity, total_fen, status, created_at)
  VALUES (1, :uid, :qty, 2500 * :qty, 'pending_payment', now()) RETURNING id;
END;
"""


async def pgbench_tps(database_url: str, connections: int, seconds: int) -> float | None:
    """tps of the bare reserve + insert-order transaction at ``connections`` clients (a scratch database)."""
    import asyncpg

    binary = shutil.which("pgbench")
    if binary is None:
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))
        binary = str(candidates[-1]) if candidates else None
    if binary is None:
        console.print("[yellow]pgbench not found: no ratio[/yellow]")
        return None
    server_url = make_url(database_url)
    admin_dsn = server_url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"linli_pgbench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        conn = await asyncpg.connect(
            server_url.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
        )
        try:
            await conn.execute(PGBENCH_SCHEMA)
        finally:
            await conn.close()
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
            script.write(PGBENCH_SCRIPT)
        command = [
            binary,
            "-n",
            "-c",
            str(connections),
            "-j",
            str(min(connections, os.cpu_count() or 1)),
            "-T",
            str(seconds),
            "-f",
            script.name,
            "-h",
            server_url.host or "127.0.0.1",
            "-p",
            str(server_url.port or 5432),
            "-U",
            server_url.username or "postgres",
            name,
        ]
        env = {**os.environ}
        if server_url.password:
            env["PGPASSWORD"] = server_url.password
        result = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, env=env, check=False
        )
        os.unlink(script.name)
        match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", result.stdout)
        if match is None:
            console.print(f"[yellow]pgbench failed[/yellow]: {result.stderr[-500:]}")
            return None
        return float(match.group(1))
    finally:
        admin = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


# --- runs and the report -------------------------------------------------------------------------------


async def bench_database(args: argparse.Namespace, database_url: str | None) -> Run:
    async with scratch_database(database_url) as url:
        is_sqlite = url.startswith("sqlite")
        workers = args.sqlite_workers if is_sqlite else args.workers
        db = Database(url)
        run = Run(
            "sqlite" if is_sqlite else "postgresql",
            workers,
            args.connections,
            args.units,
            args.neighbours,
        )
        with tempfile.TemporaryDirectory(prefix="linli-bench-var-") as tmp:
            var = Path(tmp)
            try:
                sale = await put_on_sale(db, units=args.units, neighbours=args.neighbours)
                profile = None
                if args.profile is not None:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    profile = args.profile / f"{run.database}.txt"
                redis_url = None if is_sqlite else args.redis_url
                async with server(
                    url,
                    workers=workers,
                    redis_url=redis_url,
                    var=var,
                    profile=profile,
                    separate_worker=args.separate_worker,
                ) as (base, pid):
                    with cpu_use(pid) as cpu:
                        cpu.mark("start")
                        with console.status(f"{run.database}: {args.neighbours:,} neighbours rushing …"):
                            # PostgreSQL's backends are sampled during the rush; SQLite has none.
                            backends = nullcontext() if is_sqlite else sample_backends(url, run)
                            async with backends:
                                await rush(
                                    base,
                                    sale,
                                    run,
                                    seed=args.seed,
                                    pay_after=args.pay_after,
                                    confirm=args.confirm,
                                    tried=partial(cpu.mark, "tried"),
                                )
                        with console.status(f"{run.database}: waiting for the notifications and consumers …"):
                            await wait_settled(db, run, timeout=args.settle_timeout)
                        cpu.mark("settled")
                        run.cpu_rush, run.cpu_after = (
                            cpu.between("start", "tried"),
                            cpu.between("tried", "settled"),
                        )
                await audit(db, sale, run)
                if run.errors:
                    _show_server_errors(var / "server.log")
                if args.keep_log is not None:
                    args.keep_log.mkdir(parents=True, exist_ok=True)
                    shutil.copy(var / "server.log", args.keep_log / f"{run.database}.log")
                if args.step_costs:
                    run.steps = await step_costs(url, var)
            except Exception:
                log = var / "server.log"
                if log.exists():
                    console.print(log.read_text()[-3000:])
                raise
            finally:
                await db.dispose()
    return run


def _show_server_errors(log: Path, limit: int = 3) -> None:
    """The server's first error lines (its log goes with the scratch directory)."""
    shown = 0
    for line in log.read_text(errors="replace").splitlines():
        if '"level": "error"' in line:
            console.print(
                f"[red]server:[/red] {line[:200]} … {line[-1500:]}",
                markup=True,
                highlight=False,
                soft_wrap=True,
            )
            shown += 1
            if shown >= limit:
                return


def report(runs: list[Run], pgbench: float | None, args: argparse.Namespace) -> int:
    table = Table(
        title=f"flash sale: {args.neighbours:,} neighbours for {args.units:,} units (1–3 each), "
        f"{args.connections} connections, through HTTP, paid through the sandbox "
        + (
            "at once"
            if args.pay_after[1] <= 0
            else f"{args.pay_after[0]:g}–{args.pay_after[1]:g} s after ordering"
        )
    )
    columns = (
        "database",
        "workers",
        "orders",
        "sold out in s",
        "orders/s",
        "create p50 ms",
        "create p99 ms",
        "ok p99 ms",
        "rejected",
        "rejected/s",
        "errors",
        "tap→paid p50/p99 s",
        "all paid +s",
        "consumers +s",
        "oversold",
        "lost payments",
        "× pgbench",
    )
    for name in columns:
        table.add_column(name, justify="left" if name == "database" else "right")
    for run in runs:
        ratio = f"{run.orders_per_second / pgbench:.2f}" if pgbench else "–"
        table.add_row(
            run.database,
            str(run.workers),
            f"{run.orders:,}",
            f"{run.sellout_seconds:.2f}",
            f"{run.orders_per_second:,.0f}",
            f"{percentile(run.create_seconds, 0.50) * 1000:.1f}",
            f"{percentile(run.create_seconds, 0.99) * 1000:.1f}",
            f"{percentile(run.create_ok_seconds, 0.99) * 1000:.1f}",
            f"{run.rejected_total:,}",
            f"{run.rejected_per_second:,.0f}",
            f"{run.errors:,}",
            f"{percentile(run.paid_after_tap, 0.5):.1f} / {percentile(run.paid_after_tap, 0.99):.1f}",
            "never" if run.settle_seconds is None else f"{run.settle_seconds:.1f}",
            "never" if run.caught_up_seconds is None else f"{run.caught_up_seconds:.1f}",
            "[green]0[/green]" if run.oversold == 0 else f"[red]{run.oversold}[/red]",
            "[green]0[/green]" if run.lost_payments == 0 else f"[red]{run.lost_payments}[/red]",
            ratio,
        )
    console.print(table)
    if pgbench:
        console.print(
            f"pgbench, bare reserve + insert-order transaction, {args.connections} connections: "
            f"{pgbench:,.0f} tps"
        )
    for run in runs:
        if run.steps:
            console.print(steps_table(run))
    for run in runs:
        total = sum(run.backends.values())
        if total:
            top = ", ".join(f"{label} {n / total:.0%}" for label, n in run.backends.most_common(5))
            console.print(f"{run.database} backends in a transaction during the rush (sampled): {top}")
        if run.create_answered:
            console.print(f"{run.database}: {latency_by_phase(run)}")
        if run.confirms:
            console.print(
                f"{run.database}: {run.confirms:,} confirm calls (the sheet asking, back from the cashier, "
                f"whether the money went through) for {run.paid_taps:,} taps"
            )
        for kind, (n, error) in run.retried_jobs.items():
            console.print(f"{run.database}: {n} {kind} job(s) failed at least once and were retried: {error}")
    for run in runs:
        if run.cpu_rush:
            console.print(cpu_table(run))
    console.print(f"bench process peak RSS: {peak_rss_mib():.0f} MiB")
    failed = False
    for run in runs:
        problems = []
        if run.oversold:
            problems.append(f"{run.oversold} oversold")
        if run.lost_payments:
            problems.append(f"{run.lost_payments} lost payments")
        if run.errors:
            problems.append(f"{run.errors} errors ({'; '.join(run.error_samples)})")
        if run.units_left:
            problems.append(f"{run.units_left} units left unsold")
        if run.settle_seconds is None:
            problems.append("payments not all settled")
        elif run.caught_up_seconds is None:
            problems.append("event consumers did not catch up")
        if run.paid_orders != run.orders:
            problems.append(f"{run.paid_orders} paid orders of {run.orders}")
        if problems or run.note:
            failed = failed or bool(problems)
            console.print(f"[red]FAILED[/red] {run.database}: {', '.join(problems)}{run.note}")
    if not failed:
        console.print("[green]sold out exactly: no unit oversold, every payment settled[/green]")
    return 1 if failed else 0


def steps_table(run: Run) -> Table:
    table = Table(title=f"{run.database}: each step alone, in-process (no HTTP server, no other load)")
    for name in ("step", "requests", "SQL statements each", "CPU ms each"):
        table.add_column(name, justify="left" if name == "step" else "right")
    for name, cost in run.steps.items():
        table.add_row(name, f"{cost.requests:,}", f"{cost.statements_each:.1f}", f"{cost.cpu_ms_each:.2f}")
    return table


def cpu_table(run: Run) -> Table:
    """CPU seconds by part of the machine during the rush (until every neighbour had an answer) and after
    it (payments still coming in, notifications until all settled), and per successful order over both."""
    table = Table(title=f"{run.database}: CPU seconds by part (2 cores give 2 s per second)")
    for name in ("part", "rush", "after the rush", "ms per order"):
        table.add_column(name, justify="left" if name == "part" else "right")
    parts = sorted(
        set(run.cpu_rush) | set(run.cpu_after), key=lambda p: -(run.cpu_rush[p] + run.cpu_after[p])
    )
    for part in [*parts, "all"]:
        rush = sum(run.cpu_rush.values()) if part == "all" else run.cpu_rush[part]
        after = sum(run.cpu_after.values()) if part == "all" else run.cpu_after[part]
        per_order = (rush + after) * 1000 / run.orders if run.orders else 0.0
        table.add_row(part, f"{rush:.1f}", f"{after:.1f}", f"{per_order:.1f}")
    return table


async def run(args: argparse.Namespace) -> int:
    console.print(
        f"[bold]flash sale[/bold]: {args.neighbours:,} neighbours, {args.units:,} units, "
        f"{args.connections} connections"
    )
    runs: list[Run] = []
    if not args.skip_sqlite:
        runs.append(await bench_database(args, None))
    pgbench = None
    if args.database_url and not args.database_url.startswith("sqlite"):
        runs.append(await bench_database(args, args.database_url))
        pgbench = await pgbench_tps(args.database_url, args.connections, args.pgbench_seconds)
    return report(runs, pgbench, args)


def _seconds_range(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    try:
        pair = (float(low), float(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError("seconds like 1-3, or 0") from None
    if not 0 <= pair[0] <= pair[1]:
        raise argparse.ArgumentTypeError("seconds like 1-3, low before high, none negative")
    return pair


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flash_sale", description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, default=5_000, help="units on sale (default 5,000)")
    parser.add_argument("--neighbours", type=int, default=20_000, help="neighbours, one try each (20,000)")
    parser.add_argument("--connections", type=int, default=64, help="HTTP connections at once (default 64)")
    parser.add_argument("--workers", type=int, default=2, help="server processes on PostgreSQL (default 2)")
    parser.add_argument(
        "--sqlite-workers", type=int, default=1, help="server processes on SQLite (default 1)"
    )
    parser.add_argument(
        "--database-url", help="a PostgreSQL URL: also run there (a scratch database beside it)"
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("LINLI_REDIS_URL"),
        help="Redis for the app processes' hub (default LINLI_REDIS_URL)",
    )
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--seed", type=int, default=7, help="the neighbours' quantities")
    parser.add_argument(
        "--pay-after",
        type=_seconds_range,
        default=(1.0, 3.0),
        metavar="LO-HI",
        help="seconds from an order to the cashier's 支付, drawn uniformly (default 1-3; 0 pays at once, "
        "on the connection that ordered)",
    )
    parser.add_argument(
        "--no-confirm",
        dest="confirm",
        action="store_false",
        help="payers do not come back to the room to ask whether the money went through (the sheet does, "
        "3 s after 支付: POST /api/v1/orders/{id}/payments/confirm); only the notification pays",
    )
    parser.add_argument("--settle-timeout", type=float, default=600.0, help="seconds to wait for payments")
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument(
        "--step-costs",
        action="store_true",
        help="SQL statements and CPU per request of each step, in-process",
    )
    parser.add_argument("--profile", type=Path, help="run the server under py-spy, raw stacks into DIR")
    parser.add_argument("--keep-log", type=Path, help="copy the server's log into DIR")
    parser.add_argument(
        "--separate-worker",
        action="store_true",
        help="consumers and timers in one `linli worker` beside the app processes (as in production)",
    )
    parser.add_argument("--quick", action="store_true", help="1,000 neighbours for 250 units (make bench)")
    args = parser.parse_args(argv)
    if args.quick:
        args.units, args.neighbours = min(args.units, 250), min(args.neighbours, 1_000)
        args.pgbench_seconds = min(args.pgbench_seconds, 3)
        args.settle_timeout = min(args.settle_timeout, 60.0)
    if args.units < 1 or args.neighbours < 1 or args.connections < 1:
        parser.error("--units, --neighbours and --connections must be positive")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
