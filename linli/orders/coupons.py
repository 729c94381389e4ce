"""Coupons: operators design templates, neighbours hold coupons issued from them, checkout applies one.

A coupon copies its template's terms when it is issued (editing a template later changes only coupons
issued afterwards) and moves ``available → locked`` when an order is placed with it, ``locked → used``
when that order is paid, and back to ``available`` when the order is cancelled or expires unpaid. Every
move is a conditional update the database decides, so a coupon is never applied to two orders.

Pricing rules (:func:`discount_for`; all int fen):

- ``fixed``: ``amount_fen`` off, at most the subtotal;
- ``percent``: ``percent`` % off the subtotal, rounded **up** to the fen — in the buyer's favour, so
  10 % off 999 fen is 100 fen off, not 99;
- ``free_item``: one unit of ``free_product_id`` free, at the price the order pays for it; the order must
  contain that product;
- the subtotal must reach ``min_spend_fen`` (before the discount); the discount is never negative and never
  more than the subtotal, so the total is ``subtotal - discount`` and never below 0. One coupon per order.

A refunded order gives its coupon back (``used → available``, ``coupon.released`` with reason "refunded"):
the neighbour paid nothing for the discount they lost, and the coupon keeps its own end date, so a coupon
returned after it ended reads "expired" and cannot be used again.

Validity is ``valid_from <= now < valid_until``; "expired" is read off the time (no timer rewrites rows),
the stored status ``expired`` is left for a future sweep and is treated as unusable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.catalog.models import Product
from linli.core.clock import utcnow
from linli.core.consumers import Consumer
from linli.core.errors import LinliError
from linli.core.events import Event, Subjects, record_event
from linli.core.money import format_fen
from linli.identity.models import User
from linli.orders import events
from linli.orders.coupon_schemas import CouponTemplateCreate, CouponTemplateUpdate
from linli.orders.errors import (
    CouponNotApplicable,
    CouponNotFound,
    CouponTemplateNotFound,
    CouponUnavailable,
    InvalidCouponTemplate,
)
from linli.orders.models import Coupon, CouponKind, CouponStatus, CouponTemplate, Order

log = logging.getLogger("linli.coupons")

C = CouponStatus
LOTTERY_DRAWN = "lottery.drawn"  # live's event; by name, live is a lower domain
CONSUMER = "orders.lottery_prizes"


class Terms(Protocol):
    """What pricing reads of a coupon (a ``Coupon`` or a ``CouponTemplate``)."""

    kind: str
    amount_fen: int | None
    percent: int | None
    free_product_id: int | None
    min_spend_fen: int


# --- pricing ---------------------------------------------------------------------------------------


def discount_for(terms: Terms, *, subtotal_fen: int, product_id: int, unit_price_fen: int) -> int:
    """The fen a coupon takes off an order of ``product_id`` at ``unit_price_fen`` a unit totalling
    ``subtotal_fen`` (see the module docstring); ``CouponNotApplicable`` when its terms do not fit."""
    if subtotal_fen < terms.min_spend_fen:
        raise CouponNotApplicable(
            f"this coupon needs a spend of {format_fen(terms.min_spend_fen)}; "
            f"this order is {format_fen(subtotal_fen)}",
            reason="min_spend",
            min_spend_fen=terms.min_spend_fen,
        )
    kind = CouponKind(terms.kind)
    if kind is CouponKind.fixed:
        discount = terms.amount_fen or 0
    elif kind is CouponKind.percent:
        discount = -(-subtotal_fen * (terms.percent or 0) // 100)  # ceiling: rounds in the buyer's favour
    else:
        if terms.free_product_id != product_id:
            raise CouponNotApplicable(
                "this coupon is for another product", reason="other_product", product_id=terms.free_product_id
            )
        discount = unit_price_fen
    return max(0, min(discount, subtotal_fen))


def status_of(coupon: Coupon, now: datetime) -> CouponStatus:
    """The coupon's status as of ``now``: an available coupon past its end is expired."""
    if coupon.status == C.available and now >= coupon.valid_until:
        return C.expired
    return CouponStatus(coupon.status)


def _usable_now(coupon: Coupon, now: datetime) -> bool:
    return coupon.status == C.available and coupon.valid_from <= now < coupon.valid_until


def _unavailable(coupon: Coupon, now: datetime) -> CouponUnavailable:
    status = status_of(coupon, now)
    reasons = {
        C.locked: "this coupon is already applied to another unpaid order",
        C.used: "this coupon has been used",
        C.expired: "this coupon has expired",
        C.void: "this coupon was withdrawn",
    }
    message = reasons.get(status, "this coupon is not valid yet")
    return CouponUnavailable(message, coupon_id=coupon.id, status=status.value)


