"""Fulfilment after cutoff: delivery batches (dispatch and arrival confirmed by staff), pick lists per
place with per-SKU totals, and the operator's board per session."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community.models import PickupPoint, Store
from linli.core.clock import utcnow
from linli.core.events import Subjects, record_event
from linli.groupbuy import events, messages
from linli.groupbuy import service as groups
from linli.groupbuy.errors import BatchNotFound, InvalidBatch, InvalidGroupTransition
from linli.groupbuy.models import (
    BatchState,
    CodeStatus,
    Contribution,
    DeliveryBatch,
    DeliveryFee,
    FeeStatus,
    GroupOrder,
    GroupState,
    Outcome,
    PickupCode,
)
from linli.identity.models import User
from linli.orders.models import Fulfilment, Order, OrderLine, OrderStatus

DELIVERED_OUTCOMES = (Outcome.free_delivery.value, Outcome.delivery_fee.value)
# What a pick list packs: paid orders, and those already handed over (a reprint after pickups began).
PACKED = (OrderStatus.paid.value, OrderStatus.completed.value)


# --- batches ---------------------------------------------------------------------------------------


async def get_batch(session: AsyncSession, batch_id: int) -> DeliveryBatch:
    batch = await session.get(DeliveryBatch, batch_id, populate_existing=True)
    if batch is None:
        raise BatchNotFound(f"no delivery batch {batch_id}", batch_id=batch_id)
    return batch


async def groups_of_batch(session: AsyncSession, batch_id: int) -> list[GroupOrder]:
    rows = await session.scalars(
        select(GroupOrder)
        .where(GroupOrder.batch_id == batch_id)
        .order_by(GroupOrder.id)
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


async def list_batches(session: AsyncSession, session_id: int) -> list[DeliveryBatch]:
    rows = await session.scalars(
        select(DeliveryBatch).where(DeliveryBatch.session_id == session_id).order_by(DeliveryBatch.id)
    )
    return list(rows.all())


def is_late(batch: DeliveryBatch, deliver_by: datetime, now: datetime | None = None) -> bool:
    """Past the promise: arrived after it, or not arrived and it has passed."""
    if batch.arrived_at is not None:
        return batch.arrived_at > deliver_by
    return (now or utcnow()) > deliver_by


async def create_batch(
    session: AsyncSession, session_id: int, group_order_ids: list[int], *, note: str, actor: User
) -> DeliveryBatch:
    """Put closed groups that are delivered to their point into a new batch; each group joins one batch
    once (a conditional update on ``batch_id IS NULL``), so two batches never share a group."""
    now = utcnow()
    batch = DeliveryBatch(
        session_id=session_id, note=note, state=BatchState.planned.value, created_by=actor.id, created_at=now
    )
    session.add(batch)
    await session.flush()
    for group_id in sorted(set(group_order_ids)):
        taken = await session.execute(
            update(GroupOrder)
            .where(
                GroupOrder.id == group_id,
                GroupOrder.session_id == session_id,
                GroupOrder.state == GroupState.closed.value,
                GroupOrder.outcome.in_(DELIVERED_OUTCOMES),
                GroupOrder.batch_id.is_(None),
            )
            .values(batch_id=batch.id, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if not taken.rowcount:  # type: ignore[attr-defined]
            raise InvalidBatch(
                f"group order {group_id} is not a closed group of this session waiting for delivery",
                field="group_order_ids",
                group_order_id=group_id,
            )
    record_event(
        session,
        events.BATCH_CREATED,
        actor_id=actor.id,
        subjects=Subjects(session_id=session_id),
        payload={"batch_id": batch.id, "group_order_ids": sorted(set(group_order_ids)), "note": note},
        occurred_at=now,
    )
    return batch


async def _group_step(
    session: AsyncSession, group: GroupOrder, to: GroupState, event_type: str, *, actor: User, now: datetime
) -> None:
    before = group.state
    group.state = to.value
    group.updated_at = now
    if to is GroupState.dispatched:
        group.dispatched_at = now
    else:
        group.delivered_at = now
    groups._history(session, group, before, to.value, units=group.units, now=now, actor_id=actor.id)
    place = await groups.place_fields(session, group)
    groups.record_group_event(session, group, event_type, now=now, actor_id=actor.id, **place)
    if to is GroupState.delivered:
        point = await session.get(PickupPoint, group.pickup_point_id) if group.pickup_point_id else None
        told = (
            messages.delivered(point.name, point.address) if point is not None else messages.delivered(None)
        )
        for order in await groups.contributing_orders(session, group.id):
            if order.status == OrderStatus.paid.value:
                await messages.tell_buyer(session, order, told, key="groupbuy.delivered")


async def _batch_step(
    session: AsyncSession, batch_id: int, frm: BatchState, to: BatchState, *, actor: User
) -> DeliveryBatch:
    now = utcnow()
    values: dict[str, object] = {"state": to.value, "updated_at": now}
    if to is BatchState.dispatched:
        values.update(dispatched_at=now, dispatched_by=actor.id)
    else:
        values.update(arrived_at=now, arrived_by=actor.id)
    moved = await session.execute(
        update(DeliveryBatch)
        .where(DeliveryBatch.id == batch_id, DeliveryBatch.state == frm.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    batch = await get_batch(session, batch_id)
    if not moved.rowcount:  # type: ignore[attr-defined]
        if batch.state == to.value:
            return batch  # confirmed twice: nothing more happens
        raise InvalidGroupTransition(
            f"this batch is {batch.state} and cannot become {to.value}", batch_id=batch_id
        )
    group_to = GroupState.dispatched if to is BatchState.dispatched else GroupState.delivered
    group_from = GroupState.closed if to is BatchState.dispatched else GroupState.dispatched
    event_type = events.DISPATCHED if to is BatchState.dispatched else events.DELIVERED
    for group in await groups_of_batch(session, batch_id):
        if group.state == group_from.value:
            await _group_step(session, group, group_to, event_type, actor=actor, now=now)
    record_event(
        session,
        events.BATCH_DISPATCHED if to is BatchState.dispatched else events.BATCH_ARRIVED,
        actor_id=actor.id,
        subjects=Subjects(session_id=batch.session_id),
        payload={"batch_id": batch.id},
        occurred_at=now,
    )
    await session.flush()
    return batch


async def dispatch_batch(session: AsyncSession, batch_id: int, *, actor: User) -> DeliveryBatch:
    """Staff confirm the batch left: ``planned → dispatched``, its groups ``closed → dispatched``."""
    return await _batch_step(session, batch_id, BatchState.planned, BatchState.dispatched, actor=actor)


async def confirm_arrival(session: AsyncSession, batch_id: int, *, actor: User) -> DeliveryBatch:
    """Staff confirm the batch arrived: its groups are delivered and each buyer is told to pick up."""
    return await _batch_step(session, batch_id, BatchState.dispatched, BatchState.arrived, actor=actor)


# --- pick lists ------------------------------------------------------------------------------------


@dataclass
class PickPlace:
    kind: str  # "point" | "store"
    id: int
    name: str
    address: str
    community_name: str = ""
    lines: dict[tuple[int, str], int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.lines.values())


@dataclass
class PickList:
    session_id: int
    # The warehouse's list: every unit delivered to pickup points, per SKU.
    warehouse: dict[tuple[int, str], int]
    places: list[PickPlace]


async def pick_list(session: AsyncSession, session_id: int) -> PickList:
    """Per-SKU units to pack for the session, per pickup point and per store, from its paid orders (those
    refunded, or waiting for a refund, are left out); the warehouse total is the points' sum."""
    rows = (
        await session.execute(
            select(
                Order.fulfilment,
                Order.pickup_point_id,
                Order.store_id,
                OrderLine.product_id,
                OrderLine.product_name,
                func.sum(OrderLine.quantity),
            )
            .join(OrderLine, OrderLine.order_id == Order.id)
            .where(Order.session_id == session_id, Order.status.in_(PACKED))
            .group_by(
                Order.fulfilment,
                Order.pickup_point_id,
                Order.store_id,
                OrderLine.product_id,
                OrderLine.product_name,
            )
        )
    ).all()
    points = {
        p.id: p
        for p in (
            await session.scalars(
                select(PickupPoint).where(PickupPoint.id.in_({r[1] for r in rows if r[1]} or {0}))
            )
        ).unique()
    }
    stores = {
        s.id: s
        for s in (
            await session.scalars(select(Store).where(Store.id.in_({r[2] for r in rows if r[2]} or {0})))
        )
    }
    places: dict[tuple[str, int], PickPlace] = {}
    warehouse: dict[tuple[int, str], int] = {}
    for fulfilment, point_id, store_id, product_id, product_name, units in rows:
        sku = (int(product_id), str(product_name))
        if fulfilment == Fulfilment.pickup.value:
            assert point_id is not None
            point = points[point_id]
            place = places.setdefault(
                ("point", point_id),
                PickPlace("point", point_id, point.name, point.address, community_name=point.community_name),
            )
            warehouse[sku] = warehouse.get(sku, 0) + int(units)
        else:
            assert store_id is not None
            store = stores[store_id]
            place = places.setdefault(
                ("store", store_id), PickPlace("store", store_id, store.name, store.address)
            )
        place.lines[sku] = place.lines.get(sku, 0) + int(units)
    ordered = sorted(places.values(), key=lambda p: (p.kind, p.community_name, p.name, p.id))
    return PickList(session_id=session_id, warehouse=dict(sorted(warehouse.items())), places=ordered)


