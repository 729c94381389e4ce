"""The payments verbs: open a payment, take a provider's notification, start and settle refunds.

Every change is a conditional update the database decides (a payment leaves ``created``/``failed`` for
``succeeded`` once; refunds never pass what was paid, also a CHECK constraint), so notifications are
safe in any order and any number: the first success for the right amount marks the order paid, every
later one is a duplicate, a late "failed" or "pending" is stale. Nothing here talks to a provider:
callers do that outside the transaction (the API before and after, jobs after committing)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.clock import utcnow
from linli.core.db import insert_unless_taken
from linli.core.errors import LinliError
from linli.core.events import Subjects, event_row, record_event
from linli.core.jobs import schedule_job
from linli.orders import errors as order_errors
from linli.orders import service as orders
from linli.orders.models import Order
from linli.orders.payments import events, purposes
from linli.orders.payments.errors import (
    NothingToRefund,
    NotificationAmountMismatch,
    PaymentNotFound,
    UnknownPaymentReference,
)
from linli.orders.payments.models import (
    NotificationOutcome,
    Payment,
    PaymentNotification,
    PaymentPurpose,
    PaymentStatus,
    Refund,
    RefundCause,
    RefundStatus,
)
from linli.orders.payments.providers.base import (
    Checkout,
    Notification,
    NotificationKind,
    PaymentOrder,
    PaymentProvider,
    RefundOrder,
    RefundResult,
    ReportedStatus,
    Scene,
)

log = logging.getLogger("linli.payments")

REFUND_JOB = "payments.refund"
OPEN_STATUSES = (PaymentStatus.created.value, PaymentStatus.failed.value)
# The open-payment index's own predicate, as SQL text: PostgreSQL infers a partial unique index for
# ON CONFLICT only from a predicate it can prove at planning time, and a prepared statement's generic
# plan (from its sixth run on a connection) knows no parameter values.
OPEN_INDEX_WHERE = text("status IN ('created', 'failed')")


def new_out_trade_no() -> str:
    """Our id for a payment at the provider: 32 characters at most, letters and digits."""
    return "LP" + utcnow().strftime("%Y%m%d%H%M%S") + secrets.token_hex(8)


def new_out_refund_no() -> str:
    return "LR" + utcnow().strftime("%Y%m%d%H%M%S") + secrets.token_hex(8)


# --- opening a payment --------------------------------------------------------------------------------


async def open_payment(
    session: AsyncSession,
    order: Order,
    *,
    provider: PaymentProvider,
    scene: Scene,
    purpose: PaymentPurpose = PaymentPurpose.order,
    amount_fen: int | None = None,
    out_trade_no: str | None = None,
    checkout: Checkout | None = None,
) -> Payment:
    """The order's open payment for ``purpose`` with ``provider`` in ``scene``, created (with
    ``payment.created``) if none: of the order's total, or of ``amount_fen`` for another purpose — with
    ``out_trade_no`` and ``checkout`` when the caller already has them (a provider whose checkout needs
    nobody else, ``local_checkout``).

    One open payment per order, purpose, provider and scene (a unique partial index), so retries and
    parallel taps reuse one ``out_trade_no`` and the provider sees one payment. A new one is one
    statement."""
    new = NewPayment(
        order_id=order.id,
        user_id=order.user_id,
        session_id=order.session_id,
        amount_fen=order.total_fen if amount_fen is None else amount_fen,
        provider=provider.name,
        scene=scene,
        out_trade_no=out_trade_no or new_out_trade_no(),
        checkout=checkout,
        purpose=purpose,
    )
    payment = await insert_unless_taken(
        session,
        Payment,
        new.row(),
        key=["order_id", "purpose", "provider", "scene"],
        where=OPEN_INDEX_WHERE,
    )
    if payment is None:
        existing = await _open_payment_of(session, order.id, provider.name, scene, purpose)
        if existing is None:
            raise RuntimeError(f"order {order.id} has an open {provider.name} payment that cannot be read")
        return existing
    record_event(session, events.PAYMENT_CREATED, **_created(payment, order.session_id))
    return payment


def _created(payment: Payment, session_id: int | None) -> dict[str, Any]:
    """``payment.created``'s actor, subjects and payload."""
    return {
        "actor_id": payment.user_id,
        "subjects": Subjects(user_id=payment.user_id, order_id=payment.order_id, session_id=session_id),
        "payload": {
            "payment_id": payment.id,
            "purpose": payment.purpose,
            "provider": payment.provider,
            "scene": payment.scene,
            "out_trade_no": payment.out_trade_no,
            "amount_fen": payment.amount_fen,
        },
    }


