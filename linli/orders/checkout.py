"""Checkout under a rush: the orders that arrive together are placed together, one transaction a batch.

When a hot item opens, every request to ``POST /api/v1/orders`` wants the same lineup row. Placed one
transaction each, they queue on that row's lock (PostgreSQL) or on the one writer (SQLite) and each pays
~10 round trips of its own. Here (group commit) a process's requests wait in one queue; a single task
takes everything waiting — up to ``max_batch``, one request per neighbour — and places it in one
transaction of a fixed number of statements, however many orders it holds:

1. orders whose idempotency key is already taken are left to ``service.create_order`` (a replay);
2. the items, with their session and product, in one query; each request checked as the single path
   checks it (in the lineup, on sale, within the per-user limit, not already sold out) — a failed check
   is that request's error, and nothing of it is written;
3. the neighbours' communities with their pickup points, and the named stores, in one query each;
4. the orders inserted (so a concurrent retry with the same key waits on its index entry, as it does on
   the single path), then the per-user counts held in one upsert per item, in user order (the same lock
   order as everywhere: count rows, then the item row);
5. the item's units reserved for all of them with one conditional update; should fewer be left, the row
   is locked, read, and units go to the requests in the order they arrived (the others are ``SoldOut``
   and their counts and order rows are given back);
6. lines, first status changes, expiry timers and ``order.created`` events inserted in one statement
   per table; one commit.

The invariants are the database's, as on the single path: ``reserved + sold <= stock`` and the per-user
count are conditional updates backed by CHECK constraints. Anything unexpected (a deadlock, a lost
connection, a key taken meanwhile) rolls the batch back and its requests are placed one by one through
``service.create_order`` instead. An order with a coupon always goes that way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community import service as community_service
from linli.community.models import Community
from linli.core.clock import utcnow
from linli.core.db import Database
from linli.core.errors import LinliError, NotAuthenticated
from linli.core.events import Subjects, append_events, event_row
from linli.core.jobs import PENDING, Job
from linli.core.lane import Lane
from linli.identity.models import User
from linli.live.models import LineupItem
from linli.orders import events, service
from linli.orders.errors import LineupItemNotFound
from linli.orders.models import Fulfilment, Order, OrderLine, OrderStatus, OrderStatusChange
from linli.orders.payments import service as payments
from linli.orders.payments.models import Payment
from linli.orders.payments.providers.base import PaymentOrder, PaymentProvider, Scene
from linli.orders.payments.schemas import PaymentRead
from linli.orders.schemas import OrderCreate, OrderLineRead, OrderRead
from linli.orders.stock import (
    hold_purchases,
    lock_stock_level,
    over_limit,
    release_purchases,
    sold_out,
    try_reserve_stock,
    units_held_by,
)

log = logging.getLogger(__name__)

MAX_BATCH = 100
EXTRAS_KEY = "orders.checkout"


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


@dataclass(frozen=True, slots=True)
class PayWith:
    """The payment to open with a new order, in the batch's transaction: a provider whose checkout needs
    nobody else (``local_checkout``), so a batch never waits on another party."""

    provider: PaymentProvider
    scene: Scene
    notify_url: str
    payer_ip: str | None = None


@dataclass(frozen=True, slots=True)
class Placed:
    """A placed order, and its payment when one was asked for and opened with it. A replay, or an order
    placed one by one, comes without: the caller opens (or resumes) the payment itself."""

    order: OrderRead
    payment: PaymentRead | None = None


@dataclass(eq=False)
class _Request:
    user_id: int
    phone: str
    data: OrderCreate
    key: str | None
    fingerprint: str
    # Thread-safe: the queue may run on a thread of its own (``CheckoutQueue``).
    future: Future[Placed]
    pay: PayWith | None = None


@dataclass(eq=False)
class _Placing:
    """A request that passed its checks, and what its order will be."""

    request: _Request
    item: LineupItem
    community_id: int | None
    pickup_point_id: int | None
    store_id: int | None
    order_id: int = 0
    refusal: LinliError | None = None


@dataclass
class _Outcome:
    placed: dict[_Request, Placed] = field(default_factory=dict)
    refused: dict[_Request, LinliError] = field(default_factory=dict)
    one_by_one: list[_Request] = field(default_factory=list)


class CheckoutQueue:
    """This process's checkout queue and the task that places its batches (``checkout_of``).

    On PostgreSQL the batches are placed on a thread of their own, with its own event loop and its own
    connections: under a rush the app's loop has hundreds of requests ready at every turn (payments,
    notifications, refusals), and each of a batch's dozen round trips waited for a whole turn of it —
    10 ms per step when quiet, 100–900 ms in a rush, so the batches, the one path every order takes,
    crawled. On its own loop a batch's steps wait only for the database and the GIL. SQLite keeps its
    one writer connection in the app's loop."""

    def __init__(
        self,
        db: Database,
        *,
        reservation_minutes: int,
        max_batch: int = MAX_BATCH,
        own_thread: bool | None = None,
    ) -> None:
        self.db = db
        self.reservation_minutes = reservation_minutes
        self.max_batch = max_batch
        # On PostgreSQL, a lane of its own: one connection for the batch, one to spare for a batch placed
        # one by one.
        self.lane = Lane(db, "orders-checkout", pool_size=2, own_thread=own_thread)
        self.own_thread = self.lane.own_thread
        self.waiting: deque[_Request] = deque()
        self.wake: asyncio.Event | None = None
        self.task: asyncio.Task[None] | None = None
        self.batches = 0
        self.largest_batch = 0
        # Batches that failed as a whole and were placed one by one instead (each is logged).
        self.failed_batches = 0

    async def place(
        self,
        user: User,
        data: OrderCreate,
        *,
        idempotency_key: str | None = None,
        pay: PayWith | None = None,
    ) -> Placed:
        """Place ``data`` for ``user`` with the others waiting now; what ``service.create_order`` would
        return (as ``OrderRead``) or raise — with ``pay``, its payment opened in the same transaction."""
        key = service.check_idempotency_key(idempotency_key)
        request = _Request(
            user_id=user.id,
            phone=user.phone,
            data=data,
            key=key,
            fingerprint=service.request_fingerprint(data),
            future=Future(),
            pay=pay,
        )
        if data.coupon_id is not None:
            return await self._create_alone(request, self.db)
        if self.own_thread:
            self.lane.call_soon(self._enqueue, request)
        else:
            self._enqueue(request)
        return await asyncio.wrap_future(request.future)

    def _enqueue(self, request: _Request) -> None:
        """On the queue's loop: add the request and make sure the batcher runs."""
        self.waiting.append(request)
        if self.wake is None:
            self.wake = asyncio.Event()
        self.wake.set()
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run(), name="orders-checkout")

    @property
    def batch_db(self) -> Database:
        """Where batches are placed: the lane's own database, or the app's."""
        return self.lane.lane_db

    async def close(self) -> None:
        """Place what is waiting, then stop."""
        await self.lane.close(before=self._stop)

    async def _stop(self) -> None:
        if self.task is not None:
            while self.waiting:
                await asyncio.sleep(0.01)
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None

    # --- the loop ---------------------------------------------------------------------------------------

    def _take_batch(self) -> list[_Request]:
        """Everything waiting, in arrival order, one request per neighbour (a neighbour's second one
        waits for the next batch: the per-user count is one row a statement can move once)."""
        batch: list[_Request] = []
        later: list[_Request] = []
        users: set[int] = set()
        while self.waiting and len(batch) < self.max_batch:
            request = self.waiting.popleft()
            if request.user_id in users:
                later.append(request)
            else:
                users.add(request.user_id)
                batch.append(request)
        self.waiting.extendleft(reversed(later))
        return batch

    async def _run(self) -> None:
        assert self.wake is not None
        while True:
            if not self.waiting:
                self.wake.clear()
                await self.wake.wait()
            batch = self._take_batch()
            if not batch:
                continue
            self.batches += 1
            self.largest_batch = max(self.largest_batch, len(batch))
            try:
                outcome = await self._place_batch(batch)
            except Exception:
                self.failed_batches += 1
                log.warning(
                    "a checkout batch of %s failed; placing them one by one", len(batch), exc_info=True
                )
                outcome = _Outcome(one_by_one=batch)
            for request, order in outcome.placed.items():
                if not request.future.done():
                    request.future.set_result(order)
            for request, error in outcome.refused.items():
                if not request.future.done():
                    request.future.set_exception(error)
            for request in outcome.one_by_one:
                try:
                    result = await self._create_alone(request, self.batch_db)
                except Exception as exc:
                    if not request.future.done():
                        request.future.set_exception(exc)
                else:
                    if not request.future.done():
                        request.future.set_result(result)

    async def _create_alone(self, request: _Request, db: Database) -> Placed:
        """``service.create_order`` in a transaction of its own (replays, coupons, a failed batch)."""
        async with db.sessionmaker() as session:
            try:
                user = await session.get(User, request.user_id)
                if user is None:  # gone since the request authenticated
                    raise NotAuthenticated("please log in first")
                order = await service.create_order(
                    session,
                    user,
                    request.data,
                    idempotency_key=request.key,
                    reservation_minutes=self.reservation_minutes,
                )
                result = Placed(OrderRead.of(order))
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
        return result

    # --- one batch ---------------------------------------------------------------------------------------

    async def _place_batch(self, batch: list[_Request]) -> _Outcome:
        outcome = _Outcome()
        async with self.batch_db.sessionmaker() as session:
            try:
                await self._place_in(session, batch, outcome, utcnow())
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
        return outcome

    async def _place_in(
        self, session: AsyncSession, batch: list[_Request], outcome: _Outcome, now: datetime
    ) -> None:
        fresh = await _without_replays(session, batch, outcome)
        placing = await _checked(session, fresh, outcome, now)
        if not placing:
            return
        reserved_until = now + timedelta(minutes=self.reservation_minutes)
        await _insert_orders(session, placing, reserved_until, now)
        for item_id in sorted({p.item.id for p in placing}):
            await _take_units(session, [p for p in placing if p.item.id == item_id])
        refused = [p for p in placing if p.refusal is not None]
        if refused:
            await session.execute(delete(Order).where(Order.id.in_([p.order_id for p in refused])))
            for p in refused:
                assert p.refusal is not None
                outcome.refused[p.request] = p.refusal
        placed = [p for p in placing if p.refusal is None]
        paid_with, payment_events = await _open_payments(session, placed, reserved_until, now)
        await _insert_order_rows(session, placed, reserved_until, now, then=payment_events)
        for p in placed:
            payment = paid_with.get(p.request)
            outcome.placed[p.request] = Placed(
                _read(p, reserved_until, now), PaymentRead.of(payment) if payment is not None else None
            )


