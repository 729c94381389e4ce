"""The orders domain's verbs: checkout (pricing, reservation, idempotent creation) and the order state
machine, one function per transition.

Every verb validates first, then changes rows, then records its history row and its event in the same
transaction; it flushes and never commits, and when it raises, the caller rolls the transaction back (the
request dependency and the job runner do). A transition first locks the order row (``SELECT … FOR UPDATE``
on PostgreSQL; SQLite transactions are serialised from ``BEGIN IMMEDIATE``), so two transitions of one
order never both pass their status check. Stock and per-user counts move only through ``linli.orders.stock``.

Statuses::

    pending_payment ─pay─▶ paid ─complete─▶ completed
        │  │                 │ └─request_refund─▶ refund_requested ─refunded─▶ refunded
        │  └─expire─▶ expired (a late payment revives it if stock allows)      ▲
        └─cancel─▶ cancelled                 └──────────────refunded───────────┘
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from linli.catalog.models import Product
from linli.community import service as community_service
from linli.community.models import Community, Membership, PickupPoint, Store
from linli.core.clock import to_local, utcnow
from linli.core.db import dialect_insert
from linli.core.errors import LinliError
from linli.core.events import Subjects, record_event
from linli.core.jobs import PENDING, Job, cancel_job
from linli.core.money import format_fen
from linli.identity.models import User
from linli.live import service as live_service
from linli.live.models import LineupItem, LiveSession, SessionStatus
from linli.orders import coupons, events, refunds
from linli.orders.errors import (
    AlreadyPaid,
    AmountMismatch,
    CouponUnavailable,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    InvalidOrderTransition,
    LineupItemNotFound,
    NoPickupPoint,
    NotForSale,
    OrderNotFound,
    PaidAfterCancel,
    PaidAfterExpiry,
    PurchaseLimitReached,
    ReservationExpired,
    SoldOut,
    StoreUnavailable,
)
from linli.orders.models import (
    Fulfilment,
    Order,
    OrderLine,
    OrderStatus,
    OrderStatusChange,
)
from linli.orders.schemas import OrderCreate
from linli.orders.stock import (
    commit_stock,
    hold_purchase,
    per_user_limit,
    release_purchase,
    release_stock,
    reserve_stock,
    sold_out,
    stock_level,
    units_held,
)

# How long an unpaid order holds its units (Settings.order_reservation_minutes overrides it).
RESERVATION_MINUTES = 10
EXPIRE_RESERVATION = "orders.expire_reservation"
# The "provider" of an order whose coupon covered its whole total (nothing to pay at a provider).
COUPON_PROVIDER = "coupon"
MAX_KEY_LENGTH = 64

S = OrderStatus


def expiry_job_key(order_id: int) -> str:
    return f"orders.expire:{order_id}"


def _subjects(order: Order) -> Subjects:
    product_id = order.lines[0].product_id if len(order.lines) == 1 else None
    return Subjects(
        user_id=order.user_id,
        session_id=order.session_id,
        community_id=order.community_id,
        order_id=order.id,
        product_id=product_id,
    )


def _lines(order: Order) -> list[OrderLine]:
    """The order's lines in lineup item order: every verb moves stock rows in the same order."""
    return sorted(order.lines, key=lambda line: line.lineup_item_id)


# --- pricing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """What the checkout sheet shows, computed by the server: the live price against the store price,
    and how many the neighbour may still take."""

    session_id: int
    lineup_item_id: int
    product_id: int
    product_name: str
    unit_price_fen: int
    store_price_fen: int
    quantity: int
    subtotal_fen: int
    discount_fen: int
    total_fen: int
    store_total_fen: int
    stock_left: int
    per_user_limit: int
    held: int
    # The coupon applied (when one was asked for), and the neighbour's coupons that fit, best first.
    coupon_id: int | None = None
    coupon_name: str | None = None
    offers: tuple[coupons.Offer, ...] = ()

    @property
    def saving_fen(self) -> int:
        return self.store_total_fen - self.total_fen

    @property
    def max_quantity(self) -> int:
        return max(min(self.stock_left, self.per_user_limit - self.held), 0)


def _check_on_sale(live_session: LiveSession, item: LineupItem, now: datetime) -> None:
    """The live price applies only while the session is live and the item inside its sale window;
    otherwise say why. The same units cost the store price in the brand's stores."""
    product = item.product
    in_store = f"{product.name} is {format_fen(product.store_price_fen)} in our stores"
    context = {"session_id": live_session.id, "item_id": item.id, "store_price_fen": product.store_price_fen}
    if item.archived_at is not None:
        raise NotForSale(
            f"{product.name} was taken off this session's lineup; {in_store}", reason="archived", **context
        )
    if live_session.archived_at is not None or live_session.status == SessionStatus.draft:
        raise NotForSale("this session is not open", reason="not_open", **context)
    if live_session.status == SessionStatus.scheduled:
        start = to_local(live_session.scheduled_start).strftime("%m-%d %H:%M")
        raise NotForSale(
            f"the session has not gone live yet (it starts {start}); the live price applies once it does",
            reason="not_live_yet",
            **context,
        )
    if live_session.status == SessionStatus.ended:
        raise NotForSale(f"the live sale has ended; {in_store}", reason="ended", **context)
    if not live_service.is_on_sale(live_session, item, now):
        starts, ends = live_service.sale_window(live_session, item)
        if ends is not None and now >= ends:
            raise NotForSale(f"the live sale of this item has ended; {in_store}", reason="ended", **context)
        opens = f" (it opens {to_local(starts).strftime('%H:%M')})" if starts is not None else ""
        raise NotForSale(
            f"the live sale of this item has not started yet{opens}", reason="not_started", **context
        )


