"""JSON routes: neighbours check out and follow their own orders; operators search orders and refund."""

from __future__ import annotations

from dataclasses import fields as fields_of
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request

from linli.community import service as community_service
from linli.core.deps import RuntimeDep, SessionDep
from linli.core.errors import LinliError
from linli.identity.deps import CurrentUser, OperatorUser
from linli.orders import service
from linli.orders.checkout import checkout_of
from linli.orders.models import OrderStatus
from linli.orders.payments import api as payments_api
from linli.orders.schemas import (
    MAX_QUANTITY,
    CheckoutOptionsRead,
    CheckoutPlaceRead,
    CouponOfferRead,
    OrderAdminPage,
    OrderAdminRead,
    OrderCreate,
    OrderDetail,
    OrderPage,
    OrderRead,
    PlacedOrderRead,
    QuoteRead,
    RefundRequest,
)

router = APIRouter()
mine = APIRouter(prefix="/api/v1/orders", tags=["orders"])
admin = APIRouter(prefix="/api/v1/admin/orders", tags=["orders (operators)"])

OrderId = Annotated[int, Path(ge=1, le=2**62)]
Page = Annotated[int, Query(ge=1, le=100_000)]
PerPage = Annotated[int, Query(ge=1, le=100)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Any unique string per order (a UUID): a retry with the same key returns the same order",
    ),
]


@mine.get("/quote", response_model=QuoteRead)
async def quote(
    session: SessionDep,
    user: CurrentUser,
    session_id: Annotated[int, Query(ge=1, le=2**62)],
    lineup_item_id: Annotated[int, Query(ge=1, le=2**62)],
    quantity: Annotated[int, Query(ge=1, le=MAX_QUANTITY)] = 1,
    coupon_id: Annotated[int | None, Query(ge=1, le=2**62, description="One of your coupons")] = None,
) -> QuoteRead:
    """The price breakdown the checkout sheet shows (live price, store price, coupon, total), how many
    units the neighbour may still take, and their coupons that fit, best first."""
    result = await service.quote(session, user, session_id, lineup_item_id, quantity, coupon_id=coupon_id)
    fields = {f.name: getattr(result, f.name) for f in fields_of(result) if f.name != "offers"}
    return QuoteRead(
        **fields,
        saving_fen=result.saving_fen,
        max_quantity=result.max_quantity,
        live_price_fen=result.unit_price_fen,
        coupon_discount_fen=result.discount_fen,
        coupons=[
            CouponOfferRead(
                coupon_id=o.coupon.id,
                name=o.coupon.name,
                kind=o.coupon.kind,
                discount_fen=o.discount_fen,
                min_spend_fen=o.coupon.min_spend_fen,
                valid_until=o.coupon.valid_until,
            )
            for o in result.offers
        ],
    )


@mine.post("", response_model=PlacedOrderRead, status_code=201)
async def create_order(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    user: CurrentUser,
    data: OrderCreate,
    idempotency_key: IdempotencyKey = None,
) -> PlacedOrderRead:
    """Place an order at the live price; its units are held for a few minutes until it is paid.
    Send an ``Idempotency-Key`` header so a retried request cannot order twice. With ``pay``, the
    payment is opened too and comes with the order: the cashier is one round trip away, not two."""
    way = payments_api.way_to_pay(runtime, data.pay) if data.pay is not None else None
    # The order is placed in the checkout queue's transaction, not this request's: end this one (who is
    # calling was all it read) so it holds no connection while it waits — on SQLite, the only one.
    await session.commit()
    queue = checkout_of(
        runtime.db, runtime.extras, reservation_minutes=runtime.settings.order_reservation_minutes
    )
    placed = await queue.place(
        user, data, idempotency_key=idempotency_key, pay=payments_api.pay_with(request, runtime, way)
    )
    order = placed.order
    answer = PlacedOrderRead.model_construct(**dict(order), payment=placed.payment, payment_error=None)
    if way is None or answer.payment is not None or order.status is not OrderStatus.pending_payment:
        return answer  # not asked to, opened with the order, or nothing to pay (a coupon paid it all)
    # A replay, an order placed on its own, or a provider that must be asked: open (or resume) it here.
    try:
        answer.payment = await payments_api.start_payment(request, session, runtime, user.id, order.id, way)
    except LinliError as exc:
        # The order stands: the client opens its payment on its own, as it would without ``pay``.
        await session.rollback()
        answer.payment_error = exc.to_dict()
    return answer


