"""Group orders per (session, community), what each paid order contributed, their history; a session's
group-order settings; delivery batches, pickup codes, pickups and the below-threshold delivery fees."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from linli.core.clock import utcnow
from linli.core.db import Base, BigId, IdMixin, TimestampMixin


class GroupState(enum.StrEnum):
    collecting = "collecting"
    reached = "reached"
    closed = "closed"
    dispatched = "dispatched"
    delivered = "delivered"


class BelowPolicy(enum.StrEnum):
    """What happens at cutoff to a group below its threshold (the operator chooses per session)."""

    deliver = "deliver"  # delivered anyway, with a delivery fee collected at pickup or waived
    store_pickup = "store_pickup"  # its orders move to pickup at the nearest store
    refund = "refund"  # every paid order is refunded through the payments module


class Outcome(enum.StrEnum):
    """How a group was settled at cutoff."""

    free_delivery = "free_delivery"
    delivery_fee = "delivery_fee"
    store_pickup = "store_pickup"
    refunded = "refunded"


class BatchState(enum.StrEnum):
    planned = "planned"
    dispatched = "dispatched"
    arrived = "arrived"


class CodeStatus(enum.StrEnum):
    open = "open"
    done = "done"  # every unit picked up
    void = "void"  # the order was refunded


class FeeStatus(enum.StrEnum):
    """A delivery fee's life::

        due ─online payment─▶ paid_online ─order refunded─▶ refunding ─provider─▶ refunded
         ├──cash at pickup──▶ collected
         └──order refunded──▶ cancelled

    ``waived`` never changes. Each move is one conditional update from the state before it, so cash
    and an online payment can never both collect one fee (the later one is refused: an online payment
    then goes back through the provider). A fee the leader took in cash is theirs to hand back if the
    order is refunded afterwards: the platform never held that money."""

    waived = "waived"
    due = "due"  # payable online from the order page, or in cash to the leader at pickup
    collected = "collected"  # in cash, by the leader at pickup
    paid_online = "paid_online"  # through the payments provider
    refunding = "refunding"  # the order was refunded: the online payment is on its way back
    refunded = "refunded"
    cancelled = "cancelled"  # the order was refunded before the fee was paid: nothing is due any more


def _known(values: type[enum.StrEnum]) -> str:
    return ", ".join(f"'{v.value}'" for v in values)


class GroupSettings(TimestampMixin, Base):
    """A session's group-order terms; a session without a row uses the defaults (``service.terms_of``)."""

    __tablename__ = "groupbuy_settings"

    session_id: Mapped[int] = mapped_column(BigId, ForeignKey("live_sessions.id"), primary_key=True)
    threshold: Mapped[int] = mapped_column(Integer, default=50)
    # None: 10:00 Asia/Shanghai on the day after the session's start.
    deliver_by: Mapped[datetime | None]
    # None: when the session ends.
    cutoff_at: Mapped[datetime | None]
    below_policy: Mapped[str] = mapped_column(String(16), default=BelowPolicy.deliver.value)
    delivery_fee_fen: Mapped[int] = mapped_column(Integer, default=0)
    # Below threshold with ``deliver``: True collects the fee at pickup, False waives it.
    collect_fee: Mapped[bool] = mapped_column(Boolean, default=False)
    # ``store_pickup``: where the orders move to (None: the first open store in the community's district,
    # else the first open store).
    fallback_store_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("stores.id"))
    updated_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))

    __table_args__ = (
        CheckConstraint("threshold BETWEEN 1 AND 100000", name="threshold_range"),
        CheckConstraint("delivery_fee_fen >= 0", name="fee_not_negative"),
        CheckConstraint(f"below_policy IN ({_known(BelowPolicy)})", name="policy_known"),
    )


class DeliveryBatch(IdMixin, TimestampMixin, Base):
    """Group orders dispatched together, with the driver and route note; staff confirm each step."""

    __tablename__ = "delivery_batches"

    session_id: Mapped[int] = mapped_column(BigId, ForeignKey("live_sessions.id"), index=True)
    note: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(12), default=BatchState.planned.value)
    created_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    dispatched_at: Mapped[datetime | None]
    dispatched_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    arrived_at: Mapped[datetime | None]
    arrived_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))

    __table_args__ = (CheckConstraint(f"state IN ({_known(BatchState)})", name="state_known"),)


