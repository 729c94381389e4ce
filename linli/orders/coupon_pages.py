"""Coupon pages: the operators' desktop page (templates, create, issue by phone, switch off) and the
neighbour's mobile "我的优惠券". Thin: the same service verbs as ``coupon_api``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import HTMLResponse, Response

from linli.catalog.models import Product
from linli.core.admin_pages import (
    Field,
    FormState,
    flash_redirect,
    read_form,
    render_admin,
    render_form,
    submit,
)
from linli.core.clock import utcnow
from linli.core.deps import SessionDep
from linli.core.errors import LinliError
from linli.core.templating import register_admin_nav, render, translator
from linli.identity.deps import PageOperator, PageUser
from linli.orders import coupons
from linli.orders.coupon_api import operator_source
from linli.orders.coupon_schemas import CouponTemplateCreate, CouponTemplateUpdate
from linli.orders.models import CouponKind, CouponStatus, CouponTemplate

router = APIRouter(include_in_schema=False)
BASE = "/admin/coupons"
register_admin_nav(BASE, "orders.coupons.admin.nav", order=62)

TemplateId = Annotated[int, Path(ge=1, le=2**62)]
KINDS = [(k.value, f"orders.coupons.kind.{k.value}") for k in CouponKind]


async def _products(session: AsyncSession) -> list[tuple[str, str]]:
    rows = await session.execute(
        select(Product.id, Product.name).where(Product.archived_at.is_(None)).order_by(Product.id.desc())
    )
    return [(str(pid), name) for pid, name in rows.all()]


FIELDS = [
    Field("name", "orders.coupons.field.name", required=True),
    Field("kind", "orders.coupons.field.kind", kind="select", required=True, choices=KINDS),
    Field("amount_fen", "orders.coupons.field.amount", kind="money", hint="orders.coupons.hint.amount"),
    Field("percent", "orders.coupons.field.percent", kind="int", hint="orders.coupons.hint.percent"),
    Field(
        "free_product_id",
        "orders.coupons.field.free_product",
        kind="select",
        choices=_products,
        blank="orders.coupons.field.none",
        hint="orders.coupons.hint.free_product",
    ),
    Field("min_spend_fen", "orders.coupons.field.min_spend", kind="money"),
    Field("valid_from", "orders.coupons.field.valid_from", kind="datetime"),
    Field("valid_until", "orders.coupons.field.valid_until", kind="datetime"),
    Field("valid_days", "orders.coupons.field.valid_days", kind="int", hint="orders.coupons.hint.valid_days"),
    Field("active", "orders.coupons.field.active", kind="checkbox"),
]


def _form_data(state: FormState) -> None:
    """Blanks the schema has defaults for; the product select posts its id as text."""
    if state.data.get("min_spend_fen") is None:
        state.data["min_spend_fen"] = 0
    if state.data.get("free_product_id"):
        state.data["free_product_id"] = int(state.data["free_product_id"])


async def _list_page(request: Request, session: AsyncSession) -> HTMLResponse:
    templates = await coupons.list_templates(session)
    return render_admin(request, "orders/coupons_admin.html", {"templates": templates})


@router.get(BASE, response_class=HTMLResponse)
async def coupon_templates(request: Request, session: SessionDep, operator: PageOperator) -> HTMLResponse:
    return await _list_page(request, session)


@router.get(f"{BASE}/new", response_class=HTMLResponse)
async def new_template(request: Request, session: SessionDep, operator: PageOperator) -> HTMLResponse:
    t = translator(request)
    state = FormState(values={"active": "1", "kind": CouponKind.fixed.value, "valid_days": "7"})
    return await render_form(
        request,
        session,
        title=t("orders.coupons.admin.new"),
        fields=FIELDS,
        state=state,
        action=f"{BASE}/new",
        cancel_href=BASE,
    )


@router.post(f"{BASE}/new")
async def create_template(request: Request, session: SessionDep, operator: PageOperator) -> Response:
    t = translator(request)
    state = await read_form(request, FIELDS)
    _form_data(state)

    async def create(data: CouponTemplateCreate) -> CouponTemplate:
        return await coupons.create_template(session, data, actor=operator)

    template = await submit(request, session, state, CouponTemplateCreate, create, fields=FIELDS)
    if template is None:
        return await render_form(
            request,
            session,
            title=t("orders.coupons.admin.new"),
            fields=FIELDS,
            state=state,
            action=f"{BASE}/new",
            cancel_href=BASE,
            status_code=422,
        )
    return flash_redirect(request, BASE, t("orders.coupons.admin.created", name=template.name))


@router.post(f"{BASE}/{{template_id}}/issue")
async def issue(
    request: Request, session: SessionDep, operator: PageOperator, template_id: TemplateId
) -> Response:
    """Issue one coupon to the neighbour with the typed phone; a wrong phone or a switched-off template
    says why."""
    t = translator(request)
    form = await request.form()
    phone = str(form.get("phone") or "").strip()
    try:
        async with session.begin_nested():
            coupon = await coupons.issue_to_phone(
                session, template_id, phone, source=operator_source(None), actor=operator
            )
    except LinliError as exc:
        if exc.status_code == 404 and exc.context.get("template_id"):
            raise
        return flash_redirect(
            request, BASE, t("orders.coupons.admin.not_issued", reason=exc.message), kind="error"
        )
    return flash_redirect(request, BASE, t("orders.coupons.admin.issued", phone=phone, name=coupon.name))


@router.post(f"{BASE}/{{template_id}}/toggle")
async def toggle(
    request: Request, session: SessionDep, operator: PageOperator, template_id: TemplateId
) -> Response:
    """Switch issuing a template on or off."""
    t = translator(request)
    template = await coupons.get_template(session, template_id)
    template = await coupons.update_template(
        session, template_id, CouponTemplateUpdate(active=not template.active), actor=operator
    )
    key = "orders.coupons.admin.switched_on" if template.active else "orders.coupons.admin.switched_off"
    return flash_redirect(request, BASE, t(key, name=template.name))


@router.get("/coupons", response_class=HTMLResponse)
async def my_coupons(request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    now = utcnow()
    rows = [(c, coupons.status_of(c, now)) for c in await coupons.list_my_coupons(session, user.id)]
    # Available ones on top (one not valid yet says from when); used, expired and void ones below.
    usable = [(c, s) for c, s in rows if s == CouponStatus.available]
    other = [(c, s) for c, s in rows if s != CouponStatus.available]
    return render(
        request,
        "orders/coupons.html",
        {"usable": usable, "other": other, "active_tab": "me", "now": now},
    )