def _subjects(coupon: Coupon, order_id: int | None = None) -> Subjects:
    return Subjects(user_id=coupon.user_id, order_id=order_id)


def _payload(coupon: Coupon, **extra: Any) -> dict[str, Any]:
    return {"coupon_id": coupon.id, "template_id": coupon.template_id, "kind": coupon.kind, **extra}


# --- templates -------------------------------------------------------------------------------------


async def create_template(
    session: AsyncSession, data: CouponTemplateCreate, *, actor: User, now: datetime | None = None
) -> CouponTemplate:
    """An operator designs a coupon (``coupon_template.created``); a free item must be a catalog product."""
    now = now or utcnow()
    if data.free_product_id is not None and await session.get(Product, data.free_product_id) is None:
        raise InvalidCouponTemplate(f"no product {data.free_product_id}", field="free_product_id")
    template = CouponTemplate(**data.model_dump(), created_by=actor.id, created_at=now, updated_at=now)
    session.add(template)
    await session.flush()
    record_event(
        session,
        events.COUPON_TEMPLATE_CREATED,
        actor_id=actor.id,
        payload={"template_id": template.id, "name": template.name, "kind": template.kind},
        occurred_at=now,
    )
    return template


async def get_template(session: AsyncSession, template_id: int) -> CouponTemplate:
    template = await session.get(CouponTemplate, template_id)
    if template is None:
        raise CouponTemplateNotFound(f"no coupon template {template_id}", template_id=template_id)
    return template


async def update_template(
    session: AsyncSession, template_id: int, data: CouponTemplateUpdate, *, actor: User
) -> CouponTemplate:
    """Rename a template or switch its issuing on and off (``coupon_template.updated``)."""
    template = await get_template(session, template_id)
    changes = data.model_dump(exclude_none=True)
    for field, value in changes.items():
        setattr(template, field, value)
    if changes:
        template.updated_at = utcnow()
        record_event(
            session,
            events.COUPON_TEMPLATE_UPDATED,
            actor_id=actor.id,
            payload={"template_id": template.id, **changes},
        )
    await session.flush()
    return template


async def list_templates(session: AsyncSession) -> list[CouponTemplate]:
    """All templates, newest first."""
    rows = await session.scalars(select(CouponTemplate).order_by(CouponTemplate.id.desc()))
    return list(rows.all())


# --- issuing ---------------------------------------------------------------------------------------


def _validity(template: CouponTemplate, now: datetime) -> tuple[datetime, datetime]:
    starts = max(template.valid_from, now) if template.valid_from is not None else now
    ends = [template.valid_until] if template.valid_until is not None else []
    if template.valid_days:
        ends.append(starts + timedelta(days=template.valid_days))
    if not ends or min(ends) <= starts:
        raise InvalidCouponTemplate(
            f"{template.name} has ended; it cannot be issued", template_id=template.id
        )
    return starts, min(ends)


async def _issued(session: AsyncSession, user_id: int, template_id: int, source: str) -> Coupon | None:
    return await session.scalar(
        select(Coupon).where(
            Coupon.user_id == user_id, Coupon.template_id == template_id, Coupon.source == source
        )
    )


