"""Checkout under load: simulated neighbours order one unit each of a scarce live item and pay for it.

    .venv/bin/python -m bench.checkout                        # SQLite: 2,000 buyers for 1,000 units
    .venv/bin/python -m bench.checkout --database-url postgresql+asyncpg://postgres@127.0.0.1/test
    .venv/bin/python -m bench.checkout --quick                # 500 buyers for 250 units
    .venv/bin/python -m bench.checkout --concurrency 16 64 --via service http

Each run puts a fresh lineup item on sale and lets ``--concurrency`` buyers at a time work through the
queue: create the order (reserve stock and the per-user count, schedule the expiry, record the event),
then pay it with ``mark_paid`` (reserved → sold) in a second transaction. ``service`` calls the service
layer in-process, one session per step, as the request dependency would; ``http`` goes through the real
ASGI app (auth, validation, JSON) with httpx's ASGI transport, then pays through the service layer.

Prints successful checkouts per second, checkout latency (create + pay) p50/p99, create-attempt latency
p50/p99 (sold-out refusals included), the process's peak RSS, and the oversold count — units sold or held
beyond stock, or sold without a paid order — which must be 0: the run fails otherwise. On PostgreSQL a
scratch database is created beside the one named and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, insert, select

from bench.event_log import peak_rss_mib, scratch_database
from linli.catalog.models import Product
from linli.community.models import Community, Membership, PickupPoint
from linli.core.clock import utcnow
from linli.core.config import Settings
from linli.core.db import Database
from linli.core.hub import LocalHub
from linli.core.runtime import Runtime
from linli.identity.models import User, UserRole
from linli.identity.tokens import issue_session
from linli.live.models import LineupItem, LiveSession
from linli.orders import service
from linli.orders.errors import PurchaseLimitReached, SoldOut
from linli.orders.models import PAID_STATUSES, Order
from linli.orders.schemas import OrderCreate

console = Console() if sys.stdout.isatty() else Console(width=150)


Outcome = tuple[int, int] | str  # (order id, total) or the refusal's error name
Create = Callable[[Database, "Buyer", OrderCreate, str], Awaitable[Outcome]]


@dataclass
class Buyer:
    user: User
    token: str


@dataclass
class Run:
    database: str
    via: str
    concurrency: int
    attempts: int = 0
    checkouts: int = 0
    sold_out: int = 0
    errors: int = 0
    seconds: float = 0.0
    checkout_seconds: list[float] = field(default_factory=list)
    create_seconds: list[float] = field(default_factory=list)
    oversold: int = 0
    note: str = ""

    @property
    def per_second(self) -> float:
        return self.checkouts / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def make_buyers(db: Database, n: int) -> tuple[Community, list[Buyer]]:
    """``n`` neighbours of one community with a pickup point, each logged in (a bearer token)."""
    async with db.sessionmaker() as session:
        community = Community(name="梧桐苑", address="梧桐路 88 弄", pickup_points=[])
        session.add(community)
        await session.flush()
        session.add(PickupPoint(community_id=community.id, name="1 号门岗", address="梧桐路 88 弄 1 号"))
        users = [User(phone=str(15000000000 + i), nickname=f"邻居{i}", is_active=True) for i in range(n)]
        for user in users:
            user.roles = [UserRole(role="customer")]
        session.add_all(users)
        await session.flush()
        await session.execute(
            insert(Membership),
            [{"user_id": u.id, "community_id": community.id, "source": "chosen"} for u in users],
        )
        buyers = [Buyer(u, await issue_session(session, u)) for u in users]
        await session.commit()
    return community, buyers


async def put_on_sale(db: Database, stock: int) -> LineupItem:
    """A live session with one item of ``stock`` units at ¥25 (¥30 in stores), one per person."""
    async with db.sessionmaker() as session:
        now = utcnow()
        live_session = LiveSession(
            title="春日青团节",
            scheduled_start=now - timedelta(minutes=5),
            status="live",
            started_at=now - timedelta(minutes=1),
            lineup=[],
            communities=[],
        )
        product = Product(name="春季限定青团", store_price_fen=3000, images=[])
        session.add_all([live_session, product])
        await session.flush()
        item = LineupItem(
            session_id=live_session.id,
            product_id=product.id,
            live_price_fen=2500,
            stock=stock,
            reserved=0,
            sold=0,
            per_user_limit=1,
        )
        session.add(item)
        await session.commit()
    return item


async def audit(db: Database, item: LineupItem, run: Run) -> None:
    """Units beyond stock, or sold without a paid order behind them."""
    async with db.sessionmaker() as session:
        row = (
            await session.execute(
                select(LineupItem.stock, LineupItem.reserved, LineupItem.sold).where(LineupItem.id == item.id)
            )
        ).one()
        paid_units = await session.scalar(
            select(func.count())
            .select_from(Order)
            .where(Order.session_id == item.session_id, Order.status.in_([s.value for s in PAID_STATUSES]))
        )
    run.oversold = max(row.reserved + row.sold - row.stock, 0) + abs(row.sold - (paid_units or 0))
    if row.sold != run.checkouts:
        run.note = f"sold {row.sold} but {run.checkouts} checkouts completed"
        run.oversold = max(run.oversold, abs(row.sold - run.checkouts))


async def pay(db: Database, order_id: int, total_fen: int) -> None:
    async with db.sessionmaker() as session:
        await service.mark_paid(
            session, order_id, amount_fen=total_fen, provider="bench", provider_ref=f"bench-{order_id}"
        )
        await session.commit()


async def checkout_via_service(db: Database, buyer: Buyer, data: OrderCreate, key: str) -> Outcome:
    async with db.sessionmaker() as session:
        try:
            order = await service.create_order(session, buyer.user, data, idempotency_key=key)
            await session.commit()
        except (SoldOut, PurchaseLimitReached) as exc:
            await session.rollback()
            return exc.name
    return order.id, order.total_fen


def checkout_via_http(client: httpx.AsyncClient) -> Create:
    async def create(db: Database, buyer: Buyer, data: OrderCreate, key: str) -> Outcome:
        response = await client.post(
            "/api/v1/orders",
            content=data.model_dump_json(),
            headers={
                "Authorization": f"Bearer {buyer.token}",
                "Content-Type": "application/json",
                "Idempotency-Key": key,
            },
        )
        if response.status_code == 201:
            body = response.json()
            return body["id"], body["total_fen"]
        if response.status_code == 409:
            return str(response.json()["error"])
        raise RuntimeError(f"{response.status_code}: {response.text[:200]}")

    return create


async def run_once(
    db: Database, run: Run, buyers: list[Buyer], stock: int, create: Create, progress: Progress
) -> None:
    item = await put_on_sale(db, stock)
    data = OrderCreate(session_id=item.session_id, lineup_item_id=item.id, quantity=1)
    queue: asyncio.Queue[Buyer] = asyncio.Queue()
    for buyer in buyers:
        queue.put_nowait(buyer)
    task = progress.add_task(f"{run.via} ×{run.concurrency}", total=len(buyers))

    async def shopper() -> None:
        while not queue.empty():
            buyer = queue.get_nowait()
            began = time.perf_counter()
            try:
                outcome = await create(db, buyer, data, f"{item.id}-{buyer.user.id}")
                run.create_seconds.append(time.perf_counter() - began)
                if isinstance(outcome, str):
                    run.sold_out += 1
                else:
                    await pay(db, *outcome)
                    run.checkouts += 1
                    run.checkout_seconds.append(time.perf_counter() - began)
            except Exception as exc:  # a benchmark reports failures instead of stopping at the first
                run.errors += 1
                if run.errors <= 3:
                    console.print(f"[red]error[/red]: {type(exc).__name__}: {exc}")
            run.attempts += 1
            progress.advance(task)

    began = time.perf_counter()
    await asyncio.gather(*(shopper() for _ in range(run.concurrency)))
    run.seconds = time.perf_counter() - began
    await audit(db, item, run)


async def bench_database(args: argparse.Namespace, database_url: str | None) -> list[Run]:
    runs: list[Run] = []
    async with scratch_database(database_url) as url:
        with tempfile.TemporaryDirectory(prefix="linli-bench-var-") as var:
            settings = Settings(
                database_url=url,
                var_dir=Path(var),
                secret_key="bench",
                run_workers_in_app=False,
                seed_demo=False,
            )
            db = Database(url)
            kind = db.engine.dialect.name
            try:
                _, buyers = await make_buyers(db, args.orders)
                columns = (
                    TextColumn("{task.description:>14}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                )
                with Progress(*columns, console=console, transient=True) as progress:
                    for via in args.via:
                        for concurrency in args.concurrency:
                            run = Run(kind, via, concurrency)
                            if via == "service":
                                await run_once(db, run, buyers, args.stock, checkout_via_service, progress)
                            else:
                                # A runtime per app: each app's start registers the domains' job kinds.
                                runtime = Runtime(settings=settings, db=db, hub=LocalHub())
                                await run_over_http(settings, runtime, run, buyers, args.stock, progress)
                            runs.append(run)
            finally:
                await db.dispose()
    return runs


async def run_over_http(
    settings: Settings, runtime: Runtime, run: Run, buyers: list[Buyer], stock: int, progress: Progress
) -> None:
    from asgi_lifespan import LifespanManager

    from linli.web.app import create_app

    app = create_app(settings, runtime=runtime)
    # One access-log line per request would time the terminal, not the checkout.
    logging.getLogger().setLevel(logging.WARNING)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            await run_once(runtime.db, run, buyers, stock, checkout_via_http(client), progress)


def report(runs: list[Run], args: argparse.Namespace) -> int:
    table = Table(title=f"checkout: {args.orders:,} buyers for {args.stock:,} units, one each, then pay")
    for name, justify in (
        ("database", "left"),
        ("via", "left"),
        ("concurrency", "right"),
        ("checkouts", "right"),
        ("sold out", "right"),
        ("errors", "right"),
        ("seconds", "right"),
        ("checkouts/s", "right"),
        ("checkout p50 ms", "right"),
        ("checkout p99 ms", "right"),
        ("create p50 ms", "right"),
        ("create p99 ms", "right"),
        ("oversold", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for run in runs:
        table.add_row(
            run.database,
            run.via,
            str(run.concurrency),
            f"{run.checkouts:,}",
            f"{run.sold_out:,}",
            f"{run.errors:,}",
            f"{run.seconds:.2f}",
            f"{run.per_second:,.0f}",
            f"{percentile(run.checkout_seconds, 0.50) * 1000:.1f}",
            f"{percentile(run.checkout_seconds, 0.99) * 1000:.1f}",
            f"{percentile(run.create_seconds, 0.50) * 1000:.1f}",
            f"{percentile(run.create_seconds, 0.99) * 1000:.1f}",
            f"[green]{run.oversold}[/green]" if run.oversold == 0 else f"[red]{run.oversold}[/red]",
        )
    console.print(table)
    console.print(f"peak RSS: {peak_rss_mib():.0f} MiB")
    failed = False
    for run in runs:
        if run.oversold or run.errors or run.checkouts != min(args.stock, args.orders):
            failed = True
            console.print(
                f"[red]FAILED[/red] {run.database}/{run.via}×{run.concurrency}: {run.checkouts} checkouts, "
                f"{run.oversold} oversold, {run.errors} errors {run.note}"
            )
    if not failed:
        console.print("[green]every unit sold exactly once, none oversold[/green]")
    return 1 if failed else 0


async def run(args: argparse.Namespace) -> int:
    console.print(
        f"[bold]checkout[/bold]: {args.orders:,} buyers, {args.stock:,} units, "
        f"concurrency {', '.join(map(str, args.concurrency))}, via {', '.join(args.via)}"
    )
    runs = await bench_database(args, None)
    if args.database_url and not args.database_url.startswith("sqlite"):
        runs += await bench_database(args, args.database_url)
    return report(runs, args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.checkout", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=2_000, help="buyers, one order each (default 2,000)")
    parser.add_argument("--stock", type=int, default=1_000, help="units on sale (default 1,000)")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[16, 64], help="buyers at once (default 16 64)"
    )
    parser.add_argument(
        "--via", nargs="+", choices=("service", "http"), default=["service", "http"], help="the layer driven"
    )
    parser.add_argument(
        "--database-url", help="a PostgreSQL URL: also run there (a scratch database beside it)"
    )
    parser.add_argument("--quick", action="store_true", help="500 buyers for 250 units (for `make bench`)")
    args = parser.parse_args(argv)
    if args.quick:
        args.orders, args.stock = min(args.orders, 500), min(args.stock, 250)
    if args.orders < 1 or args.stock < 1 or min(args.concurrency) < 1:
        parser.error("--orders, --stock and --concurrency must be positive")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
