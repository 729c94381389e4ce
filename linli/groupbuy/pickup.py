"""Pickup codes and their verification at the pickup point.

Each paid order gets a 6-digit code, unique among the open codes of its place (a pickup point or a
store). Codes are stored plain: the buyer's order page shows the code and its QR at any time, and a
hash of a 6-digit number is no protection (a million guesses). What protects a code is who may try
it — a leader only at their own point — and how often: wrong codes are counted per leader in
``core.ratelimit`` in the caller's transaction, which the edge commits although it answers with the
error (the API does: a refused try must still count), and past ``WRONG_CODE_LIMIT`` in the window every
attempt is refused until the window ends.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import segno
from markupsafe import Markup
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community.models import PickupPoint
from linli.core import ratelimit
from linli.core.clock import utcnow
from linli.core.db import insert_ignoring, insert_unless_taken
from linli.core.errors import TooManyRequests
from linli.core.events import Subjects, record_event
from linli.groupbuy import events, fees
from linli.groupbuy.errors import NotReadyForPickup, NotYourPickupPoint, TooManyUnits, WrongPickupCode
from linli.groupbuy.models import (
    CodeStatus,
    Contribution,
    DeliveryFee,
    FeeStatus,
    GroupOrder,
    GroupState,
    Outcome,
    Pickup,
    PickupCode,
)
from linli.identity.models import Role, User
from linli.live.room.purchases import ticker_name
from linli.orders import service as orders
from linli.orders.models import Fulfilment, Order, OrderStatus

WRONG_CODE_LIMIT = 5
WRONG_CODE_WINDOW = 900  # seconds
CODE_ATTEMPTS = 20


def place_of(order: Order) -> str:
    if order.fulfilment == Fulfilment.store.value:
        return f"s:{order.store_id}"
    return f"p:{order.pickup_point_id}"


def _new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


async def code_of(session: AsyncSession, order_id: int) -> PickupCode | None:
    return await session.get(PickupCode, order_id)


def _code_row(order: Order, code: str, now: datetime) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "code": code,
        "place": place_of(order),
        "open_code": code,
        "units_total": order.units,
        "units_picked": 0,
        "status": CodeStatus.open.value,
        "created_at": now,
        "updated_at": now,
    }


async def issue_code(session: AsyncSession, order: Order, *, now: datetime | None = None) -> PickupCode:
    """The paid order's pickup code, issued once (primary key ``order_id``); a code already open at the
    same place is drawn again (the unique ``(place, open_code)`` decides). One statement when all goes
    well: the insert skips a row either key already holds, and only then is the existing code read."""
    now = now or utcnow()
    for _ in range(CODE_ATTEMPTS):
        values = _code_row(order, _new_code(), now)
        inserted = await insert_unless_taken(session, PickupCode, values, key=None)
        if inserted is not None:
            return inserted
        existing = await session.get(PickupCode, order.id, populate_existing=True)
        if existing is not None:
            return existing  # issued before (redelivery): the same code
    raise RuntimeError(f"no free pickup code at {place_of(order)} after {CODE_ATTEMPTS} draws")


async def issue_codes(session: AsyncSession, orders: list[Order], *, now: datetime) -> None:
    """``issue_code`` for many paid orders at once: one multi-row insert that skips the rows either key
    already holds. Orders it skipped that have no code yet drew one already open at their place (or in
    this same insert) and draw again, with the next insert."""
    pending = {order.id: order for order in orders}
    for _ in range(CODE_ATTEMPTS):
        if not pending:
            return
        drawn: dict[str, set[str]] = {}
        rows = []
        for order in pending.values():
            taken = drawn.setdefault(place_of(order), set())
            code = _new_code()
            while code in taken:
                code = _new_code()
            taken.add(code)
            rows.append(_code_row(order, code, now))
        inserted = set(await session.scalars(insert_ignoring(session, PickupCode, rows, PickupCode.order_id)))
        skipped = [order_id for order_id in pending if order_id not in inserted]
        issued = set(
            await session.scalars(select(PickupCode.order_id).where(PickupCode.order_id.in_(skipped)))
            if skipped
            else ()
        )
        pending = {order_id: pending[order_id] for order_id in skipped if order_id not in issued}
    raise RuntimeError(f"no free pickup codes for orders {sorted(pending)} after {CODE_ATTEMPTS} draws")


async def move_code(session: AsyncSession, order: Order, *, now: datetime) -> PickupCode:
    """The order moved (to a store): its open code moves with it, drawn again only if taken there."""
    row = await code_of(session, order.id)
    if row is None:
        return await issue_code(session, order, now=now)
    for attempt in range(CODE_ATTEMPTS):
        try:
            async with session.begin_nested():
                row.place = place_of(order)
                if attempt:
                    row.code = _new_code()
                if row.status == CodeStatus.open.value:
                    row.open_code = row.code
                row.updated_at = now
        except IntegrityError:
            row = await session.get(PickupCode, order.id, populate_existing=True)
            assert row is not None
            continue
        return row
    raise RuntimeError(f"no free pickup code at {place_of(order)}")


async def void_code(session: AsyncSession, order_id: int, *, now: datetime) -> None:
    """A refunded order's code stops working."""
    await session.execute(
        update(PickupCode)
        .where(PickupCode.order_id == order_id, PickupCode.status == CodeStatus.open.value)
        .values(status=CodeStatus.void.value, open_code=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def qr_svg(text: str, *, scale: int = 6) -> Markup:
    """The code as an inline SVG QR code (segno), rendered on the server."""
    out = io.BytesIO()
    segno.make(text, error="m", micro=False).save(
        out, kind="svg", scale=scale, xmldecl=False, svgns=True, border=2
    )
    return Markup(out.getvalue().decode())


# --- who may verify where --------------------------------------------------------------------------


async def points_led_by(session: AsyncSession, user_id: int) -> list[PickupPoint]:
    rows = await session.scalars(
        select(PickupPoint)
        .where(PickupPoint.leader_id == user_id, PickupPoint.archived_at.is_(None))
        .order_by(PickupPoint.id)
    )
    return list(rows.unique().all())


async def _place_for(
    session: AsyncSession, actor: User, pickup_point_id: int | None, store_id: int | None
) -> str:
    """The place the actor verifies at: a leader only at a point they lead (their only one when not
    given); operators anywhere, stores included."""
    operator = actor.has_role(Role.operator)
    if store_id is not None:
        if not operator:
            raise NotYourPickupPoint("only staff verify codes at a store", field="store_id")
        return f"s:{store_id}"
    if pickup_point_id is None:
        led = await points_led_by(session, actor.id)
        if len(led) != 1:
            raise NotYourPickupPoint("say which of your pickup points you verify at", field="pickup_point_id")
        return f"p:{led[0].id}"
    point = await session.get(PickupPoint, pickup_point_id)
    if point is None or (not operator and point.leader_id != actor.id):
        raise NotYourPickupPoint(
            "you can verify codes only at your own pickup point", field="pickup_point_id"
        )
    return f"p:{point.id}"


def _wrong_key(actor: User) -> str:
    return f"groupbuy.wrong_code:{actor.id}"


@dataclass(frozen=True)
class PickupResult:
    order_id: int
    buyer: str
    units_picked: int
    units_left: int
    units_now: int
    completed: bool
    fee_collected_fen: int
    fee_status: str | None  # after this pickup: "collected" when taken now, "paid_online", ...
    lines: list[dict[str, Any]]


async def _check_ready(session: AsyncSession, order: Order) -> None:
    """A community order is handed over once its group was delivered to the point; a store order once
    it is paid (chosen at checkout) or its group was settled to store pickup."""
    if order.status != OrderStatus.paid.value:
        raise NotReadyForPickup(f"this order is {order.status.replace('_', ' ')}", order_id=order.id)
    group = await session.scalar(
        select(GroupOrder)
        .join(Contribution, Contribution.group_order_id == GroupOrder.id)
        .where(Contribution.order_id == order.id)
    )
    if group is None:
        if order.fulfilment == Fulfilment.store.value:
            return
        raise NotReadyForPickup("this order has not been delivered to the point yet", order_id=order.id)
    if group.outcome == Outcome.store_pickup.value and order.fulfilment == Fulfilment.store.value:
        return
    if group.state != GroupState.delivered.value:
        raise NotReadyForPickup("this order's delivery has not arrived at the point yet", order_id=order.id)


async def verify_pickup(
    session: AsyncSession,
    *,
    actor: User,
    code: str,
    pickup_point_id: int | None = None,
    store_id: int | None = None,
    units: int | None = None,
    now: datetime | None = None,
) -> PickupResult:
    """Hand over ``units`` (all that are left when None) of the order whose open code ``code`` is at the
        actor's point. Wrong codes count against the actor (``WrongPickupCode``; ``TooManyRequests`` past the
        limit, checked before the code). The units move by a conditional update that never passes the
        order's total; the last unit closes the code and completes the order (``order.completed``). On
    ``WrongPickupCode`` the caller should commit (only the attempt's count was written)."""
    now = now or utcnow()
    place = await _place_for(session, actor, pickup_point_id, store_id)
    tried = await ratelimit.peek(session, _wrong_key(actor), window_seconds=WRONG_CODE_WINDOW, now=now)
    if tried >= WRONG_CODE_LIMIT:
        raise TooManyRequests(
            f"too many wrong codes; try again in {WRONG_CODE_WINDOW // 60} minutes",
            retry_after=WRONG_CODE_WINDOW,
        )
    clean = code.strip().replace(" ", "")
    row = None
    if len(clean) == 6 and clean.isdigit():
        row = await session.scalar(
            select(PickupCode).where(PickupCode.place == place, PickupCode.open_code == clean)
        )
    if row is None:
        await ratelimit.count_hit(session, _wrong_key(actor), window_seconds=WRONG_CODE_WINDOW, now=now)
        raise WrongPickupCode("no open pickup code like this at this point", field="code")
    order = await orders.get_order(session, row.order_id)
    await _check_ready(session, order)
    left = row.units_total - row.units_picked
    take = left if units is None else units
    if take > left:
        raise TooManyUnits(f"only {left} unit(s) are left to pick up on this order", units_left=left)
    moved = (
        await session.execute(
            update(PickupCode)
            .where(
                PickupCode.order_id == row.order_id,
                PickupCode.status == CodeStatus.open.value,
                PickupCode.units_picked + take <= PickupCode.units_total,
            )
            .values(units_picked=PickupCode.units_picked + take, updated_at=now)
            .returning(PickupCode.units_picked, PickupCode.units_total)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if moved is None:
        raise TooManyUnits("these units were just picked up", units_left=0)
    picked, total = int(moved[0]), int(moved[1])
    session.add(Pickup(order_id=order.id, units=take, verified_by=actor.id, at=now))
    # A fee still due is taken in cash now; one paid online (or waived) is not taken again.
    fee_collected = await fees.collect_in_cash(session, order, actor=actor, now=now)
    fee = await fees.fee_of(session, order.id, fresh=True)
    completed = picked == total
    if completed:
        await session.execute(
            update(PickupCode)
            .where(PickupCode.order_id == order.id)
            .values(status=CodeStatus.done.value, open_code=None)
            .execution_options(synchronize_session=False)
        )
    point_id = int(place[2:]) if place.startswith("p:") else None
    record_event(
        session,
        events.PICKUP_VERIFIED,
        actor_id=actor.id,
        subjects=Subjects(
            user_id=order.user_id,
            order_id=order.id,
            session_id=order.session_id,
            community_id=order.community_id,
        ),
        payload={
            "order_id": order.id,
            "units_picked": take,
            "units_left": total - picked,
            "pickup_point_id": point_id,
            "store_id": int(place[2:]) if place.startswith("s:") else None,
        },
        occurred_at=now,
    )
    await session.flush()
    if completed:
        await orders.complete_order(session, order.id, actor_id=actor.id, now=now)
    buyer = await session.get(User, order.user_id)
    return PickupResult(
        order_id=order.id,
        buyer=ticker_name(buyer.display_name if buyer is not None else ""),
        units_picked=picked,
        units_left=total - picked,
        units_now=take,
        completed=completed,
        fee_collected_fen=fee_collected,
        fee_status=fee.status if fee is not None else None,
        lines=[{"product_name": line.product_name, "quantity": line.quantity} for line in order.lines],
    )


@dataclass(frozen=True)
class PointOrder:
    order_id: int
    buyer: str
    phone_tail: str
    units_total: int
    units_picked: int
    status: str
    ready: bool
    fee_due_fen: int  # still to take in cash at pickup (0: none, waived, or already paid)
    fee_fen: int
    fee_status: str | None
    lines: list[dict[str, Any]]


async def orders_at_point(
    session: AsyncSession, pickup_point_id: int, *, session_id: int | None = None
) -> list[PointOrder]:
    """The paid orders to be picked up at a point (codes themselves are not shown: the buyer brings it)."""
    query = (
        select(PickupCode, Order)
        .join(Order, Order.id == PickupCode.order_id)
        .where(PickupCode.place == f"p:{pickup_point_id}", PickupCode.status != CodeStatus.void.value)
        .order_by(PickupCode.status.desc(), Order.id)
    )
    if session_id is not None:
        query = query.where(Order.session_id == session_id)
    rows = (await session.execute(query)).all()
    delivered = set(
        (
            await session.scalars(
                select(Contribution.order_id)
                .join(GroupOrder, GroupOrder.id == Contribution.group_order_id)
                .where(
                    Contribution.order_id.in_([o.id for _, o in rows] or [0]),
                    GroupOrder.state == GroupState.delivered.value,
                )
            )
        ).all()
    )
    fee_rows = {
        f.order_id: f
        for f in (
            await session.scalars(
                select(DeliveryFee)
                .where(DeliveryFee.order_id.in_([o.id for _, o in rows] or [0]))
                .execution_options(populate_existing=True)
            )
        ).all()
    }
    users = {
        u.id: u
        for u in (
            await session.scalars(select(User).where(User.id.in_({o.user_id for _, o in rows} or {0})))
        ).all()
    }
    result = []
    for code, order in rows:
        user = users.get(order.user_id)
        fee = fee_rows.get(order.id)
        result.append(
            PointOrder(
                order_id=order.id,
                buyer=ticker_name(user.display_name if user is not None else ""),
                phone_tail=order.contact_phone[-4:],
                units_total=code.units_total,
                units_picked=code.units_picked,
                status=code.status,
                ready=order.id in delivered and order.status == OrderStatus.paid.value,
                fee_due_fen=fee.amount_fen if fee is not None and fee.status == FeeStatus.due else 0,
                fee_fen=fee.amount_fen if fee is not None else 0,
                fee_status=fee.status if fee is not None else None,
                lines=[
                    {"product_name": line.product_name, "quantity": line.quantity} for line in order.lines
                ],
            )
        )
    return result