@dataclass(frozen=True, slots=True)
class NewPayment:
    """A payment about to be opened: its row's values (``row``), and the session its event names."""

    order_id: int
    user_id: int
    session_id: int
    amount_fen: int
    provider: str
    scene: Scene
    out_trade_no: str
    # In hand when the provider's checkout needs nobody else (``local_checkout``); else attached later.
    checkout: Checkout | None = None
    purpose: PaymentPurpose = PaymentPurpose.order

    def row(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "user_id": self.user_id,
            "purpose": self.purpose.value,
            "provider": self.provider,
            "scene": self.scene.value,
            "out_trade_no": self.out_trade_no,
            "amount_fen": self.amount_fen,
            "status": PaymentStatus.created.value,
            "checkout": self.checkout.as_dict() if self.checkout is not None else None,
            "refunded_fen": 0,
        }


async def insert_new_payments(
    session: AsyncSession, new: list[NewPayment], *, now: datetime
) -> tuple[list[Payment], list[dict[str, Any]]]:
    """``open_payment`` for many orders placed in this transaction — none can have a payment yet, so
    there is nothing to reuse: one INSERT for all of them, the payments returned in ``new``'s order,
    and their ``payment.created`` event rows for the caller to append with its own."""
    if not new:
        return [], []
    rows = [{**n.row(), "created_at": now, "updated_at": now} for n in new]
    inserted = await session.scalars(insert(Payment).returning(Payment, sort_by_parameter_order=True), rows)
    payments = list(inserted.all())
    created = [
        event_row(events.PAYMENT_CREATED, **_created(payment, n.session_id), occurred_at=now)
        for payment, n in zip(payments, new, strict=True)
    ]
    return payments, created


async def _open_payment_of(
    session: AsyncSession,
    order_id: int,
    provider: str,
    scene: Scene,
    purpose: PaymentPurpose = PaymentPurpose.order,
) -> Payment | None:
    query = select(Payment).where(
        Payment.order_id == order_id,
        Payment.purpose == purpose.value,
        Payment.provider == provider,
        Payment.scene == scene.value,
        Payment.status.in_(OPEN_STATUSES),
    )
    return await session.scalar(query.order_by(Payment.id.desc()).limit(1))


def payment_order(
    out_trade_no: str,
    scene: Scene,
    order: Order,
    *,
    notify_url: str,
    payer_openid: str | None = None,
    payer_ip: str | None = None,
) -> PaymentOrder:
    """What the provider is told about a payment of ``order`` (plain values: it goes outside the
    transaction); the amount is the order's total."""
    return PaymentOrder(
        out_trade_no=out_trade_no,
        amount_fen=order.total_fen,
        description=order_description([line.product_name for line in order.lines], order.id),
        scene=scene,
        notify_url=notify_url,
        expires_at=order.reserved_until,
        payer_openid=payer_openid,
        payer_ip=payer_ip,
    )


def order_description(product_names: list[str], order_id: int) -> str:
    """How a payment names its order to the payer: 春季限定青团 · 订单42."""
    names = product_names
    what = names[0] if len(names) == 1 else f"{names[0]} 等{len(names)}件" if names else "邻里订单"
    return f"{what} · 订单{order_id}"


