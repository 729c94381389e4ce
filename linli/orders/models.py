"""Orders, their lines, their status history, and what each neighbour holds of each lineup item."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
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
    # The coupon applied (``discount_fen`` is what it took off); locked while unpaid, used once paid. No
    # foreign key: SQLite cannot add one to a filled table without rebuilding it (coupons.order_id has one).
    coupon_id: Mapped[int | None] = mapped_column(BigId, index=True)
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


class CouponKind(enum.StrEnum):
    fixed = "fixed"  # ``amount_fen`` off
    percent = "percent"  # ``percent`` % off the subtotal
    free_item = "free_item"  # one unit of ``free_product_id`` free (the lottery's free tasting)


class CouponStatus(enum.StrEnum):
    available = "available"
    locked = "locked"  # applied to an unpaid order
    used = "used"
    expired = "expired"
    void = "void"  # withdrawn by an operator


_KIND_SQL = ", ".join(f"'{k.value}'" for k in CouponKind)
_COUPON_STATUS_SQL = ", ".join(f"'{s.value}'" for s in CouponStatus)
_TERMS_SQL = (
    "(kind = 'fixed' AND amount_fen > 0)"
    " OR (kind = 'percent' AND percent BETWEEN 1 AND 99)"
    " OR (kind = 'free_item' AND free_product_id IS NOT NULL)"
)


class CouponTemplate(IdMixin, TimestampMixin, Base):
    """An operator's coupon design; issued coupons copy its terms, so editing it later changes only
    coupons issued afterwards."""

    __tablename__ = "coupon_templates"

    name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(12))
    amount_fen: Mapped[int | None] = mapped_column(Integer)
    percent: Mapped[int | None] = mapped_column(Integer)
    free_product_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("products.id"))
    min_spend_fen: Mapped[int] = mapped_column(Integer, default=0)
    valid_from: Mapped[datetime | None]
    valid_until: Mapped[datetime | None]
    valid_days: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))

    __table_args__ = (
        CheckConstraint(f"kind IN ({_KIND_SQL})", name="kind_known"),
        CheckConstraint(_TERMS_SQL, name="terms_match_kind"),
        CheckConstraint("min_spend_fen >= 0", name="min_spend_not_negative"),
        CheckConstraint("valid_until IS NOT NULL OR valid_days > 0", name="validity_given"),
    )


class Coupon(IdMixin, TimestampMixin, Base):
    """One coupon of one neighbour: the template's terms as they were at issue, its own validity, and
    where it is in ``available → locked → used`` (``locked → available`` when the order is not paid)."""

    __tablename__ = "coupons"

    template_id: Mapped[int] = mapped_column(BigId, ForeignKey("coupon_templates.id"), index=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(12))
    amount_fen: Mapped[int | None] = mapped_column(Integer)
    percent: Mapped[int | None] = mapped_column(Integer)
    free_product_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("products.id"))
    min_spend_fen: Mapped[int] = mapped_column(Integer, default=0)
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(12), default=CouponStatus.available.value)
    # Why it was issued, unique per neighbour and template: "operator:<key>", "lottery:<id>".
    source: Mapped[str] = mapped_column(String(64))
    # The order that used it (set on payment; a locked coupon's order is the one whose ``coupon_id`` it is).
    order_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("orders.id"), index=True)
    used_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("user_id", "template_id", "source"),
        CheckConstraint(f"status IN ({_COUPON_STATUS_SQL})", name="status_known"),
        CheckConstraint(f"kind IN ({_KIND_SQL})", name="kind_known"),
        CheckConstraint(_TERMS_SQL, name="terms_match_kind"),
        CheckConstraint("valid_from < valid_until", name="valid_window"),
        CheckConstraint("status <> 'used' OR order_id IS NOT NULL", name="used_by_an_order"),
    )