def items_with_sessions() -> Select[LineupItem, LiveSession]:
    """Lineup items with their session and product: what checkout's rule reads, and nothing more (not
    the whole lineup, the host or the target communities ``live.service.get_session`` would load)."""
    return (
        select(LineupItem, LiveSession)
        .join(LiveSession, LiveSession.id == LineupItem.session_id)
        .options(
            joinedload(LineupItem.product).lazyload(Product.images),
            lazyload(LineupItem.session),
            lazyload(LiveSession.lineup),
            lazyload(LiveSession.communities),
            lazyload(LiveSession.host),
        )
        .execution_options(populate_existing=True)
    )


async def _on_sale_item(
    session: AsyncSession, session_id: int, item_id: int, now: datetime
) -> tuple[LiveSession, LineupItem]:
    """The lineup item of ``session_id`` with its session and product, if it is on sale at ``now``.

    One query (``items_with_sessions``); the rule itself is live's (``is_on_sale``, ``sale_window``)."""
    row = (
        await session.execute(
            items_with_sessions().where(LineupItem.id == item_id, LineupItem.session_id == session_id)
        )
    ).one_or_none()
    if row is None:
        raise LineupItemNotFound(
            f"no lineup item {item_id} in live session {session_id}", session_id=session_id, item_id=item_id
        )
    item, live_session = row
    _check_on_sale(live_session, item, now)
    return live_session, item


def price(item: LineupItem, quantity: int, discount: int = 0) -> tuple[int, int, int]:
    """(subtotal, discount, total) in fen for ``quantity`` units at the live price, less a coupon's
    ``discount`` (``coupons.discount_for`` keeps it within the subtotal)."""
    subtotal = item.live_price_fen * quantity
    return subtotal, discount, subtotal - discount


async def quote(
    session: AsyncSession,
    user: User,
    session_id: int,
    item_id: int,
    quantity: int = 1,
    *,
    coupon_id: int | None = None,
    now: datetime | None = None,
) -> Quote:
    """Price ``quantity`` units of an item on sale now, with what is left and what the neighbour may still
    take (``NotForSale`` when the live price does not apply), less ``coupon_id``'s discount when given
    (``CouponNotFound`` / ``CouponUnavailable`` / ``CouponNotApplicable``), and the neighbour's coupons that
    fit, best first. Reads only; nothing is held."""
    now = now or utcnow()
    _, item = await _on_sale_item(session, session_id, item_id, now)
    terms = coupons.OrderTerms(item.live_price_fen * quantity, item.product_id, item.live_price_fen, now)
    coupon = None
    discount = 0
    if coupon_id is not None:
        coupon, discount = await coupons.check_coupon(session, user.id, coupon_id, terms)
    subtotal, discount, total = price(item, quantity, discount)
    level = await stock_level(session, item.id)
    return Quote(
        session_id=session_id,
        lineup_item_id=item.id,
        product_id=item.product_id,
        product_name=item.product.name,
        unit_price_fen=item.live_price_fen,
        store_price_fen=item.product.store_price_fen,
        quantity=quantity,
        subtotal_fen=subtotal,
        discount_fen=discount,
        total_fen=total,
        store_total_fen=item.product.store_price_fen * quantity,
        stock_left=max(level.left, 0),
        per_user_limit=item.per_user_limit,
        held=await units_held(session, user.id, item.id),
        coupon_id=coupon.id if coupon is not None else None,
        coupon_name=coupon.name if coupon is not None else None,
        offers=tuple(await coupons.offers(session, user.id, terms)),
    )


# --- checkout ---------------------------------------------------------------------------------------


def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key:
        return None
    if len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable() or " " in key:
        raise InvalidIdempotencyKey(
            f"an Idempotency-Key is 1 to {MAX_KEY_LENGTH} printable ASCII characters without spaces"
        )
    return key