async def attach_checkout(session: AsyncSession, payment_id: int, checkout: Checkout) -> Payment:
    """Keep what the client needs to pay, so a retry of the same payment returns it again."""
    payment = await session.get(Payment, payment_id)
    if payment is None:
        raise PaymentNotFound("no such payment")
    payment.checkout = checkout.as_dict()
    await session.flush()
    return payment


# Built once: the cashier's every tap reads it.
_PAYMENT_BY_TRADE_NO = select(Payment).where(Payment.out_trade_no == bindparam("otn"))


async def get_payment_for_user(session: AsyncSession, out_trade_no: str, *, user_id: int) -> Payment:
    payment = await session.scalar(_PAYMENT_BY_TRADE_NO, {"otn": out_trade_no})
    if payment is None or payment.user_id != user_id:
        raise PaymentNotFound("no such payment")
    return payment


async def payments_of_order(session: AsyncSession, order_id: int) -> list[Payment]:
    query = select(Payment).where(Payment.order_id == order_id).order_by(Payment.id)
    return list((await session.scalars(query)).all())


# --- notifications ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Receipt:
    """What became of a notification, and the error to answer with when the sender must not stop."""

    outcome: NotificationOutcome
    error: LinliError | None = None
    duplicate: bool = False


async def receive_notification(
    session: AsyncSession,
    provider: PaymentProvider,
    *,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime | None = None,
    refund_max_attempts: int = 12,
) -> Receipt:
    """Verify, record and apply one notification; flushes, the caller commits before acknowledging.

    Verification comes first: a notification whose signature, key or timestamp fails changes nothing but
    its own rejection record (which never takes a notification id). A verified one is recorded under its
    id (the unique key makes a repeat a duplicate, answered as the first was), then applied."""
    now = now or utcnow()
    try:
        note = provider.verify_notification(headers, body, now=now)
    except LinliError as exc:
        claimed = provider.claimed_id(headers, body)
        session.add(
            PaymentNotification(
                provider=provider.name,
                claimed_id=claimed,
                received_at=now,
                verified=False,
                outcome=NotificationOutcome.rejected.value,
                detail=exc.message[:500],
            )
        )
        record_event(
            session,
            events.NOTIFICATION_REJECTED,
            payload={
                "provider": provider.name,
                "reason": exc.name,
                "detail": exc.message,
                "claimed_id": claimed,
            },
        )
        log.warning("rejected a %s notification (%s): %s", provider.name, exc.name, exc.message)
        await session.flush()
        return Receipt(NotificationOutcome.rejected, exc)
    return await _take(session, provider, note, now=now, refund_max_attempts=refund_max_attempts)


async def take_query_answer(
    session: AsyncSession,
    provider: PaymentProvider,
    answer: Notification,
    *,
    now: datetime | None = None,
    refund_max_attempts: int = 12,
) -> Receipt:
    """What the processor answered when asked about a payment (``PaymentProvider.query_payment``),
    taken as a verified notification of it: recorded under its own id (asking again is a duplicate of
    the first answer), then applied by the same conditional updates — so the notification of the same
    payment, before or after, takes the money once. "Not paid yet" changes and records nothing."""
    if answer.status is ReportedStatus.pending:
        return Receipt(NotificationOutcome.stale)
    return await _take(
        session, provider, answer, now=now or utcnow(), refund_max_attempts=refund_max_attempts
    )


