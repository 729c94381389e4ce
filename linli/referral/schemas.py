"""The referral API's shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Id = Annotated[int, Field(ge=1, le=2**62)]


class VisitCreate(BaseModel):
    """Opening a share link from a client that is not a browser page (a mini-program)."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=12)
    session_id: Id | None = None
    product_id: Id | None = None


class VisitRead(BaseModel):
    sharer_id: int
    sharer_name: str
    code: str
    bound: bool
    binding_sharer_id: int | None
    refused: str | None
    kept: bool
    expires_at: datetime | None


class PosterLinks(BaseModel):
    chat: str
    moments: str
    group: str


class ShareKitRead(BaseModel):
    order_id: int
    session_id: int
    code: str
    share_url: str
    share_path: str
    default_line: str
    line_max: int
    product_name: str
    posters: PosterLinks


class ShareEventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["shown", "saved", "shared"]
    format: Literal["chat", "moments", "group"] = "moments"
    channel: Literal["friend", "moments", "group", "link", "system"] | None = None


class ShareEventRead(BaseModel):
    id: int
    type: str
    order_id: int
    occurred_at: datetime


class MyReferralRead(BaseModel):
    code: str
    share_url: str
    conversions: int
    reversed: int


class StandingRead(BaseModel):
    rank: int
    user_id: int
    name: str
    conversions: int
    revenue_fen: int
    reached_at: datetime
    me: bool = False


class LeaderboardRead(BaseModel):
    community_id: int
    community_name: str
    month: str
    closed: bool
    standings: list[StandingRead]


class ReferralSettingsRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    window_days: int
    last_touch: bool
    top_n: int
    reward_template_ids: list[int]
    updated_at: datetime


class ReferralSettingsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window_days: int | None = Field(default=None, ge=1, le=90)
    last_touch: bool | None = None
    top_n: int | None = Field(default=None, ge=0, le=50)
    reward_template_ids: list[Id] | None = Field(default=None, max_length=50)


class RewardRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    community_id: int
    month: str
    rank: int
    user_id: int
    conversions: int
    revenue_fen: int
    coupon_template_id: int | None
    coupon_id: int | None
    granted_at: datetime


class MonthClose(BaseModel):
    model_config = ConfigDict(extra="forbid")

    month: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")


class ShareTimingRead(BaseModel):
    paid_orders: int
    shown_orders: int
    shared_orders: int
    pay_to_share_rate: float
    median_seconds_to_poster: float | None
    median_seconds_to_first_share: float | None