async def _without_replays(session: AsyncSession, batch: list[_Request], outcome: _Outcome) -> list[_Request]:
    """The requests whose idempotency key names no order yet; the others go one by one (a replay)."""
    keyed = [r for r in batch if r.key is not None]
    if not keyed:
        return batch
    taken = set(
        (
            await session.execute(
                select(Order.user_id, Order.idempotency_key).where(
                    Order.user_id.in_(sorted({r.user_id for r in keyed})),
                    Order.idempotency_key.in_(sorted({r.key for r in keyed if r.key is not None})),
                )
            )
        ).all()
    )
    fresh = []
    for request in batch:
        if request.key is not None and (request.user_id, request.key) in taken:
            outcome.one_by_one.append(request)
        else:
            fresh.append(request)
    return fresh


async def _checked(
    session: AsyncSession, batch: list[_Request], outcome: _Outcome, now: datetime
) -> list[_Placing]:
    """Each request checked as ``service.create_order`` checks it, before anything is written."""
    if not batch:
        return []
    rows = await session.execute(
        service.items_with_sessions().where(LineupItem.id.in_(sorted({r.data.lineup_item_id for r in batch})))
    )
    items = {item.id: (item, live_session) for item, live_session in rows.all()}
    checked: list[tuple[_Request, LineupItem]] = []
    for request in batch:
        data = request.data
        try:
            found = items.get(data.lineup_item_id)
            if found is None or found[0].session_id != data.session_id:
                raise LineupItemNotFound(
                    f"no lineup item {data.lineup_item_id} in live session {data.session_id}",
                    session_id=data.session_id,
                    item_id=data.lineup_item_id,
                )
            service.check_terms(found[1], found[0], data, now)
            checked.append((request, found[0]))
        except LinliError as exc:
            outcome.refused[request] = exc
    if not checked:
        return []  # a sold-out rush's usual batch: refused on the one read
    communities = await community_service.communities_of(session, [r.user_id for r, _ in checked])
    stores = await community_service.stores_by_id(
        session, [r.data.store_id for r, _ in checked if r.data.store_id is not None]
    )
    placing = []
    for request, item in checked:
        data = request.data
        community = communities.get(request.user_id)
        try:
            if data.fulfilment is Fulfilment.pickup:
                point = service.choose_pickup_point(community, data)
                placing.append(_Placing(request, item, _id(community), point.id, None))
            else:
                store_id = data.store_id or 0
                store = service.check_store(stores.get(store_id), store_id)
                placing.append(_Placing(request, item, _id(community), None, store.id))
        except LinliError as exc:
            outcome.refused[request] = exc
    return placing