def request_fingerprint(data: OrderCreate) -> str:
    # Without a coupon the body hashes as it did before coupons existed (keys from then still replay).
    # How to pay is not the order: a retry that asks to pay (or not) is the same order.
    left_out = {"pay"} if data.coupon_id is not None else {"pay", "coupon_id"}
    fields = data.model_dump(mode="json", exclude=left_out)
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


async def _by_key(session: AsyncSession, user_id: int, key: str) -> Order | None:
    return await session.scalar(select(Order).where(Order.user_id == user_id, Order.idempotency_key == key))


def _replay(existing: Order, fingerprint: str) -> Order:
    if existing.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used for a different order; use a new key for a new order",
            order_id=existing.id,
        )
    return existing


async def _community_with_points(session: AsyncSession, user_id: int) -> Community | None:
    """The neighbour's community with its pickup points: what ``community.service.community_of`` and the
    points' lazy load read, in one query (checkout's hot path: three round trips become one)."""
    found = await session.scalars(
        select(Community)
        .join(Membership, Membership.community_id == Community.id)
        .where(Membership.user_id == user_id)
        .options(joinedload(Community.pickup_points).lazyload(PickupPoint.leader))
    )
    return found.unique().one_or_none()


def choose_pickup_point(community: Community | None, data: OrderCreate) -> PickupPoint:
    """Where a pickup order goes: the point asked for, else the community's first open one
    (``NoPickupPoint`` when the neighbour has no community, or it has no such open point)."""
    if community is None or community.archived_at is not None:
        raise NoPickupPoint(
            "join your community first to pick up at its pickup point, or choose store pickup",
            field="pickup_point_id",
        )
    points = community.open_pickup_points
    if data.pickup_point_id is None:
        if not points:
            raise NoPickupPoint(
                f"{community.name} has no open pickup point yet; choose store pickup instead",
                field="pickup_point_id",
            )
        return points[0]
    for point in points:
        if point.id == data.pickup_point_id:
            return point
    raise NoPickupPoint(
        f"pickup point {data.pickup_point_id} is not an open pickup point of {community.name}",
        field="pickup_point_id",
    )


def check_store(store: Store | None, store_id: int) -> Store:
    """The store a store-pickup order names, if it exists and is open (``StoreUnavailable`` otherwise)."""
    if store is None:
        raise StoreUnavailable(f"store {store_id} does not exist", field="store_id")
    if store.archived_at is not None:
        raise StoreUnavailable(f"{store.name} is closed; choose another store", field="store_id")
    return store


async def _pickup_point(
    session: AsyncSession, user: User, data: OrderCreate
) -> tuple[Community, PickupPoint]:
    community = await _community_with_points(session, user.id)
    point = choose_pickup_point(community, data)
    assert community is not None
    return community, point


async def _store(session: AsyncSession, store_id: int) -> Store:
    try:
        store: Store | None = await community_service.get_store(session, store_id)
    except community_service.StoreNotFound:
        store = None
    return check_store(store, store_id)


async def _insert_order(session: AsyncSession, **columns: Any) -> Order | None:
    """Insert the order row; None when the neighbour's ``idempotency_key`` is already taken. The unique
    ``(user_id, idempotency_key)`` decides a race between retries: on PostgreSQL the loser's insert waits
    for the winner's commit, then does nothing (no savepoint needed); a NULL key never conflicts."""
    insert = dialect_insert(session)
    statement = (
        insert(Order)
        .values(**columns)
        .on_conflict_do_nothing(index_elements=[Order.user_id, Order.idempotency_key])
        .returning(Order)
        .options(lazyload(Order.lines))  # a new order has none yet
    )
    return (await session.scalars(statement)).one_or_none()


def _expiry_job(order: Order) -> Job:
    """The order's durable expiry timer (``core.jobs``), inserted with the order's own rows: the order is
    new, so no job can hold its key yet and ``schedule_job``'s lookup and savepoint would only cost time."""
    return Job(
        kind=EXPIRE_RESERVATION,
        key=expiry_job_key(order.id),
        run_at=order.reserved_until,
        payload={"order_id": order.id},
        status=PENDING,
        attempts=0,
        max_attempts=8,
    )


def check_terms(live_session: LiveSession, item: LineupItem, data: OrderCreate, now: datetime) -> None:
    """What checkout refuses before writing anything: the item not on sale (``NotForSale``), more units
    than one neighbour may take (``PurchaseLimitReached``), or fewer left than asked (``SoldOut``)."""
    _check_on_sale(live_session, item, now)
    if data.quantity > item.per_user_limit:
        raise PurchaseLimitReached(
            f"the limit is {item.per_user_limit} per person",
            limit=item.per_user_limit,
            requested=data.quantity,
        )
    if item.stock_left < data.quantity:
        # Already gone when we looked: refuse before writing anything (the flash sale's common case).
        # Only a fast path — units released after this read are fair game for the next tap, and the
        # conditional update in ``reserve_stock`` stays the one that decides.
        raise sold_out(item.id, item.stock_left, data.quantity)