def pick_list_csv(picks: PickList) -> str:
    """The pick list as CSV (one row per place and SKU, then the warehouse totals)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["place_kind", "place_id", "place_name", "community", "product_id", "product_name", "units"]
    )
    for place in picks.places:
        for (product_id, name), units in sorted(place.lines.items()):
            writer.writerow([place.kind, place.id, place.name, place.community_name, product_id, name, units])
    for (product_id, name), units in picks.warehouse.items():
        writer.writerow(["warehouse", "", "", "", product_id, name, units])
    return out.getvalue()


# --- the operator's board --------------------------------------------------------------------------


@dataclass
class BoardRow:
    group: GroupOrder
    batch: DeliveryBatch | None
    orders: int
    picked_up: int
    pending: int
    exceptions: list[str]


@dataclass
class Board:
    terms: groups.Terms
    rows: list[BoardRow]
    batches: list[DeliveryBatch]
    late_batch_ids: set[int]

    @property
    def units(self) -> int:
        return sum(r.group.units for r in self.rows)


async def board(session: AsyncSession, session_id: int, *, now: datetime | None = None) -> Board:
    """Per community: units against the threshold, state and outcome, batch, pickups done and pending, and
    what needs a person (late batch, a refund under way, fees still to collect)."""
    now = now or utcnow()
    terms = await groups.terms_of(session, session_id)
    batches = await list_batches(session, session_id)
    by_id = {b.id: b for b in batches}
    late = {b.id for b in batches if is_late(b, terms.deliver_by, now)}
    codes = (
        await session.execute(
            select(Contribution.group_order_id, PickupCode.status, Order.status)
            .join(PickupCode, PickupCode.order_id == Contribution.order_id)
            .join(Order, Order.id == Contribution.order_id)
            .join(GroupOrder, GroupOrder.id == Contribution.group_order_id)
            .where(GroupOrder.session_id == session_id)
        )
    ).all()
    fees_due = dict(
        (
            await session.execute(
                select(DeliveryFee.group_order_id, func.count())
                .join(GroupOrder, GroupOrder.id == DeliveryFee.group_order_id)
                .where(GroupOrder.session_id == session_id, DeliveryFee.status == FeeStatus.due.value)
                .group_by(DeliveryFee.group_order_id)
            )
        ).all()
    )
    rows = []
    for group in await groups.list_groups(session, session_id):
        mine = [c for c in codes if c[0] == group.id]
        done = sum(1 for c in mine if c[1] == CodeStatus.done.value)
        pending = sum(1 for c in mine if c[1] == CodeStatus.open.value)
        refunding = sum(1 for c in mine if c[2] == OrderStatus.refund_requested.value)
        exceptions = []
        batch = by_id.get(group.batch_id) if group.batch_id else None
        if batch is not None and batch.id in late:
            exceptions.append("late")
        if (
            group.state == GroupState.closed.value
            and group.batch_id is None
            and group.outcome in DELIVERED_OUTCOMES
        ):
            if now > terms.deliver_by:
                exceptions.append("late")
            exceptions.append("unbatched")
        if refunding:
            exceptions.append("refunds_pending")
        if fees_due.get(group.id):
            exceptions.append("fees_due")
        if group.state in groups.OPEN_STATES and terms.cutoff_at is not None and now > terms.cutoff_at:
            exceptions.append("cutoff_overdue")
        rows.append(BoardRow(group, batch, len(mine), done, pending, sorted(set(exceptions))))
    return Board(terms=terms, rows=rows, batches=batches, late_batch_ids=late)