def _id(community: Community | None) -> int | None:
    return community.id if community is not None else None


async def _insert_orders(
    session: AsyncSession, placing: list[_Placing], reserved_until: datetime, now: datetime
) -> None:
    """The order rows, first: a concurrent request with the same key then waits on the key's index entry
    before anyone's count or item row is locked (the single path's order too)."""
    rows = []
    for p in placing:
        data, item = p.request.data, p.item
        subtotal, _, total = service.price(item, data.quantity)
        rows.append(
            {
                "user_id": p.request.user_id,
                "session_id": item.session_id,
                "community_id": p.community_id,
                "fulfilment": data.fulfilment.value,
                "pickup_point_id": p.pickup_point_id,
                "store_id": p.store_id,
                "contact_phone": data.contact_phone or p.request.phone,
                "status": OrderStatus.pending_payment.value,
                "subtotal_fen": subtotal,
                "discount_fen": 0,
                "total_fen": total,
                "coupon_id": None,
                "idempotency_key": p.request.key,
                "request_hash": p.request.fingerprint,
                "reserved_until": reserved_until,
                "created_at": now,
                "updated_at": now,
            }
        )
    # One neighbour per batch, so the user id tells the returned rows apart.
    orders = _table(Order)
    returned = await session.execute(insert(orders).returning(orders.c.id, orders.c.user_id), rows)
    ids = {int(user_id): int(order_id) for order_id, user_id in returned.all()}
    for p in placing:
        p.order_id = ids[p.request.user_id]