async def _checkout_terms(
    session: AsyncSession, user: User, data: OrderCreate, now: datetime
) -> tuple[LineupItem, Community | None, PickupPoint | None, Store | None]:
    """Everything checkout checks before writing: the item on sale in that session, the quantity within the
    per-user limit, and where the order is picked up (the neighbour's community's point, or an open store)."""
    live_session, item = await _on_sale_item(session, data.session_id, data.lineup_item_id, now)
    check_terms(live_session, item, data, now)
    if data.fulfilment is Fulfilment.pickup:
        community, point = await _pickup_point(session, user, data)
        return item, community, point, None
    store = await _store(session, data.store_id or 0)
    return item, await community_service.community_of(session, user.id), None, store


async def create_order(
    session: AsyncSession,
    user: User,
    data: OrderCreate,
    *,
    idempotency_key: str | None = None,
    reservation_minutes: int = RESERVATION_MINUTES,
    now: datetime | None = None,
) -> Order:
    """Place an order at the live price and hold its units until ``reserved_until``.

    Checks first (the item is in the session's lineup and on sale, the quantity within the per-user limit,
    the pickup point or store open), then inserts the order, schedules its durable expiry, and last takes
    the per-user count and the stock with conditional updates (``PurchaseLimitReached`` / ``SoldOut``), so
    the hot item row stays locked only from that update to the commit. The same ``idempotency_key`` from
    the same neighbour returns the first order — also under concurrent retries (the unique
    ``(user_id, idempotency_key)`` decides the race, the loser reads the winner's order) and after the sale
    has ended; the same key with another body is ``IdempotencyKeyReused``. On any error the caller rolls
    back: the order row may already be written when ``SoldOut`` or ``PurchaseLimitReached`` is raised.
    ``data.coupon_id`` is locked to the order (``coupons.lock_coupon``) and its discount taken off; an order
    the coupon pays in full is marked paid at once (provider ``"coupon"``)."""
    now = now or utcnow()
    key = check_idempotency_key(idempotency_key)
    fingerprint = request_fingerprint(data)
    discount = 0
    try:
        item, community, point, store = await _checkout_terms(session, user, data, now)
        if data.coupon_id is not None:
            # One conditional update (the only extra query, and only with a coupon).
            terms = coupons.OrderTerms(
                item.live_price_fen * data.quantity, item.product_id, item.live_price_fen, now
            )
            discount = await coupons.lock_coupon(session, user.id, data.coupon_id, terms)
    except LinliError:
        # A retry of an order placed before the sale ended (or the pickup point closed, or its coupon was
        # locked by the first try) is still that order.
        if key is not None and (existing := await _by_key(session, user.id, key)) is not None:
            return _replay(existing, fingerprint)
        raise

    subtotal, discount, total = price(item, data.quantity, discount)
    inserted = await _insert_order(
        session,
        user_id=user.id,
        session_id=item.session_id,
        community_id=community.id if community is not None else None,
        fulfilment=data.fulfilment.value,
        pickup_point_id=point.id if point is not None else None,
        store_id=store.id if store is not None else None,
        contact_phone=data.contact_phone or user.phone,
        status=S.pending_payment.value,
        subtotal_fen=subtotal,
        discount_fen=discount,
        total_fen=total,
        coupon_id=data.coupon_id,
        idempotency_key=key,
        request_hash=fingerprint,
        reserved_until=now + timedelta(minutes=reservation_minutes),
        created_at=now,
        updated_at=now,
    )
    if inserted is None:
        # A concurrent retry with the same key committed first (the insert waited on its index entry).
        existing = await _by_key(session, user.id, key or "")
        if existing is None:
            raise RuntimeError(f"order key {key!r} conflicted but no order holds it")
        return _replay(existing, fingerprint)
    order = inserted
    line = OrderLine(
        order_id=order.id,
        lineup_item_id=item.id,
        product_id=item.product_id,
        product_name=item.product.name,
        unit_price_fen=item.live_price_fen,
        store_price_fen=item.product.store_price_fen,
        quantity=data.quantity,
    )
    set_committed_value(order, "lines", [line])
    session.add_all(
        [
            line,
            OrderStatusChange(order_id=order.id, from_status=None, to_status=S.pending_payment.value, at=now),
            _expiry_job(order),
        ]
    )
    record_event(
        session,
        events.ORDER_CREATED,
        actor_id=user.id,
        subjects=_subjects(order),
        payload={
            "item_id": item.id,
            "quantity": data.quantity,
            "total_fen": total,
            "coupon_id": data.coupon_id,
            "discount_fen": discount,
            "fulfilment": data.fulfilment.value,
            "pickup_point_id": order.pickup_point_id,
            "store_id": order.store_id,
            "reserved_until": order.reserved_until.isoformat(),
        },
        occurred_at=now,
    )
    await session.flush()
    # Last, so the neighbour's count row and the hot item row stay locked only until the caller commits.
    await hold_purchase(session, user.id, item.id, data.quantity, limit=item.per_user_limit)
    await reserve_stock(session, item.id, data.quantity)
    if total == 0 and data.coupon_id is not None:
        # A coupon paid for all of it: no provider takes a 0-fen payment, so it is paid here and now.
        ref = f"order-{order.id}"
        return await mark_paid(
            session, order.id, amount_fen=0, provider=COUPON_PROVIDER, provider_ref=ref, now=now
        )
    return order


