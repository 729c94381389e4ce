"""Payments taken through a provider, the notifications providers send about them, and refunds."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from linli.core.clock import utcnow
from linli.core.db import Base, BigId, IdMixin, TimestampMixin


class PaymentStatus(enum.StrEnum):
    created = "created"
    succeeded = "succeeded"
    failed = "failed"
    refunded = "refunded"


class PaymentPurpose(enum.StrEnum):
    """What a payment pays for. Only ``order`` moves the order (paid, stock sold); any other purpose is
    settled by the handler a higher domain registers for it (``purposes.register_purpose``)."""

    order = "order"  # the order's own total
    delivery_fee = "delivery_fee"  # a below-threshold group's delivery fee, paid after the order


class RefundStatus(enum.StrEnum):
    requested = "requested"  # stored, the provider not yet told (or its answer not yet in)
    processing = "processing"  # the provider accepted it; its result comes by notification
    succeeded = "succeeded"
    failed = "failed"


class RefundCause(enum.StrEnum):
    order_refund = "order_refund"  # an operator approved the order's refund
    paid_after_expiry = "paid_after_expiry"  # the money came after the order had expired
    not_payable = "not_payable"  # the order could not take this payment (cancelled, paid by another)
    fee_refund = "fee_refund"  # a payment of another purpose returned along with its order's refund


class NotificationOutcome(enum.StrEnum):
    rejected = "rejected"  # signature, timestamp or format failed: nothing else was looked at
    applied = "applied"  # moved a payment or refund
    duplicate = "duplicate"  # the same notification again, or a state already reached
    stale = "stale"  # an earlier state arriving after a later one: nothing changes
    refunding = "refunding"  # the money arrived but the order cannot take it: refund started
    amount_mismatch = "amount_mismatch"
    unknown = "unknown"  # about a payment or refund we never created


def _known(values: type[enum.StrEnum]) -> str:
    return ", ".join(f"'{v.value}'" for v in values)


class Payment(IdMixin, TimestampMixin, Base):
    """One attempt to pay an order (or something tied to it: ``purpose``) through one provider;
    ``out_trade_no`` is our id at the provider."""

    __tablename__ = "payments"

    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"), index=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(
        String(16), default=PaymentPurpose.order.value, server_default=PaymentPurpose.order.value
    )
    provider: Mapped[str] = mapped_column(String(16))
    # How the client pays with this provider (sandbox: cashier; WeChat: jsapi or h5): one open
    # payment per order, provider and scene, because a provider fixes the scene of an out_trade_no.
    scene: Mapped[str] = mapped_column(String(16))
    out_trade_no: Mapped[str] = mapped_column(String(32), unique=True)
    provider_ref: Mapped[str | None] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=PaymentStatus.created.value)
    # What the client needs to pay (a cashier URL, JSAPI parameters, an H5 URL), once the provider gave it.
    checkout: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    refunded_fen: Mapped[int] = mapped_column(Integer, default=0)
    succeeded_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("provider", "provider_ref"),
        # One open payment per order, purpose, provider and scene: parallel taps on "pay" share one
        # out_trade_no (and paying an order's delivery fee never reuses the order's own payment).
        Index(
            "uq_payments_open_per_scene",
            "order_id",
            "purpose",
            "provider",
            "scene",
            unique=True,
            sqlite_where=text("status IN ('created', 'failed')"),
            postgresql_where=text("status IN ('created', 'failed')"),
        ),
        CheckConstraint(f"status IN ({_known(PaymentStatus)})", name="status_known"),
        CheckConstraint(f"purpose IN ({_known(PaymentPurpose)})", name="purpose_known"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint("refunded_fen >= 0 AND refunded_fen <= amount_fen", name="refund_within_amount"),
    )


class PaymentNotification(IdMixin, Base):
    """Every notification a provider sent us, verified or not.

    ``notification_id`` is set only once the signature held: the unique key dedupes real notifications,
    and a forged one can never take the id of a real one still to come (``claimed_id`` keeps what it
    said)."""

    __tablename__ = "payment_notifications"

    provider: Mapped[str] = mapped_column(String(16))
    notification_id: Mapped[str | None] = mapped_column(String(64))
    claimed_id: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str | None] = mapped_column(String(16))
    out_trade_no: Mapped[str | None] = mapped_column(String(32), index=True)
    provider_ref: Mapped[str | None] = mapped_column(String(64))
    amount_fen: Mapped[int | None] = mapped_column(Integer)
    payment_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("payments.id"), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        UniqueConstraint("provider", "notification_id"),
        CheckConstraint(f"outcome IN ({_known(NotificationOutcome)})", name="outcome_known"),
        CheckConstraint("verified OR notification_id IS NULL", name="only_verified_dedupe"),
    )


class Refund(IdMixin, TimestampMixin, Base):
    """Money going back through the provider that took it; ``out_refund_no`` is our id at the provider,
    which refunds one ``out_refund_no`` at most once however often it is asked."""

    __tablename__ = "refunds"

    payment_id: Mapped[int] = mapped_column(BigId, ForeignKey("payments.id"), index=True)
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"), index=True)
    out_refund_no: Mapped[str] = mapped_column(String(64), unique=True)
    amount_fen: Mapped[int] = mapped_column(Integer)
    cause: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(80), default="")
    status: Mapped[str] = mapped_column(String(16), default=RefundStatus.requested.value)
    provider_ref: Mapped[str | None] = mapped_column(String(64))
    actor_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    succeeded_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(f"status IN ({_known(RefundStatus)})", name="status_known"),
        CheckConstraint(f"cause IN ({_known(RefundCause)})", name="cause_known"),
        CheckConstraint("amount_fen > 0", name="amount_positive"),
    )