async def _take_units(session: AsyncSession, placing: list[_Placing]) -> None:
    """Per-user counts, then the item's units, for the requests of one item; refusals noted on them."""
    item = placing[0].item
    wanted = {p.request.user_id: p.request.data.quantity for p in placing}
    held = await hold_purchases(session, item.id, wanted, limit=item.per_user_limit)
    too_many = [p for p in placing if p.request.user_id not in held]
    if too_many:
        before = await units_held_by(session, item.id, [p.request.user_id for p in too_many])
        for p in too_many:
            p.refusal = over_limit(
                item.per_user_limit, before.get(p.request.user_id, 0), wanted[p.request.user_id]
            )
    counted = [p for p in placing if p.refusal is None]
    total = sum(p.request.data.quantity for p in counted)
    if not counted or await try_reserve_stock(session, item.id, total) is not None:
        return
    # Fewer left than the batch wants: first come, first served, with the row locked meanwhile.
    left = (await lock_stock_level(session, item.id)).left
    granted = 0
    given_back = {}
    for p in counted:
        qty = p.request.data.quantity
        if qty <= left - granted:
            granted += qty
        else:
            p.refusal = sold_out(item.id, left - granted, qty)
            given_back[p.request.user_id] = qty
    await release_purchases(session, item.id, given_back)
    if granted and await try_reserve_stock(session, item.id, granted) is None:
        raise RuntimeError(f"item {item.id}: {granted} units were left under the lock but not reservable")


async def _open_payments(
    session: AsyncSession, placed: list[_Placing], reserved_until: datetime, now: datetime
) -> tuple[dict[_Request, Payment], list[dict[str, Any]]]:
    """The payments asked for with the orders (``PayWith``), in one statement; their events, to append
    after the orders' own."""
    wanted = [p for p in placed if p.request.pay is not None]
    new = []
    for p in wanted:
        pay, item = p.request.pay, p.item
        assert pay is not None
        _, _, total = service.price(item, p.request.data.quantity)
        out_trade_no = payments.new_out_trade_no()
        checkout = await pay.provider.create_payment(
            PaymentOrder(
                out_trade_no=out_trade_no,
                amount_fen=total,
                description=payments.order_description([item.product.name], p.order_id),
                scene=pay.scene,
                notify_url=pay.notify_url,
                expires_at=reserved_until,
                payer_ip=pay.payer_ip,
            )
        )
        new.append(
            payments.NewPayment(
                order_id=p.order_id,
                user_id=p.request.user_id,
                session_id=item.session_id,
                amount_fen=total,
                provider=pay.provider.name,
                scene=pay.scene,
                out_trade_no=out_trade_no,
                checkout=checkout,
            )
        )
    opened, created = await payments.insert_new_payments(session, new, now=now)
    return {p.request: payment for p, payment in zip(wanted, opened, strict=True)}, created


