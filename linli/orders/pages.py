"""The neighbour's order pages: "my orders" and one order with its status timeline. Thin: the same
service verbs as the API; someone else's order is a 404 page, as in the API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import HTMLResponse, RedirectResponse, Response

from linli.community import service as community_service
from linli.community.models import PickupPoint, Store
from linli.core.clock import utcnow
from linli.core.deps import SessionDep
from linli.core.errors import LinliError
from linli.core.templating import render, translator
from linli.identity.deps import PageUser
from linli.live import service as live_service
from linli.orders import service
from linli.orders.models import Order, OrderStatus
from linli.orders.payments import pages as payments_pages

router = APIRouter(include_in_schema=False)
router.include_router(payments_pages.router)

OrderId = Annotated[int, Path(ge=1, le=2**62)]

# Sections that higher domains add to the order page (group progress and pickup code, the share poster):
# each gets the request, the session and the neighbour's own order and returns rendered HTML or None.
# Orders sits below them, so they register here (``register_order_panel``) instead of being imported.
OrderPanel = Callable[[Request, AsyncSession, Order], Awaitable[Markup | None]]
ORDER_PANELS: list[tuple[int, OrderPanel]] = []


def register_order_panel(panel: OrderPanel, *, position: int = 50) -> None:
    """Add a section to the neighbour's order page; lower ``position`` shows nearer the top."""
    if all(existing is not panel for _, existing in ORDER_PANELS):
        ORDER_PANELS.append((position, panel))
        ORDER_PANELS.sort(key=lambda entry: entry[0])


async def _panels(request: Request, session: AsyncSession, order: Order) -> list[Markup]:
    rendered = [await panel(request, session, order) for _, panel in ORDER_PANELS]
    return [html for html in rendered if html]


BADGES = {
    OrderStatus.pending_payment: "badge-scheduled",
    OrderStatus.paid: "badge-live",
    OrderStatus.completed: "badge-active",
}


def _error_text(request: Request, exc: LinliError) -> str:
    t = translator(request)
    key = f"orders.errors.{exc.name}"
    text: str = t(key)
    return exc.message if text == key else text


@router.get("/orders", response_class=HTMLResponse)
async def my_orders(
    request: Request,
    session: SessionDep,
    user: PageUser,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    result = await service.list_my_orders(session, user.id, page=page, per_page=20)
    return render(
        request,
        "orders/list.html",
        {"orders": result.items, "result": result, "badges": BADGES, "active_tab": "me"},
    )


async def _detail(
    request: Request, session: AsyncSession, order: Order, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    timeline = await service.order_timeline(session, order.id)
    place: PickupPoint | Store | None = None
    if order.pickup_point_id is not None:
        place = await community_service.get_pickup_point(session, order.pickup_point_id)
    elif order.store_id is not None:
        place = await community_service.get_store(session, order.store_id)
    live_session = await live_service.get_session(session, order.session_id)
    pending = order.status == OrderStatus.pending_payment
    return render(
        request,
        "orders/detail.html",
        {
            "order": order,
            "timeline": timeline,
            "place": place,
            "live_session": live_session,
            "badges": BADGES,
            "store_total_fen": sum(line.store_price_fen * line.quantity for line in order.lines),
            "seconds_left": max(int((order.reserved_until - utcnow()).total_seconds()), 0) if pending else 0,
            "error": error,
            "panels": await _panels(request, session, order),
            "active_tab": "me",
        },
        status_code=status_code,
    )


@router.get("/orders/{order_id}", response_class=HTMLResponse)
async def order_detail(
    request: Request, session: SessionDep, user: PageUser, order_id: OrderId
) -> HTMLResponse:
    order = await service.get_order_of(session, order_id, user.id)
    return await _detail(request, session, order)


@router.post("/orders/{order_id}/cancel")
async def cancel(request: Request, session: SessionDep, user: PageUser, order_id: OrderId) -> Response:
    try:
        async with session.begin_nested():
            await service.cancel_order(session, order_id, user=user)
    except LinliError as exc:
        if exc.status_code == 404:
            raise
        order = await service.get_order_of(session, order_id, user.id, fresh=True)
        return await _detail(request, session, order, error=_error_text(request, exc), status_code=409)
    return RedirectResponse(f"/orders/{order_id}", status_code=303)


@router.post("/orders/{order_id}/refund-request")
async def refund_request(
    request: Request, session: SessionDep, user: PageUser, order_id: OrderId
) -> Response:
    try:
        async with session.begin_nested():
            await service.request_refund(session, order_id, user=user)
    except LinliError as exc:
        if exc.status_code == 404:
            raise
        order = await service.get_order_of(session, order_id, user.id, fresh=True)
        return await _detail(request, session, order, error=_error_text(request, exc), status_code=409)
    return RedirectResponse(f"/orders/{order_id}", status_code=303)
