"""API shapes of group orders, their settings, batches, pick lists and pickups. Money is integer fen."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from linli.groupbuy.models import BelowPolicy

Id = Annotated[int, Field(ge=1, le=2**62)]


class SettingsUpdate(BaseModel):
    """A session's group-order terms; fields left out keep their value. Times are UTC (ISO 8601)."""

    model_config = ConfigDict(extra="forbid")

    threshold: Annotated[int, Field(ge=1, le=100000)] | None = None
    deliver_by: datetime | None = None
    cutoff_at: datetime | None = None
    below_policy: BelowPolicy | None = None
    delivery_fee_fen: Annotated[int, Field(ge=0, le=100000)] | None = None
    collect_fee: bool | None = None
    fallback_store_id: Id | None = None


class TermsRead(BaseModel):
    session_id: int
    threshold: int
    deliver_by: datetime
    cutoff_at: datetime | None
    below_policy: BelowPolicy
    delivery_fee_fen: int
    collect_fee: bool
    fallback_store_id: int | None
    promise_text: str


class GroupOrderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    session_id: int
    community_id: int
    community_name: str
    pickup_point_id: int | None
    threshold: int
    units: int
    state: str
    outcome: str | None
    reached_at: datetime | None
    closed_at: datetime | None
    batch_id: int | None
    dispatched_at: datetime | None
    delivered_at: datetime | None


class GroupOrderChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_state: str | None
    to_state: str
    units: int
    at: datetime
    reason: str


class GroupOrderDetail(GroupOrderRead):
    history: list[GroupOrderChangeRead]


class ProgressRead(BaseModel):
    """The room's progress board: the viewer's own community and the leading ones."""

    session_id: int
    threshold: int
    promise_text: str
    mine: GroupOrderRead | None
    my_community_id: int | None
    my_community_name: str | None
    leading: list[GroupOrderRead]


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    group_order_ids: Annotated[list[Id], Field(min_length=1, max_length=200)]
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""


class BatchRead(BaseModel):
    id: int
    session_id: int
    note: str
    state: str
    dispatched_at: datetime | None
    arrived_at: datetime | None
    late: bool
    group_order_ids: list[int]


class PickupVerify(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)]
    pickup_point_id: Id | None = None
    store_id: Id | None = None
    units: Annotated[int, Field(ge=1, le=999)] | None = Field(
        default=None, description="Units handed over now; all that are left when left out"
    )


class PickupRead(BaseModel):
    order_id: int
    buyer: str
    units_picked: int
    units_left: int
    units_now: int
    completed: bool
    # Taken in cash now (0: no fee, waived, or already paid online — then ``fee_status`` says so).
    fee_collected_fen: int
    fee_status: str | None
    lines: list[dict[str, object]]


class FeeRead(BaseModel):
    """An order's delivery fee: waived, due (``payable`` online now), paid online, collected in cash at
    pickup, or — its order refunded — cancelled, refunding or refunded. ``text`` is in the reader's
    locale."""

    order_id: int
    amount_fen: int
    status: str
    payable: bool
    text: str
    paid_at: datetime | None
    collected_at: datetime | None
    refunded_at: datetime | None


class MembershipJoin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inviter_id: Id | None = None


Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class MemberMove(BaseModel):
    """Move a neighbour to another (open) community; the reason is told to them."""

    model_config = ConfigDict(extra="forbid")

    to_community_id: Id
    reason: Reason


class MemberRemove(BaseModel):
    """Take a neighbour out of their community; the reason is told to them."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason


class MembershipRead(BaseModel):
    user_id: int
    community_id: int | None
    community_name: str | None
    source: str | None