async def _insert_order_rows(
    session: AsyncSession,
    placed: list[_Placing],
    reserved_until: datetime,
    now: datetime,
    *,
    then: list[dict[str, Any]],
) -> None:
    """Each placed order's line, first status change, expiry timer and ``order.created`` event: one
    statement per table; ``then``, more events to append after those (the payments opened with them)."""
    if not placed:
        return
    lines, changes, jobs, created = [], [], [], []
    for p in placed:
        data, item = p.request.data, p.item
        _, _, total = service.price(item, data.quantity)
        lines.append(
            {
                "order_id": p.order_id,
                "lineup_item_id": item.id,
                "product_id": item.product_id,
                "product_name": item.product.name,
                "unit_price_fen": item.live_price_fen,
                "store_price_fen": item.product.store_price_fen,
                "quantity": data.quantity,
            }
        )
        changes.append(
            {
                "order_id": p.order_id,
                "from_status": None,
                "to_status": OrderStatus.pending_payment.value,
                "at": now,
                "actor_id": None,
                "reason": "",
            }
        )
        jobs.append(
            {
                "kind": service.EXPIRE_RESERVATION,
                "key": service.expiry_job_key(p.order_id),
                "run_at": reserved_until,
                "payload": {"order_id": p.order_id},
                "status": PENDING,
                "attempts": 0,
                "max_attempts": 8,
                "created_at": now,
            }
        )
        created.append(
            event_row(
                events.ORDER_CREATED,
                actor_id=p.request.user_id,
                subjects=Subjects(
                    user_id=p.request.user_id,
                    session_id=item.session_id,
                    community_id=p.community_id,
                    order_id=p.order_id,
                    product_id=item.product_id,
                ),
                payload={
                    "item_id": item.id,
                    "quantity": data.quantity,
                    "total_fen": total,
                    "coupon_id": None,
                    "discount_fen": 0,
                    "fulfilment": data.fulfilment.value,
                    "pickup_point_id": p.pickup_point_id,
                    "store_id": p.store_id,
                    "reserved_until": reserved_until.isoformat(),
                },
                occurred_at=now,
            )
        )
    await session.execute(insert(_table(OrderLine)), lines)
    await session.execute(insert(_table(OrderStatusChange)), changes)
    await session.execute(insert(_table(Job)), jobs)
    await append_events(session, [*created, *then])


def _read(p: _Placing, reserved_until: datetime, now: datetime) -> OrderRead:
    data, item = p.request.data, p.item
    subtotal, discount, total = service.price(item, data.quantity)
    return OrderRead(
        id=p.order_id,
        status=OrderStatus.pending_payment,
        session_id=item.session_id,
        community_id=p.community_id,
        fulfilment=data.fulfilment,
        pickup_point_id=p.pickup_point_id,
        store_id=p.store_id,
        contact_phone=data.contact_phone or p.request.phone,
        lines=[
            OrderLineRead(
                lineup_item_id=item.id,
                product_id=item.product_id,
                product_name=item.product.name,
                unit_price_fen=item.live_price_fen,
                store_price_fen=item.product.store_price_fen,
                quantity=data.quantity,
                amount_fen=item.live_price_fen * data.quantity,
            )
        ],
        subtotal_fen=subtotal,
        discount_fen=discount,
        total_fen=total,
        store_total_fen=item.product.store_price_fen * data.quantity,
        reserved_until=reserved_until,
        created_at=now,
        paid_at=None,
        cancelled_at=None,
        expired_at=None,
        refunded_at=None,
    )


def checkout_of(db: Database, extras: dict[str, Any], *, reservation_minutes: int) -> CheckoutQueue:
    """This process's checkout queue for ``db`` (kept in the runtime's ``extras``)."""
    queue = extras.get(EXTRAS_KEY)
    if not isinstance(queue, CheckoutQueue) or queue.db is not db:
        queue = extras[EXTRAS_KEY] = CheckoutQueue(db, reservation_minutes=reservation_minutes)
    queue.reservation_minutes = reservation_minutes
    return queue