class GroupOrder(IdMixin, TimestampMixin, Base):
    """One community's share of one session: paid units counted up and down by one conditional update."""

    __tablename__ = "group_orders"

    session_id: Mapped[int] = mapped_column(BigId, ForeignKey("live_sessions.id"), index=True)
    community_id: Mapped[int] = mapped_column(BigId, ForeignKey("communities.id"), index=True)
    community_name: Mapped[str] = mapped_column(String(60))
    # Where the group is delivered (the community's first open point when it opened).
    pickup_point_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("pickup_points.id"))
    threshold: Mapped[int] = mapped_column(Integer)
    units: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(12), default=GroupState.collecting.value)
    # First time the threshold was reached; set once (the announcement's guard).
    reached_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16))
    batch_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("delivery_batches.id"), index=True)
    dispatched_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("session_id", "community_id"),
        CheckConstraint("units >= 0", name="units_not_negative"),
        CheckConstraint(f"state IN ({_known(GroupState)})", name="state_known"),
        CheckConstraint(f"outcome IS NULL OR outcome IN ({_known(Outcome)})", name="outcome_known"),
    )


class GroupOrderChange(IdMixin, Base):
    """One step of a group order's history (the first, its opening, has no ``from_state``)."""

    __tablename__ = "group_order_changes"

    group_order_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("group_orders.id", ondelete="CASCADE"), index=True
    )
    from_state: Mapped[str | None] = mapped_column(String(12))
    to_state: Mapped[str] = mapped_column(String(12))
    units: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(String(200), default="")


class Contribution(Base):
    """What one paid order added to its group: counted once (primary key), taken back once."""

    __tablename__ = "group_order_contributions"

    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"), primary_key=True)
    group_order_id: Mapped[int] = mapped_column(BigId, ForeignKey("group_orders.id"), index=True)
    units: Mapped[int] = mapped_column(Integer)
    counted_at: Mapped[datetime] = mapped_column(default=utcnow)
    uncounted_at: Mapped[datetime | None]

    __table_args__ = (CheckConstraint("units > 0", name="units_positive"),)


class PickupCode(TimestampMixin, Base):
    """A paid order's 6-digit pickup code. ``open_code`` is the code while it is open and NULL after, so
    the unique ``(place, open_code)`` keeps open codes unique per point (or store) on both databases."""

    __tablename__ = "pickup_codes"

    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(6))
    # "p:<pickup point id>" or "s:<store id>": where it is picked up.
    place: Mapped[str] = mapped_column(String(24), index=True)
    open_code: Mapped[str | None] = mapped_column(String(6))
    units_total: Mapped[int] = mapped_column(Integer)
    units_picked: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(8), default=CodeStatus.open.value)

    __table_args__ = (
        UniqueConstraint("place", "open_code"),
        CheckConstraint("units_picked >= 0 AND units_picked <= units_total", name="picked_within_total"),
        CheckConstraint(f"status IN ({_known(CodeStatus)})", name="status_known"),
    )


class Pickup(IdMixin, Base):
    """Units of an order handed over at once (a multi-unit order may take several)."""

    __tablename__ = "pickups"

    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"), index=True)
    units: Mapped[int] = mapped_column(Integer)
    verified_by: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (CheckConstraint("units > 0", name="units_positive"),)


class DeliveryFee(TimestampMixin, Base):
    """The delivery fee of an order in a below-threshold group delivered anyway: waived, or due — paid
    online through the payments provider (``payment_id``), or collected in cash by the leader at pickup
    (``collected_by``). See ``FeeStatus``."""

    __tablename__ = "groupbuy_delivery_fees"

    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"), primary_key=True)
    group_order_id: Mapped[int] = mapped_column(BigId, ForeignKey("group_orders.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12))
    collected_by: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    collected_at: Mapped[datetime | None]
    # The payment that paid it online (a ``delivery_fee`` payment of the same order).
    payment_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("payments.id"))
    paid_at: Mapped[datetime | None]
    refunded_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("amount_fen >= 0", name="amount_not_negative"),
        CheckConstraint(f"status IN ({_known(FeeStatus)})", name="status_known"),
    )
