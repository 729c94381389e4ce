"""The operators' order pages in the admin console: search orders (order number, phone or product, status,
live session), one order with its lines, timeline, payments and refunds, and the refund action with a
reason. Thin: the same service verbs as ``/api/v1/admin/orders``; operators only (a neighbour or a host
gets the 403 page, a visitor the login page)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import HTMLResponse, RedirectResponse, Response

from linli.community import service as community_service
from linli.community.models import PickupPoint, Store
from linli.core.admin_pages import flash_redirect, render_admin
from linli.core.deps import SessionDep
from linli.core.errors import LinliError
from linli.core.templating import register_admin_nav, translator
from linli.identity.deps import PageOperator
from linli.live import service as live_service
from linli.live.errors import SessionNotFound
from linli.orders import service
from linli.orders.models import Order, OrderStatus
from linli.orders.payments import service as payments_service
from linli.orders.payments.models import Refund
from linli.orders.schemas import RefundRequest
from linli.orders.service import OrderList

router = APIRouter(include_in_schema=False)
BASE = "/admin/orders"
register_admin_nav(BASE, "orders.admin.nav", order=60)

OrderId = Annotated[int, Path(ge=1, le=2**62)]
PER_PAGE = 20
REFUNDABLE = (OrderStatus.paid.value, OrderStatus.refund_requested.value)
BADGES = {
    OrderStatus.pending_payment: "badge-scheduled",
    OrderStatus.paid: "badge-live",
    OrderStatus.completed: "badge-active",
}


def _positive_id(raw: str | None) -> int | None:
    """An id as typed or chosen (a session, an order); anything but a positive id means none."""
    text = (raw or "").strip()
    return int(text) if text.isdigit() and 0 < len(text) < 19 and int(text) > 0 else None


async def _titles(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    titles: dict[int, str] = {}
    for session_id in sorted(ids):
        try:
            titles[session_id] = (await live_service.get_session(session, session_id)).title
        except SessionNotFound:
            titles[session_id] = f"#{session_id}"
    return titles


@router.get(BASE, response_class=HTMLResponse)
async def order_search(
    request: Request,
    session: SessionDep,
    operator: PageOperator,
    q: Annotated[str, Query(max_length=60)] = "",
    order: Annotated[str, Query(max_length=20)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    session_id: Annotated[str, Query(max_length=20)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """Newest first; ``q`` is (part of) a phone number, a product name or an order number; ``order`` is an
    order number only, and goes straight to that order when it exists."""
    number = _positive_id(order)
    if number is not None:
        try:
            await service.get_order(session, number)
        except LinliError as exc:
            if exc.status_code != 404:
                raise
        else:
            return RedirectResponse(f"{BASE}/{number}", status_code=303)
    chosen = OrderStatus(status) if status in OrderStatus.__members__ else None
    live_id = _positive_id(session_id)
    result = await service.search_orders(
        session, q=q.strip() or None, status=chosen, session_id=live_id, page=page, per_page=PER_PAGE
    )
    if order.strip():  # an order number that does not exist: nothing matches
        result = OrderList(items=[], total=0, page=1, per_page=PER_PAGE)
    sessions = await live_service.list_sessions(session, per_page=100)
    titles = {s.id: s.title for s in sessions.items}
    titles.update(await _titles(session, {o.session_id for o in result.items} - set(titles)))
    filters = {
        "q": q.strip(),
        "order": order.strip(),
        "status": chosen.value if chosen else "",
        "session_id": live_id or "",
    }

    def link(to_page: int) -> str:
        return f"{BASE}?{urlencode({**filters, 'page': to_page})}"

    return render_admin(
        request,
        "orders/admin_list.html",
        {
            "result": result,
            "filters": filters,
            "statuses": list(OrderStatus),
            "sessions": sessions.items,
            "titles": titles,
            "badges": BADGES,
            "link": link,
        },
    )


async def _refunds(session: AsyncSession, order_id: int) -> list[Refund]:
    rows = await session.scalars(select(Refund).where(Refund.order_id == order_id).order_by(Refund.id))
    return list(rows.all())


async def _detail(
    request: Request, session: AsyncSession, order: Order, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    place: PickupPoint | Store | None = None
    if order.pickup_point_id is not None:
        place = await community_service.get_pickup_point(session, order.pickup_point_id)
    elif order.store_id is not None:
        place = await community_service.get_store(session, order.store_id)
    titles = await _titles(session, {order.session_id})
    return render_admin(
        request,
        "orders/admin_detail.html",
        {
            "order": order,
            "timeline": await service.order_timeline(session, order.id),
            "payments": await payments_service.payments_of_order(session, order.id),
            "refunds": await _refunds(session, order.id),
            "place": place,
            "session_title": titles[order.session_id],
            "badges": BADGES,
            "refundable": order.status in REFUNDABLE,
            "error": error,
        },
        status_code=status_code,
    )


@router.get(f"{BASE}/{{order_id}}", response_class=HTMLResponse)
async def order_page(
    request: Request, session: SessionDep, operator: PageOperator, order_id: OrderId
) -> Response:
    return await _detail(request, session, await service.get_order(session, order_id))


@router.post(f"{BASE}/{{order_id}}/refund")
async def refund(
    request: Request, session: SessionDep, operator: PageOperator, order_id: OrderId
) -> Response:
    """Approve a refund with the operator's reason (required): the provider is asked to return the money,
    or the order is refunded at once when nothing was paid through one. An order already refunded is left
    as it is and says so."""
    t = translator(request)
    back = f"{BASE}/{order_id}"
    order = await service.get_order(session, order_id)
    reason = str((await request.form()).get("reason") or "").strip()
    if not reason or len(reason) > 200:
        return await _detail(
            request, session, order, error=t("orders.admin.reason_required"), status_code=422
        )
    if order.status == OrderStatus.refunded:
        return flash_redirect(request, back, t("orders.admin.already_refunded"), kind="error")
    data = RefundRequest(reason=reason)
    try:
        async with session.begin_nested():
            done = await service.approve_refund(session, order_id, actor=operator, reason=data.reason)
    except LinliError as exc:
        if exc.status_code == 404:
            raise
        key = f"orders.errors.{exc.name}"
        text: str = t(key)
        return flash_redirect(request, back, exc.message if text == key else text, kind="error")
    message = (
        "orders.admin.refunded" if done.status == OrderStatus.refunded else "orders.admin.refund_started"
    )
    return flash_redirect(request, back, t(message, id=order_id))