async def _take(
    session: AsyncSession,
    provider: PaymentProvider,
    note: Notification,
    *,
    now: datetime,
    refund_max_attempts: int,
) -> Receipt:
    """Record a verified notification under its id, then apply it (``receive_notification``)."""
    # Recorded under its id in one statement: the unique key makes a repeat a duplicate (on PostgreSQL a
    # concurrent copy waits here for the first to commit), answered as the first was.
    record = await insert_unless_taken(
        session,
        PaymentNotification,
        {
            "provider": provider.name,
            "notification_id": note.notification_id[:64],
            "claimed_id": note.notification_id[:64],
            "received_at": now,
            "verified": True,
            "outcome": NotificationOutcome.unknown.value,
            "kind": note.kind.value,
            "status": note.status.value,
            "out_trade_no": note.out_trade_no[:32],
            "provider_ref": (note.refund_ref or note.provider_ref or "")[:64] or None,
            "amount_fen": note.amount_fen,
            "detail": "",
        },
        key=["provider", "notification_id"],
    )
    if record is None:
        first = await session.scalar(
            _RECORDED, {"via": provider.name, "notification_id": note.notification_id[:64]}
        )
        if first is None:
            raise RuntimeError(f"notification {note.notification_id!r} conflicted but is not recorded")
        outcome = NotificationOutcome(first.outcome)
        return Receipt(outcome, _error_for(outcome, first.detail), duplicate=True)

    if note.kind is NotificationKind.refund:
        outcome, detail = await _apply_refund_notification(session, provider, note, now)
    else:
        outcome, detail = await _apply_payment_notification(
            session, provider, note, record, now, refund_max_attempts=refund_max_attempts
        )
    record.outcome = outcome.value
    record.detail = detail[:500]
    await session.flush()
    return Receipt(outcome, _error_for(outcome, detail))


def _error_for(outcome: NotificationOutcome, detail: str) -> LinliError | None:
    if outcome is NotificationOutcome.amount_mismatch:
        return NotificationAmountMismatch(detail or "the amount does not match the payment")
    if outcome is NotificationOutcome.unknown:
        return UnknownPaymentReference(detail or "no such payment or refund here")
    return None


# A notification's first record (a repeat is answered as it was), and the payment a provider's
# notification is about: only that provider's (``_PAYMENT_BY_TRADE_NO`` is the owner's lookup).
_RECORDED = select(PaymentNotification).where(
    PaymentNotification.provider == bindparam("via"),
    PaymentNotification.notification_id == bindparam("notification_id"),
)
_PROVIDERS_PAYMENT = select(Payment).where(
    Payment.out_trade_no == bindparam("otn"), Payment.provider == bindparam("via")
)
# The open payment of that amount takes the money, in one statement built once (the flash sale runs it for
# every paid order; building it afresh cost as much CPU as running it).
_TAKE_MONEY = (
    update(Payment)
    .where(
        Payment.out_trade_no == bindparam("otn"),
        Payment.provider == bindparam("via"),
        Payment.status.in_(OPEN_STATUSES),
        Payment.amount_fen == bindparam("amount"),
    )
    .values(
        status=PaymentStatus.succeeded.value,
        provider_ref=bindparam("ref"),
        succeeded_at=bindparam("at"),
        updated_at=bindparam("at"),
    )
    .returning(Payment)
    .execution_options(synchronize_session=False, populate_existing=True)
)


