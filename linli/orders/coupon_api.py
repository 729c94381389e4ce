"""JSON routes of coupons: operators design templates and issue coupons by phone; neighbours list theirs.
Checkout applies one through ``coupon_id`` on the quote and on the order (``orders.api``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Path

from linli.core.clock import utcnow
from linli.core.deps import SessionDep
from linli.identity.deps import CurrentUser, OperatorUser
from linli.orders import coupons
from linli.orders.coupon_schemas import (
    CouponAdminRead,
    CouponIssue,
    CouponRead,
    CouponTemplateCreate,
    CouponTemplateRead,
    CouponTemplateUpdate,
)

router = APIRouter()
admin = APIRouter(prefix="/api/v1/admin/coupons", tags=["coupons (operators)"])
mine = APIRouter(prefix="/api/v1/me/coupons", tags=["coupons"])

TemplateId = Annotated[int, Path(ge=1, le=2**62)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=48,
        description="Issuing again with the same key returns the coupon already issued",
    ),
]


def operator_source(key: str | None) -> str:
    """The issue's source: the operator's idempotency key, or a new one (each issue is another coupon)."""
    return f"operator:{(key or '').strip() or uuid.uuid4().hex}"


@admin.get("/templates", response_model=list[CouponTemplateRead])
async def list_templates(session: SessionDep, operator: OperatorUser) -> list[CouponTemplateRead]:
    return [CouponTemplateRead.of(t) for t in await coupons.list_templates(session)]


@admin.post("/templates", response_model=CouponTemplateRead, status_code=201)
async def create_template(
    session: SessionDep, operator: OperatorUser, data: CouponTemplateCreate
) -> CouponTemplateRead:
    """A coupon design: fixed amount, percent off (1–99) or a free item; minimum spend; validity."""
    return CouponTemplateRead.of(await coupons.create_template(session, data, actor=operator))


@admin.get("/templates/{template_id}", response_model=CouponTemplateRead)
async def get_template(
    session: SessionDep, operator: OperatorUser, template_id: TemplateId
) -> CouponTemplateRead:
    return CouponTemplateRead.of(await coupons.get_template(session, template_id))


@admin.patch("/templates/{template_id}", response_model=CouponTemplateRead)
async def update_template(
    session: SessionDep, operator: OperatorUser, template_id: TemplateId, data: CouponTemplateUpdate
) -> CouponTemplateRead:
    """Rename or switch issuing off (``active: false``); coupons already issued keep their terms."""
    return CouponTemplateRead.of(await coupons.update_template(session, template_id, data, actor=operator))


@admin.get("/templates/{template_id}/coupons", response_model=list[CouponAdminRead])
async def list_issued(
    session: SessionDep, operator: OperatorUser, template_id: TemplateId
) -> list[CouponAdminRead]:
    await coupons.get_template(session, template_id)
    now = utcnow()
    return [
        CouponAdminRead.of_admin(c, coupons.status_of(c, now))
        for c in await coupons.list_issued(session, template_id)
    ]


@admin.post("/templates/{template_id}/issue", response_model=CouponAdminRead, status_code=201)
async def issue(
    session: SessionDep,
    operator: OperatorUser,
    template_id: TemplateId,
    data: CouponIssue,
    idempotency_key: IdempotencyKey = None,
) -> CouponAdminRead:
    """Issue one coupon to the neighbour with this phone number."""
    coupon = await coupons.issue_to_phone(
        session, template_id, data.phone, source=operator_source(idempotency_key), actor=operator
    )
    return CouponAdminRead.of_admin(coupon, coupons.status_of(coupon, utcnow()))


@mine.get("", response_model=list[CouponRead])
async def my_coupons(session: SessionDep, user: CurrentUser) -> list[CouponRead]:
    """The caller's coupons: usable ones first (ending soonest first), then used, expired and void ones."""
    now = utcnow()
    return [
        CouponRead.of(c, coupons.status_of(c, now)) for c in await coupons.list_my_coupons(session, user.id)
    ]


router.include_router(admin)
router.include_router(mine)
