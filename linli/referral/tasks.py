"""The referral domain's background work: its consumer of orders' and identity's events, and the
month-end close timer (``leaderboard.close_month_job``)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from linli.catalog.models import Product
from linli.core import lowpriority
from linli.core.consumers import Consumer, batching
from linli.core.errors import LinliError
from linli.core.events import Event
from linli.core.runtime import Runtime
from linli.identity.models import User
from linli.orders.errors import OrderNotFound
from linli.orders.models import Order
from linli.referral import events, posters, service, shares

log = logging.getLogger(__name__)

CONSUMER = "referral.attribution"
PRERENDER = "referral.posters"
# Drawn the moment the payment is recorded, so the neighbour coming back from the cashier finds them
# (in a rush the drawing waits for a quiet moment, and a poster asked for meanwhile is drawn on demand).
PRERENDERED_FORMATS = ("moments", "chat")


async def _on_event(session: AsyncSession, event: Event) -> None:
    """Idempotent by construction: a paid order converts once (unique referee and order), a refund
    reverses once, a login attaches only bindings still anonymous."""
    if event.type == events.ORDER_PAID and event.order_id is not None:
        paid = (event.user_id, event.occurred_at) if event.user_id is not None else None
        try:
            await service.attribute_first_order(session, event.order_id, paid=paid)
        except OrderNotFound:
            log.warning("order.paid %s names a missing order %s", event.id, event.order_id)
    elif event.type == events.ORDER_REFUNDED and event.order_id is not None:
        await service.reverse_conversion(session, event.order_id, reason="refunded", now=event.occurred_at)
    elif event.type == events.LOGGED_IN and event.anonymous_id and event.user_id is not None:
        await service.attach_user(session, anonymous_id=event.anonymous_id, user_id=event.user_id)


async def _attribute_paid(session: AsyncSession, paid: list[Event]) -> None:
    """A run of ``order.paid``: the buyers who may hold a binding are found at once, and only their
    orders are looked at one by one (most buyers came without a share link)."""
    bound = await service.possibly_bound(session, {e.user_id for e in paid if e.user_id is not None})
    for event in paid:
        if event.user_id is None or event.user_id in bound:
            await _on_event(session, event)


def attribution_consumer() -> Consumer:
    return Consumer(
        name=CONSUMER,
        handler=_on_event,
        types=frozenset({events.ORDER_PAID, events.ORDER_REFUNDED, events.LOGGED_IN}),
        yields_to_requests=True,
        batch_handler=batching(events.ORDER_PAID, _attribute_paid, _on_event),
    )


class Prerenderer:
    """Draws posters ahead of time in one separate process at the lowest CPU priority.

    A drawing costs 30–100 ms of CPU; done in the app's own process (a thread holds the GIL while
    Pillow's Python code runs) during a flash sale, two per paid order took more CPU than the sale
    itself. Here it only gets what serving leaves over. Nothing waits for it: the share sheet draws a
    poster on demand when it is not there yet. When more than ``max_pending`` wait, new ones are
    skipped (drawn on demand instead) rather than queued for minutes."""

    def __init__(self, *, max_pending: int = 200) -> None:
        self.max_pending = max_pending
        self.pending: set[Future[Path]] = set()
        self.skipped = 0
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, path: Path, spec: posters.PosterSpec) -> bool:
        """Queue a drawing; False when the backlog is full (skipped)."""
        if len(self.pending) >= self.max_pending:
            self.skipped += 1
            return False
        future = self.executor().submit(posters.render_to, path, spec)
        self.pending.add(future)
        future.add_done_callback(self._done)
        return True

    def executor(self) -> ProcessPoolExecutor:
        """The drawing process, started on first use. It drops to the lowest priority before it imports
        the drawing code (``linli.core.lowpriority``)."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=lowpriority.become_lowest_priority,
            )
        return self._pool

    def _done(self, future: Future[Path]) -> None:
        self.pending.discard(future)
        if not future.cancelled() and (error := future.exception()) is not None:
            log.warning("drawing a poster ahead of time failed: %s", error)

    async def settle(self) -> None:
        """Until every queued drawing is done (tests, shutdown)."""
        while self.pending:
            await asyncio.wait([asyncio.wrap_future(f) for f in list(self.pending)])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def prerenderer_of(runtime: Runtime) -> Prerenderer:
    prerenderer = runtime.extras.get(PRERENDER)
    if prerenderer is None:
        prerenderer = runtime.extras[PRERENDER] = Prerenderer()
    assert isinstance(prerenderer, Prerenderer)
    return prerenderer


def poster_prerender_consumer(runtime: Runtime) -> Consumer:
    """On ``order.paid``, have the buyer's default posters drawn (``Prerenderer``) before they are asked
    for. The consumer only reads what to draw; the drawing happens outside its transaction (files,
    idempotent: a poster already cached is left alone). It starts at the end of the log, so a new
    install does not draw every past order's poster."""

    async def handler(session: AsyncSession, event: Event) -> None:
        if event.order_id is None or event.user_id is None:
            return
        user = await session.get(User, event.user_id)
        if user is None:
            return
        try:
            plans = await shares.poster_plans(
                session, runtime, event.order_id, user, formats=PRERENDERED_FORMATS
            )
        except LinliError as exc:
            # Refunded or gone meanwhile: nothing to draw.
            log.info("no poster for order %s: %s", event.order_id, exc.message)
            return
        for path, spec in plans:
            if spec is not None and not prerenderer_of(runtime).submit(path, spec):
                return

    async def handle_run(session: AsyncSession, paid: list[Event]) -> None:
        # What each plan reads, read for the whole run first: the plans then find it in the session
        # (which holds its objects weakly: ``read`` keeps them until the run is planned).
        read = await _read_ahead_for_posters(session, paid)
        for event in paid:
            await handler(session, event)
        read.clear()

    # In a rush it waits for a quiet moment: a poster asked for before it is drawn is drawn on demand.
    return Consumer(
        name=PRERENDER,
        handler=handler,
        types=frozenset({events.ORDER_PAID}),
        from_beginning=False,
        yields_to_requests=True,
        batch_handler=handle_run,
    )


async def _read_ahead_for_posters(session: AsyncSession, paid: list[Event]) -> list[object]:
    """Load the run's buyers, orders (with their lines), products (with their photos) and invite codes
    (made where missing) into the session in a few queries, so planning each poster reads nothing more.
    The objects are returned: the caller holds them while it plans."""
    user_ids = sorted({e.user_id for e in paid if e.user_id is not None})
    order_ids = sorted({e.order_id for e in paid if e.order_id is not None})
    if not user_ids or not order_ids:
        return []
    users = (await session.scalars(select(User).where(User.id.in_(user_ids)))).all()
    orders = (await session.scalars(select(Order).where(Order.id.in_(order_ids)))).all()
    product_ids = sorted({line.product_id for order in orders for line in order.lines})
    products = (await session.scalars(select(Product).where(Product.id.in_(product_ids)))).all()
    codes = await service.invite_codes_of(session, set(user_ids))
    return [*users, *orders, *products, *codes]