async def issue_coupon(
    session: AsyncSession,
    template_id: int,
    user_id: int,
    *,
    source: str,
    actor_id: int | None = None,
    now: datetime | None = None,
) -> Coupon:
    """Issue one coupon of an active template to a neighbour (``coupon.issued``).

    Idempotent by ``(user, template, source)``: the same source again returns the coupon already issued
    (also under a race: the unique constraint decides, the loser reads the winner's row)."""
    now = now or utcnow()
    source = source[:64]
    existing = await _issued(session, user_id, template_id, source)
    if existing is not None:
        return existing
    template = await get_template(session, template_id)
    if not template.active:
        raise InvalidCouponTemplate(
            f"{template.name} is switched off; it cannot be issued", template_id=template_id
        )
    starts, ends = _validity(template, now)
    coupon = Coupon(
        template_id=template.id,
        user_id=user_id,
        name=template.name,
        kind=template.kind,
        amount_fen=template.amount_fen,
        percent=template.percent,
        free_product_id=template.free_product_id,
        min_spend_fen=template.min_spend_fen,
        valid_from=starts,
        valid_until=ends,
        status=C.available.value,
        source=source,
        created_at=now,
        updated_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(coupon)
    except IntegrityError:
        winner = await _issued(session, user_id, template_id, source)
        if winner is None:
            raise
        return winner
    record_event(
        session,
        events.COUPON_ISSUED,
        actor_id=actor_id,
        subjects=_subjects(coupon),
        payload=_payload(coupon, source=source, valid_until=ends.isoformat()),
        occurred_at=now,
    )
    await session.flush()
    return coupon


async def issue_to_phone(
    session: AsyncSession, template_id: int, phone: str, *, source: str, actor: User
) -> Coupon:
    """An operator issues a coupon to the neighbour with this phone (``CouponNotFound``-like 404 if none)."""
    from linli.identity.service import normalize_phone

    number = normalize_phone(phone)
    user_id = await session.scalar(select(User.id).where(User.phone == number))
    if user_id is None:
        raise CouponNotFound(f"no neighbour with phone {number}", field="phone")
    return await issue_coupon(session, template_id, user_id, source=source, actor_id=actor.id)


async def list_issued(session: AsyncSession, template_id: int, *, limit: int = 200) -> list[Coupon]:
    """The coupons issued from a template, newest first (operators)."""
    rows = await session.scalars(
        select(Coupon).where(Coupon.template_id == template_id).order_by(Coupon.id.desc()).limit(limit)
    )
    return list(rows.all())


# --- a neighbour's coupons -------------------------------------------------------------------------


async def list_my_coupons(session: AsyncSession, user_id: int) -> list[Coupon]:
    """All of the neighbour's coupons: usable ones first (ending soonest first), then the rest."""
    rows = await session.scalars(select(Coupon).where(Coupon.user_id == user_id).order_by(Coupon.id.desc()))
    now = utcnow()
    return sorted(
        rows.all(), key=lambda c: (not _usable_now(c, now), c.valid_until if _usable_now(c, now) else now)
    )


@dataclass(frozen=True)
class OrderTerms:
    """What a coupon is checked against: the order's subtotal, its product and unit price, and when."""

    subtotal_fen: int
    product_id: int
    unit_price_fen: int
    now: datetime

    def discount(self, coupon: Terms) -> int:
        return discount_for(
            coupon,
            subtotal_fen=self.subtotal_fen,
            product_id=self.product_id,
            unit_price_fen=self.unit_price_fen,
        )


@dataclass(frozen=True)
class Offer:
    """A coupon the neighbour can apply to a quote, and what it takes off."""

    coupon: Coupon
    discount_fen: int


async def offers(session: AsyncSession, user_id: int, terms: OrderTerms) -> list[Offer]:
    """The neighbour's coupons that apply to this order now, best first (largest discount, then the one
    ending soonest)."""
    now = terms.now
    rows = await session.scalars(
        select(Coupon).where(
            Coupon.user_id == user_id,
            Coupon.status == C.available.value,
            Coupon.valid_from <= now,
            Coupon.valid_until > now,
        )
    )
    found = []
    for coupon in rows.all():
        try:
            discount = terms.discount(coupon)
        except CouponNotApplicable:
            continue
        found.append(Offer(coupon, discount))
    found.sort(key=lambda o: (-o.discount_fen, o.coupon.valid_until, o.coupon.id))
    return found


async def _refusal(session: AsyncSession, user_id: int, coupon_id: int, now: datetime) -> LinliError:
    coupon = await session.get(Coupon, coupon_id, populate_existing=True)
    if coupon is None or coupon.user_id != user_id:
        return CouponNotFound(f"no coupon {coupon_id} of yours", coupon_id=coupon_id)
    return _unavailable(coupon, now)


async def check_coupon(
    session: AsyncSession, user_id: int, coupon_id: int, terms: OrderTerms
) -> tuple[Coupon, int]:
    """The neighbour's coupon and its discount for a quote, without holding it (reads only)."""
    now = terms.now
    coupon = await session.get(Coupon, coupon_id)
    if coupon is None or coupon.user_id != user_id:
        raise CouponNotFound(f"no coupon {coupon_id} of yours", coupon_id=coupon_id)
    if not _usable_now(coupon, now):
        raise _unavailable(coupon, now)
    return coupon, terms.discount(coupon)


async def lock_coupon(session: AsyncSession, user_id: int, coupon_id: int, terms: OrderTerms) -> int:
    """Hold the neighbour's coupon for an order being placed and return its discount.

    Checkout's hot path: one conditional ``UPDATE … RETURNING`` (available, theirs, valid now) — the
    database lets one order of two concurrent ones have it. Raises ``CouponNotFound``,
    ``CouponUnavailable`` or ``CouponNotApplicable``; after a raise the caller rolls back, which also
    undoes the lock. No event here: ``order.created`` carries the coupon."""
    now = terms.now
    locked = (
        await session.execute(
            update(Coupon)
            .where(
                Coupon.id == coupon_id,
                Coupon.user_id == user_id,
                Coupon.status == C.available.value,
                Coupon.valid_from <= now,
                Coupon.valid_until > now,
            )
            .values(status=C.locked.value, updated_at=now)
            .returning(
                Coupon.kind, Coupon.amount_fen, Coupon.percent, Coupon.free_product_id, Coupon.min_spend_fen
            )
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if locked is None:
        raise await _refusal(session, user_id, coupon_id, now)
    return terms.discount(locked)


async def mark_coupon_used(
    session: AsyncSession, order: Order, *, now: datetime, revived: bool = False
) -> bool:
    """The order was paid: its coupon becomes used by it (``coupon.used``). Also takes a coupon that was
    given back when the order expired, if it is still free (a late payment revives the order); False when
    it is not (used by another order meanwhile) and nothing was written."""
    if order.coupon_id is None:
        return True
    used = await session.scalar(
        update(Coupon)
        .where(
            Coupon.id == order.coupon_id,
            Coupon.user_id == order.user_id,
            # A pending order's coupon is locked to it (only leaving ``pending_payment`` releases it); a
            # revived order's was given back on expiry and may be locked by another order by now.
            Coupon.status == (C.available.value if revived else C.locked.value),
        )
        .values(status=C.used.value, order_id=order.id, used_at=now, updated_at=now)
        .returning(Coupon.template_id)
        .execution_options(synchronize_session=False)
    )
    if used is None:
        return False
    record_event(
        session,
        events.COUPON_USED,
        subjects=Subjects(user_id=order.user_id, order_id=order.id),
        payload={"coupon_id": order.coupon_id, "template_id": used, "discount_fen": order.discount_fen},
        occurred_at=now,
    )
    return True


async def release_coupon(session: AsyncSession, order: Order, *, reason: str, now: datetime) -> None:
    """Give the order's coupon back to its owner (``coupon.released``): a locked one when the order is
    cancelled or expires unpaid, a used one when the order is refunded. Nothing when it has none."""
    if order.coupon_id is None:
        return
    released = await session.scalar(
        update(Coupon)
        .where(
            Coupon.id == order.coupon_id,
            Coupon.user_id == order.user_id,
            (Coupon.status == C.locked.value)
            | ((Coupon.status == C.used.value) & (Coupon.order_id == order.id)),
        )
        .values(status=C.available.value, order_id=None, used_at=None, updated_at=now)
        .returning(Coupon.template_id)
        .execution_options(synchronize_session=False)
    )
    if released is None:
        return
    record_event(
        session,
        events.COUPON_RELEASED,
        subjects=Subjects(user_id=order.user_id, order_id=order.id),
        payload={"coupon_id": order.coupon_id, "template_id": released, "reason": reason},
        occurred_at=now,
    )


# --- lottery prizes --------------------------------------------------------------------------------


async def _on_lottery_drawn(session: AsyncSession, event: Event) -> None:
    payload = event.payload or {}
    template_id = payload.get("prize_coupon_template_id")
    lottery_id = payload.get("lottery_id")
    if not template_id or lottery_id is None:
        return
    source = f"lottery:{lottery_id}"
    for user_id in payload.get("winner_user_ids") or []:
        try:
            async with session.begin_nested():
                await issue_coupon(
                    session, int(template_id), int(user_id), source=source, now=event.occurred_at
                )
        except (CouponTemplateNotFound, InvalidCouponTemplate) as exc:
            # The operator's template is gone or switched off: the prize stays a name, nothing to retry.
            log.warning("lottery %s: prize coupon not issued to %s: %s", lottery_id, user_id, exc.message)


def lottery_prize_consumer() -> Consumer:
    """Issues the lottery's prize coupon to each winner, once (``source = "lottery:<id>"``)."""
    return Consumer(name=CONSUMER, handler=_on_lottery_drawn, types=frozenset({LOTTERY_DRAWN}))


# --- guessing-topic prizes (the community feed's ``feed.guess_won``, by name) ----------------------

GUESS_WON = "feed.guess_won"
GUESS_CONSUMER = "orders.guess_prizes"


async def _on_guess_won(session: AsyncSession, event: Event) -> None:
    payload = event.payload or {}
    template_id, user_id, topic_id = (
        payload.get("coupon_template_id"),
        payload.get("user_id"),
        payload.get("topic_id"),
    )
    if not template_id or user_id is None or topic_id is None:
        return
    try:
        async with session.begin_nested():
            await issue_coupon(
                session, int(template_id), int(user_id), source=f"guess:{topic_id}", now=event.occurred_at
            )
    except (CouponTemplateNotFound, InvalidCouponTemplate) as exc:
        log.warning("guess %s: prize coupon not issued to %s: %s", topic_id, user_id, exc.message)


def guess_prize_consumer() -> Consumer:
    """Issues a guessing topic's prize coupon to each winner, once (``source = "guess:<topic id>"``)."""
    return Consumer(name=GUESS_CONSUMER, handler=_on_guess_won, types=frozenset({GUESS_WON}))
