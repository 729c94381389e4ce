"""Delivery fees of below-threshold groups delivered anyway (``models.FeeStatus``): due at cutoff, then
paid online through the payments provider — a ``delivery_fee`` payment tied to the order — or in cash to
the leader at pickup; refunded along with their order.

Money moves through the payments module as an order's does: the same providers, cashier and verified,
idempotent notifications. The notification path hands a fee payment to ``FeePurpose.paid`` (registered
below) in its own transaction, once per payment; the fee moves ``due → paid_online`` by one conditional
update, so a duplicate payment, one that lands after the leader took cash, or after the order was
refunded, is refused and goes back through the provider. Nothing here touches the order's status or its
stock. An order refunded after its fee was paid online gets the fee back too (``order_refunded``, from the
``groupbuy.count`` consumer of ``order.refunded``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.db import dialect_insert
from linli.core.events import Subjects, record_event
from linli.core.i18n import DEFAULT_LOCALE, Message
from linli.core.money import format_fen
from linli.core.runtime import Runtime
from linli.groupbuy import events, messages
from linli.groupbuy.errors import FeeNotPayable, NoDeliveryFee
from linli.groupbuy.models import DeliveryFee, FeeStatus, GroupOrder
from linli.identity.models import User
from linli.orders.models import Order, OrderStatus
from linli.orders.payments import checkout
from linli.orders.payments import service as payments
from linli.orders.payments.models import Payment, PaymentPurpose, Refund, RefundCause
from linli.orders.payments.providers.base import Scene
from linli.orders.payments.purposes import register_purpose


async def fee_of(session: AsyncSession, order_id: int, *, fresh: bool = False) -> DeliveryFee | None:
    return await session.get(DeliveryFee, order_id, populate_existing=fresh)


def _record(
    session: AsyncSession,
    type_: str,
    fee: DeliveryFee,
    user_id: int,
    *,
    now: datetime,
    actor_id: int | None = None,
    **fields: Any,
) -> None:
    """A fee's event: about its order and buyer, payload its order, amount and ``fields``."""
    record_event(
        session,
        type_,
        actor_id=actor_id,
        subjects=Subjects(user_id=user_id, order_id=fee.order_id),
        payload={"order_id": fee.order_id, "amount_fen": fee.amount_fen, **fields},
        occurred_at=now,
    )


async def _move(
    session: AsyncSession, order_id: int, frm: FeeStatus, to: FeeStatus, *, now: datetime, **values: Any
) -> DeliveryFee | None:
    """``frm → to`` by one conditional update (the database decides between racing movers); the fee as
    it is now, or None when it was not ``frm``."""
    moved = await session.execute(
        update(DeliveryFee)
        .where(DeliveryFee.order_id == order_id, DeliveryFee.status == frm.value)
        .values(status=to.value, updated_at=now, **values)
        .returning(DeliveryFee.order_id)
        .execution_options(synchronize_session=False)
    )
    if moved.scalar_one_or_none() is None:
        return None
    return await fee_of(session, order_id, fresh=True)


async def settle_fee(
    session: AsyncSession, group: GroupOrder, order: Order, amount_fen: int, *, collect: bool, now: datetime
) -> bool:
    """The order's fee at cutoff, written once (primary key): due when the session collects one and it
    is not zero (``groupbuy.fee_due``), else waived. True when it is due."""
    due = collect and amount_fen > 0
    insert = dialect_insert(session)
    inserted = (
        await session.execute(
            insert(DeliveryFee)
            .values(
                order_id=order.id,
                group_order_id=group.id,
                amount_fen=amount_fen,
                status=(FeeStatus.due if due else FeeStatus.waived).value,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=[DeliveryFee.order_id])
            .returning(DeliveryFee.order_id)
        )
    ).scalar_one_or_none()
    if inserted is not None and due:
        fee = await fee_of(session, order.id, fresh=True)
        assert fee is not None
        _record(session, events.FEE_DUE, fee, order.user_id, now=now, group_order_id=group.id)
    return due


async def collect_in_cash(session: AsyncSession, order: Order, *, actor: User, now: datetime) -> int:
    """At pickup, the leader takes a fee still due in cash (``due → collected``, once:
    ``groupbuy.fee_collected``); the amount taken, 0 when nothing was due (waived, paid online, …)."""
    fee = await _move(
        session,
        order.id,
        FeeStatus.due,
        FeeStatus.collected,
        now=now,
        collected_by=actor.id,
        collected_at=now,
    )
    if fee is None:
        return 0
    _record(session, events.FEE_COLLECTED, fee, order.user_id, actor_id=actor.id, now=now)
    return fee.amount_fen


def fee_text(fee: DeliveryFee, locale: str) -> str:
    """The fee's state as its payer reads it ("配送费 ¥4 待支付")."""
    return Message(f"groupbuy.fee.{fee.status}", {"amount": format_fen(fee.amount_fen)}).render(locale)


def is_payable(fee: DeliveryFee | None, order: Order) -> bool:
    """Payable online now: due, on an order still paid (not refunded, not picked up)."""
    return fee is not None and fee.status == FeeStatus.due.value and order.status == OrderStatus.paid.value


# --- paying online ---------------------------------------------------------------------------------