# --- reading orders ---------------------------------------------------------------------------------


# Built once (every payment, cancel and expiry locks its order): building it cost as much as running it.
_LOCK_ORDER = (
    select(Order)
    .where(Order.id == bindparam("order_id"))
    .options(joinedload(Order.lines))
    .with_for_update(of=Order)
    .execution_options(populate_existing=True)
)


async def _lock_order(session: AsyncSession, order_id: int) -> Order:
    """The order, its row locked until the transaction ends (PostgreSQL) and its state freshly read."""
    order = (await session.scalars(_LOCK_ORDER, {"order_id": order_id})).unique().one_or_none()
    if order is None:
        raise OrderNotFound(f"no order with id {order_id}", order_id=order_id)
    return order


async def get_order(session: AsyncSession, order_id: int) -> Order:
    """Any order, for operators and other domains' services; ``OrderNotFound`` otherwise."""
    order = await session.get(Order, order_id)
    if order is None:
        raise OrderNotFound(f"no order with id {order_id}", order_id=order_id)
    return order


async def get_order_of(session: AsyncSession, order_id: int, user_id: int, *, fresh: bool = False) -> Order:
    """The neighbour's own order. Someone else's is ``OrderNotFound`` too, so ids reveal nothing.
    ``fresh`` reloads it (after a rolled-back savepoint left it expired)."""
    order = await session.get(Order, order_id, populate_existing=fresh)
    if order is None or order.user_id != user_id:
        raise OrderNotFound(f"no order with id {order_id}", order_id=order_id)
    return order


async def get_payable_order(
    session: AsyncSession, order_id: int, *, user_id: int, now: datetime | None = None
) -> Order:
    """The neighbour's own order, still waiting for payment and inside its reservation: what a payment may
    be started for. ``ReservationExpired`` once the reservation ran out, ``InvalidOrderTransition`` when it
    was paid, cancelled or refunded already, ``OrderNotFound`` for someone else's."""
    # Its lines in the same query (the provider is told what was bought): one round trip, not two.
    order = (
        (await session.scalars(select(Order).where(Order.id == order_id).options(joinedload(Order.lines))))
        .unique()
        .one_or_none()
    )
    if order is None or order.user_id != user_id:
        raise OrderNotFound(f"no order with id {order_id}", order_id=order_id)
    now = now or utcnow()
    if order.status == S.expired or (order.status == S.pending_payment and order.reserved_until <= now):
        raise ReservationExpired(
            "this order's reservation ran out before it was paid; please place a new order",
            order_id=order.id,
        )
    if order.status != S.pending_payment:
        raise InvalidOrderTransition(
            f"this order is {order.status} and cannot be paid", order_id=order.id, status=order.status
        )
    return order


async def order_timeline(session: AsyncSession, order_id: int) -> list[OrderStatusChange]:
    """The order's status changes, oldest first."""
    rows = await session.scalars(
        select(OrderStatusChange).where(OrderStatusChange.order_id == order_id).order_by(OrderStatusChange.id)
    )
    return list(rows.all())


@dataclass(frozen=True)
class OrderList:
    items: list[Order]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


