"""API shapes of coupon templates (operators) and issued coupons (neighbours). Money is integer fen."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from linli.orders.models import Coupon, CouponKind, CouponStatus, CouponTemplate

Id = Annotated[int, Field(ge=1, le=2**62)]
Fen = Annotated[int, Field(ge=1, le=10_000_000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
Percent = Annotated[int, Field(ge=1, le=99, description="Percent off the subtotal, 1–99")]
ValidDays = Annotated[int, Field(ge=1, le=3650)]
MinSpend = Annotated[int, Field(ge=0, le=10_000_000)]


class CouponTemplateCreate(BaseModel):
    """An operator's coupon: one kind with its one term, a minimum spend, and a validity — fixed dates
    (``valid_until``), days after issue (``valid_days``), or both (whichever ends first)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: CouponKind
    amount_fen: Fen | None = Field(default=None, description="For 'fixed': how much it takes off")
    percent: Percent | None = None
    free_product_id: Id | None = Field(default=None, description="For 'free_item': the product given free")
    min_spend_fen: MinSpend = 0
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_days: ValidDays | None = None
    active: bool = True

    @model_validator(mode="after")
    def _terms_match_kind(self) -> Self:
        terms = {
            CouponKind.fixed: ("amount_fen", self.amount_fen),
            CouponKind.percent: ("percent", self.percent),
            CouponKind.free_item: ("free_product_id", self.free_product_id),
        }
        field, value = terms[self.kind]
        if value is None:
            raise ValueError(f"a {self.kind.value} coupon needs {field}")
        others = [name for kind, (name, v) in terms.items() if kind is not self.kind and v is not None]
        if others:
            raise ValueError(f"a {self.kind.value} coupon has no {', '.join(others)}")
        if self.valid_until is None and self.valid_days is None:
            raise ValueError("give valid_until or valid_days")
        if self.valid_from and self.valid_until and self.valid_from >= self.valid_until:
            raise ValueError("valid_from must be before valid_until")
        return self


class CouponTemplateUpdate(BaseModel):
    """What may change after coupons were issued; issued coupons keep the terms they were issued with."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    active: bool | None = None


class CouponTemplateRead(BaseModel):
    id: int
    name: str
    kind: CouponKind
    amount_fen: int | None
    percent: int | None
    free_product_id: int | None
    min_spend_fen: int
    valid_from: datetime | None
    valid_until: datetime | None
    valid_days: int | None
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, template: CouponTemplate) -> CouponTemplateRead:
        return cls(
            id=template.id,
            name=template.name,
            kind=CouponKind(template.kind),
            amount_fen=template.amount_fen,
            percent=template.percent,
            free_product_id=template.free_product_id,
            min_spend_fen=template.min_spend_fen,
            valid_from=template.valid_from,
            valid_until=template.valid_until,
            valid_days=template.valid_days,
            active=template.active,
            created_at=template.created_at,
        )


class CouponIssue(BaseModel):
    """Issue one coupon of a template to the neighbour with this phone number."""

    model_config = ConfigDict(extra="forbid")

    phone: Annotated[str, StringConstraints(strip_whitespace=True, min_length=11, max_length=20)]


class CouponRead(BaseModel):
    id: int
    template_id: int
    name: str
    kind: CouponKind
    amount_fen: int | None
    percent: int | None
    free_product_id: int | None
    min_spend_fen: int
    valid_from: datetime
    valid_until: datetime
    # As of now: an available coupon past its end reads "expired".
    status: CouponStatus
    source: str
    order_id: int | None
    used_at: datetime | None

    @classmethod
    def of(cls, coupon: Coupon, status: CouponStatus) -> CouponRead:
        return cls(
            id=coupon.id,
            template_id=coupon.template_id,
            name=coupon.name,
            kind=CouponKind(coupon.kind),
            amount_fen=coupon.amount_fen,
            percent=coupon.percent,
            free_product_id=coupon.free_product_id,
            min_spend_fen=coupon.min_spend_fen,
            valid_from=coupon.valid_from,
            valid_until=coupon.valid_until,
            status=status,
            source=coupon.source,
            order_id=coupon.order_id,
            used_at=coupon.used_at,
        )


class CouponAdminRead(CouponRead):
    user_id: int

    @classmethod
    def of_admin(cls, coupon: Coupon, status: CouponStatus) -> CouponAdminRead:
        return cls(**CouponRead.of(coupon, status).model_dump(), user_id=coupon.user_id)