async def payable_fee(session: AsyncSession, order: Order) -> DeliveryFee:
    """The order's fee, if it can be paid online now (due, on an order still paid)."""
    fee = await fee_of(session, order.id, fresh=True)
    if fee is None:
        raise NoDeliveryFee("this order has no delivery fee", order_id=order.id)
    if fee.status != FeeStatus.due.value:
        raise FeeNotPayable(
            f"this delivery fee is {fee.status.replace('_', ' ')}", order_id=order.id, status=fee.status
        )
    if not is_payable(fee, order):
        raise FeeNotPayable(f"this order is {order.status.replace('_', ' ')}", order_id=order.id)
    return fee


async def start_fee_payment(
    session: AsyncSession,
    runtime: Runtime,
    order: Order,
    *,
    provider_name: str,
    scene: Scene | None = None,
    payer_openid: str | None = None,
    payer_ip: str | None = None,
) -> Payment:
    """Open (or resume) paying the order's due fee online: a ``delivery_fee`` payment of the fee's amount,
    with what the client needs to pay. The caller has checked the order is the neighbour's own."""
    fee = await payable_fee(session, order)
    description = Message("groupbuy.fee.description", {"id": order.id}).render(DEFAULT_LOCALE)
    return await checkout.start_payment(
        session,
        runtime,
        order,
        purpose=PaymentPurpose.delivery_fee,
        amount_fen=fee.amount_fen,
        description=description,
        provider_name=provider_name,
        scene=scene,
        payer_openid=payer_openid,
        payer_ip=payer_ip,
    )


class FeePurpose:
    """What the payments module calls for ``delivery_fee`` payments (``orders.payments.purposes``)."""

    async def paid(self, session: AsyncSession, payment: Payment, *, now: datetime) -> str:
        """The fee is paid online (``due → paid_online``, once: ``groupbuy.fee_paid``), for exactly its
        amount; otherwise ``FeeNotPayable`` and the money goes back."""
        fee = await fee_of(session, payment.order_id, fresh=True)
        if fee is None:
            raise NoDeliveryFee("this order has no delivery fee", order_id=payment.order_id)
        if fee.amount_fen != payment.amount_fen:
            raise FeeNotPayable(f"the fee is {fee.amount_fen} fen, not {payment.amount_fen}")
        moved = await _move(
            session,
            fee.order_id,
            FeeStatus.due,
            FeeStatus.paid_online,
            now=now,
            payment_id=payment.id,
            paid_at=now,
        )
        if moved is None:
            raise FeeNotPayable(f"the delivery fee is already {fee.status.replace('_', ' ')}")
        _record(
            session,
            events.FEE_PAID,
            moved,
            payment.user_id,
            now=now,
            payment_id=payment.id,
            provider=payment.provider,
        )
        await messages.tell(
            session,
            payment.user_id,
            payment.order_id,
            messages.fee_paid(payment.order_id, payment.amount_fen),
            key="groupbuy.fee_paid",
        )
        return "delivery fee paid"

    async def refund_settled(
        self, session: AsyncSession, refund: Refund, payment: Payment, *, succeeded: bool, now: datetime
    ) -> None:
        """A fee refunded with its order is ``refunded`` (or, if the provider refused, paid online again);
        money returned because the fee was not payable is only told to its payer."""
        if refund.cause != RefundCause.fee_refund.value:
            if succeeded:
                told = messages.fee_returned(payment.order_id, refund.amount_fen)
                key = f"groupbuy.fee_returned:{refund.id}"
                await messages.tell(session, payment.user_id, payment.order_id, told, key=key)
            return
        if succeeded:
            fee = await _move(
                session, payment.order_id, FeeStatus.refunding, FeeStatus.refunded, now=now, refunded_at=now
            )
            if fee is None:
                return
            _record(session, events.FEE_REFUNDED, fee, payment.user_id, now=now, refund_id=refund.id)
            told = messages.fee_refunded(payment.order_id, refund.amount_fen)
            await messages.tell(session, payment.user_id, payment.order_id, told, key="groupbuy.fee_refunded")
            return
        fee = await _move(session, payment.order_id, FeeStatus.refunding, FeeStatus.paid_online, now=now)
        if fee is not None:
            _record(session, events.FEE_REFUND_FAILED, fee, payment.user_id, now=now, refund_id=refund.id)


register_purpose(PaymentPurpose.delivery_fee, FeePurpose())


# --- refunds ---------------------------------------------------------------------------------------


async def order_refunded(session: AsyncSession, order: Order, *, now: datetime) -> None:
    """The order was refunded: a fee still due is no longer due (``cancelled``); one paid online goes back
    through the provider that took it (``refunding``, then ``refunded`` on the provider's word). A fee
    taken in cash stays ``collected`` (the leader holds that money). Idempotent."""
    cancelled = await _move(session, order.id, FeeStatus.due, FeeStatus.cancelled, now=now)
    if cancelled is not None:
        _record(session, events.FEE_CANCELLED, cancelled, order.user_id, now=now)
        return
    fee = await _move(session, order.id, FeeStatus.paid_online, FeeStatus.refunding, now=now)
    if fee is None or fee.payment_id is None:
        return
    payment = await session.get(Payment, fee.payment_id)
    assert payment is not None
    refund = await payments.start_refund(
        session,
        payment,
        amount_fen=fee.amount_fen,
        cause=RefundCause.fee_refund,
        reason=f"订单{order.id}退款,退回配送费",
    )
    _record(
        session,
        events.FEE_REFUND_STARTED,
        fee,
        order.user_id,
        now=now,
        payment_id=payment.id,
        refund_id=refund.id,
    )