async def _page(
    session: AsyncSession, conditions: Sequence[ColumnElement[bool]], page: int, per_page: int
) -> OrderList:
    page, per_page = max(page, 1), min(max(per_page, 1), 100)
    total = await session.scalar(select(func.count()).select_from(Order).where(*conditions)) or 0
    items = await session.scalars(
        select(Order)
        .where(*conditions)
        .order_by(Order.created_at.desc(), Order.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    return OrderList(items=list(items.all()), total=total, page=page, per_page=per_page)


async def list_my_orders(
    session: AsyncSession,
    user_id: int,
    *,
    status: OrderStatus | None = None,
    page: int = 1,
    per_page: int = 20,
) -> OrderList:
    """The neighbour's own orders, newest first."""
    conditions: list[ColumnElement[bool]] = [Order.user_id == user_id]
    if status is not None:
        conditions.append(Order.status == status.value)
    return await _page(session, conditions, page, per_page)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_orders(
    session: AsyncSession,
    *,
    q: str | None = None,
    status: OrderStatus | None = None,
    session_id: int | None = None,
    page: int = 1,
    per_page: int = 20,
) -> OrderList:
    """Orders for operators, newest first: ``q`` matches the order number, the contact phone or a product
    name; filtered by ``status`` and live ``session_id``."""
    conditions: list[ColumnElement[bool]] = []
    if status is not None:
        conditions.append(Order.status == status.value)
    if session_id is not None:
        conditions.append(Order.session_id == session_id)
    text = (q or "").strip()
    if text:
        pattern = _like(text)
        matches: list[ColumnElement[bool]] = [
            Order.contact_phone.like(pattern, escape="\\"),
            exists().where(
                OrderLine.order_id == Order.id, OrderLine.product_name.ilike(pattern, escape="\\")
            ),
        ]
        if text.isdigit() and len(text) < 19:
            matches.append(Order.id == int(text))
        conditions.append(or_(*matches))
    return await _page(session, conditions, page, per_page)


# --- transitions ------------------------------------------------------------------------------------


def _event_lines(order: Order) -> list[dict[str, Any]]:
    """The order's lines as events carry them: the room's ticker ("…刚刚下单了3份") and reviews read
    them without reading the order."""
    return [
        {
            "item_id": line.lineup_item_id,
            "product_id": line.product_id,
            "product_name": line.product_name,
            "quantity": line.quantity,
        }
        for line in _lines(order)
    ]


def _change(
    session: AsyncSession,
    order: Order,
    to: OrderStatus,
    event_type: str,
    *,
    now: datetime,
    actor_id: int | None,
    reason: str = "",
    payload: dict[str, Any] | None = None,
) -> None:
    """Move the (locked) order to ``to`` with its history row and its event."""
    before = order.status
    order.status = to.value
    order.updated_at = now
    session.add(
        OrderStatusChange(
            order_id=order.id,
            from_status=before,
            to_status=to.value,
            at=now,
            actor_id=actor_id,
            reason=reason,
        )
    )
    record_event(
        session,
        event_type,
        actor_id=actor_id,
        subjects=_subjects(order),
        payload={"from": before, "to": to.value, "total_fen": order.total_fen, **(payload or {})},
        occurred_at=now,
    )


def _refuse(order: Order, action: str) -> InvalidOrderTransition:
    return InvalidOrderTransition(
        f"this order is {order.status.replace('_', ' ')} and cannot be {action}",
        order_id=order.id,
        status=order.status,
    )


async def _release_units(session: AsyncSession, order: Order) -> None:
    """Give an unpaid order's units back to the neighbour's limit and to the sale. Verbs call it (and
    ``commit_stock``) last, after their own writes are flushed, so the hot item row is locked only from
    here to the caller's commit."""
    for line in _lines(order):
        await release_purchase(session, order.user_id, line.lineup_item_id, line.quantity)
        await release_stock(session, line.lineup_item_id, line.quantity)


async def cancel_order(
    session: AsyncSession, order_id: int, *, user: User, now: datetime | None = None
) -> Order:
    """The owner cancels an unpaid order: its units go back to the sale at once and its expiry timer is
    cancelled. Cancelling a cancelled order changes nothing; someone else's order is ``OrderNotFound``."""
    now = now or utcnow()
    order = await _lock_order(session, order_id)
    if order.user_id != user.id:
        raise OrderNotFound(f"no order with id {order_id}", order_id=order_id)
    if order.status == S.cancelled:
        return order
    if order.status != S.pending_payment:
        if order.status in (S.paid, S.completed):
            raise InvalidOrderTransition(
                "a paid order cannot be cancelled; request a refund instead",
                order_id=order.id,
                status=order.status,
            )
        raise _refuse(order, "cancelled")
    order.cancelled_at = now
    _change(
        session,
        order,
        S.cancelled,
        events.ORDER_CANCELLED,
        now=now,
        actor_id=user.id,
        reason="cancelled by the buyer",
    )
    await coupons.release_coupon(session, order, reason="cancelled", now=now)
    await session.flush()
    await cancel_job(session, expiry_job_key(order.id))
    await _release_units(session, order)
    return order


async def expire_order(session: AsyncSession, order_id: int, *, now: datetime | None = None) -> Order:
    """The reservation timer fired: an order still unpaid expires and its units go back to the sale.
    Idempotent: an order paid, cancelled or expired meanwhile is returned unchanged."""
    now = now or utcnow()
    order = await _lock_order(session, order_id)
    if order.status != S.pending_payment:
        return order
    order.expired_at = now
    _change(
        session, order, S.expired, events.ORDER_EXPIRED, now=now, actor_id=None, reason="not paid in time"
    )
    await coupons.release_coupon(session, order, reason="expired", now=now)
    await session.flush()
    await cancel_job(session, expiry_job_key(order.id))
    await _release_units(session, order)
    return order


async def mark_paid(
    session: AsyncSession,
    order_id: int,
    *,
    amount_fen: int,
    provider: str,
    provider_ref: str,
    now: datetime | None = None,
) -> Order:
    """Record a verified payment: ``pending_payment → paid`` and the order's reserved units become sold.

    For the payments side. Idempotent by ``(provider, provider_ref)``: the same payment again returns the
    order unchanged. Raises, writing nothing (so the caller can record the refund it owes in the same
    transaction):

    - ``AmountMismatch`` when ``amount_fen`` is not the order's ``total_fen``;
    - ``AlreadyPaid`` when another payment already paid the order;
    - ``PaidAfterCancel`` when the owner had cancelled the order;
    - ``PaidAfterExpiry`` when the order expired and its units cannot be taken again (sold out meanwhile, or
      the neighbour's limit is used by newer orders). An expired order whose units are still there is
      revived: units reserved again and sold, per-user count held again, whatever the sale window says now
      (the payment was started while the order was valid).
    """
    now = now or utcnow()
    order = await _lock_order(session, order_id)
    if amount_fen != order.total_fen:
        raise AmountMismatch(
            f"paid {format_fen(amount_fen)} but the order's total is {format_fen(order.total_fen)}",
            order_id=order.id,
            amount_fen=amount_fen,
            total_fen=order.total_fen,
        )
    if order.payment_ref is not None:
        if (order.payment_provider, order.payment_ref) == (provider, provider_ref):
            return order
        raise AlreadyPaid(
            f"order {order.id} was already paid by another payment",
            order_id=order.id,
            payment_provider=order.payment_provider,
            payment_ref=order.payment_ref,
        )
    revived = False
    if order.status == S.cancelled:
        raise PaidAfterCancel(
            f"order {order.id} was cancelled before its payment arrived; the payment must be refunded",
            order_id=order.id,
        )
    if order.status == S.expired:
        try:
            async with session.begin_nested():
                for line in _lines(order):
                    item_limit = await per_user_limit(session, line.lineup_item_id)
                    await hold_purchase(
                        session, order.user_id, line.lineup_item_id, line.quantity, limit=item_limit
                    )
                    await reserve_stock(session, line.lineup_item_id, line.quantity)
                if not await coupons.mark_coupon_used(session, order, now=now, revived=True):
                    raise CouponUnavailable("its coupon was used by another order meanwhile")
        except (SoldOut, PurchaseLimitReached, CouponUnavailable) as exc:
            raise PaidAfterExpiry(
                f"order {order.id} expired before its payment arrived and its units are gone "
                f"({exc.message}); the payment must be refunded",
                order_id=order.id,
            ) from None
        revived = True
    elif order.status != S.pending_payment:
        raise _refuse(order, "paid")
    elif not await coupons.mark_coupon_used(session, order, now=now):
        raise RuntimeError(f"order {order.id}'s coupon {order.coupon_id} is not locked to it")
    order.paid_at = now
    order.payment_provider = provider
    order.payment_ref = provider_ref
    _change(
        session,
        order,
        S.paid,
        events.ORDER_PAID,
        now=now,
        actor_id=None,
        reason="paid after its reservation expired" if revived else f"paid via {provider}",
        payload={
            "amount_fen": amount_fen,
            "provider": provider,
            "provider_ref": provider_ref,
            "revived": revived,
            # What the room's purchase ticker says ("…刚刚下单了3份") without reading the order.
            "lines": _event_lines(order),
        },
    )
    await session.flush()
    if not revived:
        await cancel_job(session, expiry_job_key(order.id))
    for line in _lines(order):
        await commit_stock(session, line.lineup_item_id, line.quantity)
    return order


async def request_refund(
    session: AsyncSession, order_id: int, *, user: User, reason: str = "", now: datetime | None = None
) -> Order:
    """The owner asks for a paid order's money back (``paid → refund_requested``); an operator approves it.
    Asking twice changes nothing."""
    now = now or utcnow()
    order = await _lock_order(session, order_id)
    if order.user_id != user.id:
        raise OrderNotFound(f"no order with id {order_id}", order_id=order_id)
    return await _to_refund_requested(session, order, actor_id=user.id, reason=reason, now=now)


async def _to_refund_requested(
    session: AsyncSession, order: Order, *, actor_id: int | None, reason: str, now: datetime
) -> Order:
    if order.status == S.refund_requested:
        return order
    if order.status != S.paid:
        raise _refuse(order, "refunded")
    order.refund_requested_at = now
    _change(
        session,
        order,
        S.refund_requested,
        events.ORDER_REFUND_REQUESTED,
        now=now,
        actor_id=actor_id,
        reason=reason or "refund requested",
    )
    await session.flush()
    return order


async def mark_refunded(
    session: AsyncSession,
    order_id: int,
    *,
    provider_ref: str | None,
    actor_id: int | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> Order:
    """Record that the order's money went back (``paid`` or ``refund_requested`` → ``refunded``).

    For the payments side (``provider_ref`` is the provider's refund id; None when nothing was paid
    through a provider). Idempotent: an order already refunded is returned unchanged. The units stay
    sold — also while the session is still live: the goods were allocated (fresh food is made to the
    count), and ``sold`` remains the record of what was paid for; an operator who wants to sell them again
    raises the item's stock. They no longer count against the neighbour's per-user limit, and the order's
    coupon goes back to the neighbour (``coupons.release_coupon``; it keeps its own end date)."""
    now = now or utcnow()
    order = await _lock_order(session, order_id)
    if order.status == S.refunded:
        return order
    if order.status not in (S.paid, S.refund_requested):
        raise _refuse(order, "refunded")
    for line in _lines(order):
        await release_purchase(session, order.user_id, line.lineup_item_id, line.quantity)
    await coupons.release_coupon(session, order, reason="refunded", now=now)
    order.refunded_at = now
    order.refund_ref = provider_ref
    _change(
        session,
        order,
        S.refunded,
        events.ORDER_REFUNDED,
        now=now,
        actor_id=actor_id,
        reason=reason or "refunded",
        payload={"provider_ref": provider_ref, "amount_fen": order.total_fen},
    )
    await session.flush()
    return order


async def approve_refund(
    session: AsyncSession,
    order_id: int,
    *,
    actor: User | None,
    reason: str = "",
    now: datetime | None = None,
) -> Order:
    """An operator refunds a paid order (requested or not): it moves to ``refund_requested`` and the
    payment's provider is asked to refund it (``refunds.request_provider_refund``); when nothing was paid
    through a provider the order is marked refunded at once. Approving again changes nothing. ``actor``
    None: the platform itself refunds (a group order's cutoff policy)."""
    now = now or utcnow()
    actor_id = actor.id if actor is not None else None
    order = await _lock_order(session, order_id)
    if order.status == S.refunded:
        return order
    order = await _to_refund_requested(
        session, order, actor_id=actor_id, reason=reason or "refund approved by an operator", now=now
    )
    started = await refunds.request_provider_refund(session, order, actor_id=actor_id)
    if not started:
        order = await mark_refunded(
            session, order.id, provider_ref=None, actor_id=actor_id, reason=reason or "refunded", now=now
        )
    return order


async def move_to_store(
    session: AsyncSession,
    order_id: int,
    store_id: int,
    *,
    actor_id: int | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> Order:
    """Change a paid order's fulfilment to pickup at an open store (a group order below its threshold
    moved to store pickup); ``order.fulfilment_changed``. Moving it to the store it is at changes nothing."""
    now = now or utcnow()
    order = await _lock_order(session, order_id)
    if order.fulfilment == Fulfilment.store.value and order.store_id == store_id:
        return order
    if order.status != S.paid:
        raise _refuse(order, "moved to store pickup")
    store = await _store(session, store_id)
    before = {
        "fulfilment": order.fulfilment,
        "pickup_point_id": order.pickup_point_id,
        "store_id": order.store_id,
    }
    order.fulfilment = Fulfilment.store.value
    order.store_id = store.id
    order.pickup_point_id = None
    order.updated_at = now
    record_event(
        session,
        events.ORDER_FULFILMENT_CHANGED,
        actor_id=actor_id,
        subjects=_subjects(order),
        payload={"from": before, "fulfilment": order.fulfilment, "store_id": store.id, "reason": reason},
        occurred_at=now,
    )
    await session.flush()
    return order


async def complete_order(
    session: AsyncSession, order_id: int, *, actor_id: int | None = None, now: datetime | None = None
) -> Order:
    """A paid order was handed over (``paid → completed``); completing it again changes nothing."""
    now = now or utcnow()
    order = await _lock_order(session, order_id)
    if order.status == S.completed:
        return order
    if order.status != S.paid:
        raise _refuse(order, "completed")
    order.completed_at = now
    _change(
        session,
        order,
        S.completed,
        events.ORDER_COMPLETED,
        now=now,
        actor_id=actor_id,
        reason="picked up",
        # What a review of the order is about (community reads it without importing orders).
        payload={"lines": _event_lines(order)},
    )
    await session.flush()
    return order