async def _apply_payment_notification(
    session: AsyncSession,
    provider: PaymentProvider,
    note: Notification,
    record: PaymentNotification,
    now: datetime,
    *,
    refund_max_attempts: int,
) -> tuple[NotificationOutcome, str]:
    if note.status is ReportedStatus.succeeded:
        # The usual case in one statement: the open payment of that amount takes the money. Anything
        # else (unknown, already paid, another amount) finds no row and is told apart below.
        taken = await session.scalar(
            _TAKE_MONEY,
            {
                "otn": note.out_trade_no,
                "via": provider.name,
                "amount": note.amount_fen,
                "ref": note.provider_ref,
                "at": now,
            },
        )
        if taken is not None:
            record.payment_id = taken.id
            return await _payment_succeeded(
                session, taken, record, now=now, refund_max_attempts=refund_max_attempts
            )
    payment = await session.scalar(_PROVIDERS_PAYMENT, {"otn": note.out_trade_no, "via": provider.name})
    if payment is None:
        return NotificationOutcome.unknown, f"no {provider.name} payment {note.out_trade_no[:32]!r}"
    record.payment_id = payment.id
    subjects = Subjects(user_id=payment.user_id, order_id=payment.order_id)

    if note.status is ReportedStatus.pending:
        return NotificationOutcome.stale, f"reported pending while the payment is {payment.status}"

    if note.status is ReportedStatus.failed:
        failed = await session.execute(
            update(Payment)
            .where(Payment.id == payment.id, Payment.status == PaymentStatus.created.value)
            .values(status=PaymentStatus.failed.value, failed_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if not failed.rowcount:  # type: ignore[attr-defined]
            return NotificationOutcome.stale, f"reported failed while the payment is {payment.status}"
        record_event(
            session,
            events.PAYMENT_FAILED,
            subjects=subjects,
            payload={
                "payment_id": payment.id,
                "provider": payment.provider,
                "out_trade_no": payment.out_trade_no,
            },
        )
        await session.refresh(payment)
        return NotificationOutcome.applied, "payment failed"

    if note.amount_fen != payment.amount_fen:
        detail = f"paid {note.amount_fen} fen for a payment of {payment.amount_fen} fen"
        log.error(
            "amount mismatch on %s payment %s (%s): %s",
            provider.name,
            payment.out_trade_no,
            note.provider_ref,
            detail,
        )
        record_event(
            session,
            events.NOTIFICATION_REJECTED,
            subjects=subjects,
            payload={
                "provider": provider.name,
                "reason": "AmountMismatch",
                "detail": detail,
                "payment_id": payment.id,
                "notification_id": note.notification_id,
                "amount_fen": note.amount_fen,
                "expected_fen": payment.amount_fen,
            },
        )
        return NotificationOutcome.amount_mismatch, detail

    # Open and of the right amount, it took the money above; here it is paid already (or was paid in a
    # moment between that update and this read: the same answer).
    if payment.provider_ref and note.provider_ref and payment.provider_ref != note.provider_ref:
        log.error(
            "%s reports a second transaction %s for payment %s (kept %s)",
            provider.name,
            note.provider_ref,
            payment.out_trade_no,
            payment.provider_ref,
        )
    return NotificationOutcome.duplicate, f"the payment is already {payment.status}"


async def _payment_succeeded(
    session: AsyncSession,
    payment: Payment,
    record: PaymentNotification,
    *,
    now: datetime,
    refund_max_attempts: int,
) -> tuple[NotificationOutcome, str]:
    """The payment has just taken the money: ``payment.succeeded``, then what it pays for."""
    # Another purpose's handler must be here to take it (else: 503, the transaction — the update that
    # took the money included — rolls back, and the processor retries).
    handler = purposes.handler_for(payment.purpose) if payment.purpose != PaymentPurpose.order else None
    record_event(
        session,
        events.PAYMENT_SUCCEEDED,
        subjects=Subjects(user_id=payment.user_id, order_id=payment.order_id),
        payload={
            "payment_id": payment.id,
            "provider": payment.provider,
            "out_trade_no": payment.out_trade_no,
            "provider_ref": payment.provider_ref,
            "amount_fen": payment.amount_fen,
            "purpose": payment.purpose,
        },
    )
    if handler is not None:
        return await _settle_purpose(
            session, handler, payment, now=now, refund_max_attempts=refund_max_attempts
        )
    return await _settle_order(session, payment, record, now=now, refund_max_attempts=refund_max_attempts)


async def _settle_purpose(
    session: AsyncSession,
    handler: purposes.PurposeHandler,
    payment: Payment,
    *,
    now: datetime,
    refund_max_attempts: int,
) -> tuple[NotificationOutcome, str]:
    """Hand a payment of another purpose to its handler; the order is never touched. Money the handler
    refuses (nothing is due any more, it was paid another way) goes back through the provider."""
    try:
        async with session.begin_nested():
            detail = await handler.paid(session, payment, now=now)
        return NotificationOutcome.applied, detail
    except LinliError as exc:
        why = exc.message
    log.warning(
        "%s payment %s cannot be taken (%s): refunding it", payment.purpose, payment.out_trade_no, why
    )
    await start_refund(
        session,
        payment,
        amount_fen=payment.amount_fen,
        cause=RefundCause.not_payable,
        reason="无需支付,自动退款",
        max_attempts=refund_max_attempts,
    )
    return NotificationOutcome.refunding, why


async def _settle_order(
    session: AsyncSession,
    payment: Payment,
    record: PaymentNotification,
    *,
    now: datetime,
    refund_max_attempts: int,
) -> tuple[NotificationOutcome, str]:
    """Mark the order paid; money the order cannot take (it expired, was cancelled, was paid by another
    payment) goes back through the provider automatically.

    The flash sale's hot path: ``mark_paid`` moves the item's reserved units to sold last, and that row
    stays locked until COMMIT, so nothing may follow it — the notification's record takes its outcome
    beforehand (``mark_paid`` flushes it), and no savepoint is wrapped around the call (it raises before
    writing anything, by its contract), which would cost a RELEASE after the lock was taken."""
    record.outcome, record.detail = NotificationOutcome.applied.value, "order paid"
    try:
        await orders.mark_paid(
            session,
            payment.order_id,
            amount_fen=payment.amount_fen,
            provider=payment.provider,
            provider_ref=payment.provider_ref or payment.out_trade_no,
        )
        return NotificationOutcome.applied, "order paid"
    except order_errors.PaidAfterExpiry as exc:
        # Cancelled by its owner (a PaidAfterExpiry too), or expired with its units gone.
        cause = (
            RefundCause.not_payable
            if isinstance(exc, order_errors.PaidAfterCancel)
            else RefundCause.paid_after_expiry
        )
        why = exc.message
    except (
        order_errors.AlreadyPaid,
        order_errors.AmountMismatch,
        order_errors.InvalidOrderTransition,
        order_errors.OrderNotFound,
    ) as exc:
        cause, why = RefundCause.not_payable, exc.message
    log.warning(
        "payment %s cannot pay order %s (%s): refunding it", payment.out_trade_no, payment.order_id, why
    )
    await start_refund(
        session,
        payment,
        amount_fen=payment.amount_fen,
        cause=cause,
        reason="订单已失效,自动退款" if cause is RefundCause.paid_after_expiry else "订单无法收款,自动退款",
        max_attempts=refund_max_attempts,
    )
    return NotificationOutcome.refunding, why


async def _apply_refund_notification(
    session: AsyncSession, provider: PaymentProvider, note: Notification, now: datetime
) -> tuple[NotificationOutcome, str]:
    refund = await session.scalar(
        select(Refund)
        .join(Payment, Payment.id == Refund.payment_id)
        .where(Refund.out_refund_no == (note.out_refund_no or ""), Payment.provider == provider.name)
    )
    if refund is None:
        return NotificationOutcome.unknown, f"no {provider.name} refund {str(note.out_refund_no)[:64]!r}"
    if note.amount_fen is not None and note.amount_fen != refund.amount_fen:
        detail = f"refunded {note.amount_fen} fen for a refund of {refund.amount_fen} fen"
        log.error("refund %s: %s", refund.out_refund_no, detail)
        return NotificationOutcome.amount_mismatch, detail
    changed = await settle_refund(
        session,
        refund.id,
        RefundResult(status=note.status, refund_ref=note.refund_ref, raw=note.raw),
        now=now,
    )
    if changed:
        return NotificationOutcome.applied, f"refund {note.status.value}"
    return NotificationOutcome.duplicate, f"the refund is already {refund.status}"


# --- refunds -----------------------------------------------------------------------------------------------


async def start_refund(
    session: AsyncSession,
    payment: Payment,
    *,
    amount_fen: int,
    cause: RefundCause,
    reason: str = "",
    actor_id: int | None = None,
    max_attempts: int = 12,
) -> Refund:
    """Record a refund of ``amount_fen`` of ``payment`` (``refund.requested``) and schedule the durable job
    that asks the provider, after this transaction commits.

    The amount is taken from what is left to refund by a conditional update (and a CHECK constraint):
    two refunds together never return more than was paid."""
    if amount_fen <= 0:
        raise NothingToRefund("a refund needs a positive amount")
    taken = await session.execute(
        update(Payment)
        .where(
            Payment.id == payment.id,
            Payment.status.in_((PaymentStatus.succeeded.value, PaymentStatus.refunded.value)),
            Payment.refunded_fen + amount_fen <= Payment.amount_fen,
        )
        .values(refunded_fen=Payment.refunded_fen + amount_fen, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not taken.rowcount:  # type: ignore[attr-defined]
        raise NothingToRefund("this payment has nothing (or not that much) left to refund")
    await session.refresh(payment)
    refund = Refund(
        payment_id=payment.id,
        order_id=payment.order_id,
        out_refund_no=new_out_refund_no(),
        amount_fen=amount_fen,
        cause=cause.value,
        reason=reason[:80],
        status=RefundStatus.requested.value,
        actor_id=actor_id,
    )
    session.add(refund)
    await session.flush()
    record_event(
        session,
        events.REFUND_REQUESTED,
        actor_id=actor_id,
        subjects=Subjects(user_id=payment.user_id, order_id=payment.order_id),
        payload={
            "refund_id": refund.id,
            "payment_id": payment.id,
            "provider": payment.provider,
            "out_refund_no": refund.out_refund_no,
            "amount_fen": amount_fen,
            "cause": cause.value,
        },
    )
    await schedule_job(
        session,
        REFUND_JOB,
        utcnow(),
        {"refund_id": refund.id},
        key=f"{REFUND_JOB}:{refund.out_refund_no}",
        max_attempts=max_attempts,
    )
    return refund


async def refund_order_payment(
    session: AsyncSession,
    order_id: int,
    *,
    amount_fen: int | None = None,
    reason: str = "",
    actor_id: int | None = None,
    max_attempts: int = 12,
) -> Refund:
    """Refund an order through the provider that took its money: its succeeded payment, all of what is
    left of it unless ``amount_fen`` says less. When the provider confirms, the order is marked refunded."""
    payment = await session.scalar(
        select(Payment)
        .where(
            Payment.order_id == order_id,
            Payment.purpose == PaymentPurpose.order.value,
            Payment.status.in_((PaymentStatus.succeeded.value, PaymentStatus.refunded.value)),
            Payment.refunded_fen < Payment.amount_fen,
        )
        .order_by(Payment.succeeded_at, Payment.id)
        .limit(1)
    )
    if payment is None:
        raise NothingToRefund("this order has no payment left to refund")
    return await start_refund(
        session,
        payment,
        amount_fen=payment.amount_fen - payment.refunded_fen if amount_fen is None else amount_fen,
        cause=RefundCause.order_refund,
        reason=reason,
        actor_id=actor_id,
        max_attempts=max_attempts,
    )


async def ensure_order_refund(
    session: AsyncSession, order_id: int, *, actor_id: int | None = None, reason: str = ""
) -> bool:
    """For an approved order refund: True when money is (now) on its way back through a provider — a
    refund already under way counts, so approving twice never refunds twice — False when the order has
    no provider payment left to refund."""
    under_way = await session.scalar(
        select(Refund.id)
        .where(
            Refund.order_id == order_id,
            Refund.cause == RefundCause.order_refund.value,
            Refund.status.in_((RefundStatus.requested.value, RefundStatus.processing.value)),
        )
        .limit(1)
    )
    if under_way is not None:
        return True
    try:
        await refund_order_payment(session, order_id, reason=reason, actor_id=actor_id)
    except NothingToRefund:
        return False
    return True


def refund_order_for_provider(refund: Refund, payment: Payment, *, notify_url: str) -> RefundOrder:
    return RefundOrder(
        out_trade_no=payment.out_trade_no,
        provider_ref=payment.provider_ref,
        out_refund_no=refund.out_refund_no,
        amount_fen=refund.amount_fen,
        total_fen=payment.amount_fen,
        reason=refund.reason,
        notify_url=notify_url,
    )


async def settle_refund(
    session: AsyncSession, refund_id: int, result: RefundResult, *, now: datetime | None = None
) -> bool:
    """Apply the provider's word on a refund; returns whether it changed anything.

    Succeeded (once: ``refund.succeeded``; the payment becomes refunded when nothing is left, and an
    operator's order refund marks the order refunded); pending (accepted, the result comes later);
    failed (the amount is free to refund again; ``refund.failed``)."""
    now = now or utcnow()
    refund = await session.get(Refund, refund_id)
    if refund is None:
        raise PaymentNotFound("no such refund")
    if result.status is ReportedStatus.pending:
        moved = await session.execute(
            update(Refund)
            .where(Refund.id == refund_id, Refund.status == RefundStatus.requested.value)
            .values(status=RefundStatus.processing.value, provider_ref=result.refund_ref, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        await session.refresh(refund)
        return bool(moved.rowcount)  # type: ignore[attr-defined]
    open_statuses = (RefundStatus.requested.value, RefundStatus.processing.value)
    if result.status is ReportedStatus.failed:
        moved = await session.execute(
            update(Refund)
            .where(Refund.id == refund_id, Refund.status.in_(open_statuses))
            .values(status=RefundStatus.failed.value, last_error=str(result.raw)[:500], updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if not moved.rowcount:  # type: ignore[attr-defined]
            return False
        await session.execute(
            update(Payment)
            .where(Payment.id == refund.payment_id)
            .values(refunded_fen=Payment.refunded_fen - refund.amount_fen, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        await session.refresh(refund)
        payment = await _payment(session, refund.payment_id)
        log.error(
            "refund %s of payment %s failed: %s", refund.out_refund_no, payment.out_trade_no, result.raw
        )
        record_event(
            session,
            events.REFUND_FAILED,
            subjects=Subjects(user_id=payment.user_id, order_id=refund.order_id),
            payload={"refund_id": refund.id, "out_refund_no": refund.out_refund_no, "cause": refund.cause},
        )
        if payment.purpose != PaymentPurpose.order:
            await purposes.handler_for(payment.purpose).refund_settled(
                session, refund, payment, succeeded=False, now=now
            )
        return True
    moved = await session.execute(
        update(Refund)
        .where(Refund.id == refund_id, Refund.status.in_(open_statuses))
        .values(
            status=RefundStatus.succeeded.value,
            provider_ref=result.refund_ref or refund.provider_ref,
            succeeded_at=now,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if not moved.rowcount:  # type: ignore[attr-defined]
        return False
    await session.refresh(refund)
    payment = await _payment(session, refund.payment_id)
    refunded = await session.scalar(
        select(func.coalesce(func.sum(Refund.amount_fen), 0)).where(
            Refund.payment_id == payment.id, Refund.status == RefundStatus.succeeded.value
        )
    )
    if refunded is not None and refunded >= payment.amount_fen:
        payment.status = PaymentStatus.refunded.value
    record_event(
        session,
        events.REFUND_SUCCEEDED,
        subjects=Subjects(user_id=payment.user_id, order_id=refund.order_id),
        payload={
            "refund_id": refund.id,
            "payment_id": payment.id,
            "provider": payment.provider,
            "out_refund_no": refund.out_refund_no,
            "provider_ref": refund.provider_ref,
            "amount_fen": refund.amount_fen,
            "cause": refund.cause,
        },
    )
    if payment.purpose != PaymentPurpose.order:
        await purposes.handler_for(payment.purpose).refund_settled(
            session, refund, payment, succeeded=True, now=now
        )
    elif refund.cause == RefundCause.order_refund.value:
        await orders.mark_refunded(
            session, refund.order_id, provider_ref=refund.provider_ref or refund.out_refund_no
        )
    await session.flush()
    return True


async def _payment(session: AsyncSession, payment_id: int) -> Payment:
    payment = await session.get(Payment, payment_id)
    if payment is None:
        raise PaymentNotFound("no such payment")
    return payment