@mine.get("/checkout-options", response_model=CheckoutOptionsRead)
async def checkout_options(session: SessionDep, user: CurrentUser) -> CheckoutOptionsRead:
    """What the checkout sheet prefills: your phone, your community's open pickup points (the default
    first) and the open stores (for store pickup)."""
    community = await community_service.community_of(session, user.id)
    points = community.open_pickup_points if community is not None and community.archived_at is None else []
    stores, _ = await community_service.list_stores(session, limit=50)
    return CheckoutOptionsRead(
        contact_phone=user.phone,
        community_id=community.id if community is not None else None,
        community_name=community.name if community is not None else None,
        pickup_points=[CheckoutPlaceRead(id=p.id, name=p.name, address=p.address) for p in points],
        stores=[CheckoutPlaceRead(id=s.id, name=s.name, address=s.address) for s in stores],
    )


@mine.get("", response_model=OrderPage)
async def list_orders(
    session: SessionDep,
    user: CurrentUser,
    status: OrderStatus | None = None,
    page: Page = 1,
    per_page: PerPage = 20,
) -> OrderPage:
    """The caller's own orders, newest first."""
    result = await service.list_my_orders(session, user.id, status=status, page=page, per_page=per_page)
    return OrderPage(
        items=[OrderRead.of(o) for o in result.items],
        total=result.total,
        page=result.page,
        per_page=result.per_page,
    )


@mine.get("/{order_id}", response_model=OrderDetail)
async def get_order(session: SessionDep, user: CurrentUser, order_id: OrderId) -> OrderDetail:
    """One of the caller's orders with its status timeline (404 for anyone else's)."""
    order = await service.get_order_of(session, order_id, user.id)
    return OrderDetail.with_timeline(order, await service.order_timeline(session, order.id))


@mine.post("/{order_id}/cancel", response_model=OrderRead)
async def cancel_order(session: SessionDep, user: CurrentUser, order_id: OrderId) -> OrderRead:
    """Cancel an unpaid order; its units go back on sale at once."""
    return OrderRead.of(await service.cancel_order(session, order_id, user=user))


@mine.post("/{order_id}/refund-request", response_model=OrderRead)
async def request_refund(
    session: SessionDep, user: CurrentUser, order_id: OrderId, data: RefundRequest | None = None
) -> OrderRead:
    """Ask for a paid order's money back; an operator approves it."""
    reason = data.reason if data is not None else ""
    return OrderRead.of(await service.request_refund(session, order_id, user=user, reason=reason))


@admin.get("", response_model=OrderAdminPage)
async def search_orders(
    session: SessionDep,
    operator: OperatorUser,
    q: Annotated[str | None, Query(max_length=60, description="Order number, phone or product name")] = None,
    status: OrderStatus | None = None,
    session_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    page: Page = 1,
    per_page: PerPage = 20,
) -> OrderAdminPage:
    result = await service.search_orders(
        session, q=q, status=status, session_id=session_id, page=page, per_page=per_page
    )
    return OrderAdminPage(
        items=[OrderAdminRead.of(o) for o in result.items],
        total=result.total,
        page=result.page,
        per_page=result.per_page,
    )


@admin.get("/{order_id}", response_model=OrderAdminRead)
async def get_order_admin(session: SessionDep, operator: OperatorUser, order_id: OrderId) -> OrderAdminRead:
    return OrderAdminRead.of(await service.get_order(session, order_id))


@admin.post("/{order_id}/refund", response_model=OrderAdminRead)
async def refund_order(
    session: SessionDep, operator: OperatorUser, order_id: OrderId, data: RefundRequest | None = None
) -> OrderAdminRead:
    """Approve a refund: the payment's provider is asked to return the money (at once when there is none)."""
    reason = data.reason if data is not None else ""
    return OrderAdminRead.of(await service.approve_refund(session, order_id, actor=operator, reason=reason))


router.include_router(mine)
router.include_router(admin)
router.include_router(payments_api.router)
