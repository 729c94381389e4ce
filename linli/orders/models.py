"""Orders, their lines, their status history, and what each neighbour holds of each lineup item."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from linli.core.clock import utcnow
from linli.core.db import Base, BigId, IdMixin, TimestampMixin


class OrderStatus(enum.StrEnum):
    pending_payment = "pending_payment"
    paid = "paid"
    completed = "completed"
    cancelled = "cancelled"
    expired = "expired"
    refund_requested = "refund_requested"
    refunded = "refunded"


class Fulfilment(enum.StrEnum):
    pickup = "pickup"  # at the neighbour's community pickup point
    store = "store"  # at one of the brand's stores


# Statuses whose units still count against the per-user limit (and sit in reserved or sold).
HOLDING = frozenset(
    {OrderStatus.pending_payment, OrderStatus.paid, OrderStatus.refund_requested, OrderStatus.completed}
)
# Statuses reached after a payment was recorded.
PAID_STATUSES = frozenset(
    {OrderStatus.paid, OrderStatus.refund_requested, OrderStatus.refunded, OrderStatus.completed}
)

_STATUS_SQL = ", ".join(f"'{s.value}'" for s in OrderStatus)


class Order(IdMixin, TimestampMixin, Base):
    __tablename__ = "orders"

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    session_id: Mapped[int] = mapped_column(BigId, ForeignKey("live_sessions.id"), index=True)
    # The buyer's community when the order was placed: group orders aggregate by it.
    community_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("communities.id"), index=True)
    fulfilment: Mapped[str] = mapped_column(String(8))
    pickup_point_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("pickup_points.id"))
    store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("stores.id"))
    contact_phone: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default=OrderStatus.pending_payment.value)
    subtotal_fen: Mapped[int] = mapped_column(Integer)
    discount_fen: Mapped[int] = mapped_column(Integer, default=0)
    total_fen: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    # What the creating request asked for, so a reused key with another body is told apart.
    request_hash: Mapped[str] = mapped_column(String(64), default="")
    reserved_until: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    payment_provider: Mapped[str | None] = mapped_column(String(32))
    payment_ref: Mapped[str | None] = mapped_column(String(128))
    cancelled_at: Mapped[datetime | None]
    expired_at: Mapped[datetime | None]
    refund_requested_at: Mapped[datetime | None]
    refunded_at: Mapped[datetime | None]
    refund_ref: Mapped[str | None] = mapped_column(String(128))
    completed_at: Mapped[datetime | None]

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", lazy="selectin", order_by="OrderLine.id", cascade="all, delete-orphan"
    )

    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        CheckConstraint(f"status IN ({_STATUS_SQL})", name="status_known"),
        CheckConstraint(
            "(fulfilment = 'pickup' AND pickup_point_id IS NOT NULL AND store_id IS NULL)"
            " OR (fulfilment = 'store' AND store_id IS NOT NULL AND pickup_point_id IS NULL)",
            name="fulfilment_target",
        ),
        CheckConstraint(
            "subtotal_fen >= 0 AND discount_fen >= 0 AND total_fen >= 0"
            " AND total_fen = subtotal_fen - discount_fen",
            name="totals_add_up",
        ),
        Index("ix_orders_status_created_at", "status", "created_at"),
    )

    @property
    def units(self) -> int:
        return sum(line.quantity for line in self.lines)


class OrderLine(IdMixin, Base):
    __tablename__ = "order_lines"

    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    lineup_item_id: Mapped[int] = mapped_column(BigId, ForeignKey("lineup_items.id"), index=True)
    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("products.id"))
    product_name: Mapped[str] = mapped_column(String(60))
    unit_price_fen: Mapped[int] = mapped_column(Integer)
    store_price_fen: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)

    order: Mapped[Order] = relationship(back_populates="lines")

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price_fen >= 0 AND store_price_fen >= 0", name="prices_not_negative"),
    )

    @property
    def amount_fen(self) -> int:
        return self.unit_price_fen * self.quantity


class OrderStatusChange(IdMixin, Base):
    """One step of an order's timeline; the first has no ``from_status``."""

    __tablename__ = "order_status_changes"

    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(String(200), default="")


class PurchaseCount(Base):
    """Units of one lineup item held by one neighbour's live orders (pending, paid, refund requested or
    completed): the per-user limit is a conditional update on this row."""

    __tablename__ = "purchase_counts"

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), primary_key=True)
    lineup_item_id: Mapped[int] = mapped_column(BigId, ForeignKey("lineup_items.id"), primary_key=True)
    units: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (CheckConstraint("units >= 0", name="units_not_negative"),)
