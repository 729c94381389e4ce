"""API shapes of checkout and orders. Money is integer fen; the server computes every amount."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from linli.orders.models import Fulfilment, Order, OrderLine, OrderStatus, OrderStatusChange
from linli.orders.payments.schemas import PaymentCreate, PaymentRead

MAX_QUANTITY = 999
Id = Annotated[int, Field(ge=1, le=2**62)]
Quantity = Annotated[int, Field(ge=1, le=MAX_QUANTITY)]
# Mainland mobile numbers, optionally with +86; the order keeps what was typed (spaces and dashes removed).
Phone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^(\+?86)?1[3-9]\d{9}$"),
]


class OrderCreate(BaseModel):
    """What the checkout sheet sends: which item of which session, how many, and where to pick it up.
    Prices are not sent: the server takes them from the lineup."""

    model_config = ConfigDict(extra="forbid")

    session_id: Id
    lineup_item_id: Id
    quantity: Quantity
    fulfilment: Fulfilment = Fulfilment.pickup
    pickup_point_id: Id | None = Field(
        default=None, description="A pickup point of your community; its first open one when left out"
    )
    store_id: Id | None = Field(default=None, description="Required when fulfilment is 'store'")
    contact_phone: Phone | None = Field(default=None, description="Your account's phone when left out")
    coupon_id: Id | None = Field(default=None, description="One of your coupons to apply (one per order)")
    pay: PaymentCreate | None = Field(
        default=None,
        description="Start paying at once: the answer carries the payment, as "
        "POST /api/v1/orders/{id}/payments would (one round trip fewer)",
    )

    @model_validator(mode="before")
    @classmethod
    def _clean_phone(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("contact_phone"), str):
            data = {**data, "contact_phone": data["contact_phone"].replace(" ", "").replace("-", "")}
        return data

    @model_validator(mode="after")
    def _target_matches_fulfilment(self) -> Self:
        if self.fulfilment is Fulfilment.store:
            if self.store_id is None:
                raise ValueError("choose a store for store pickup (store_id)")
            if self.pickup_point_id is not None:
                raise ValueError("a store order has no pickup point")
        elif self.store_id is not None:
            raise ValueError("store_id is only for fulfilment 'store'")
        return self


class OrderLineRead(BaseModel):
    lineup_item_id: int
    product_id: int
    product_name: str
    unit_price_fen: int
    store_price_fen: int
    quantity: int
    amount_fen: int

    @classmethod
    def of(cls, line: OrderLine) -> OrderLineRead:
        return cls(
            lineup_item_id=line.lineup_item_id,
            product_id=line.product_id,
            product_name=line.product_name,
            unit_price_fen=line.unit_price_fen,
            store_price_fen=line.store_price_fen,
            quantity=line.quantity,
            amount_fen=line.amount_fen,
        )


class StatusChangeRead(BaseModel):
    from_status: OrderStatus | None
    to_status: OrderStatus
    at: datetime
    reason: str

    @classmethod
    def of(cls, change: OrderStatusChange) -> StatusChangeRead:
        return cls(
            from_status=OrderStatus(change.from_status) if change.from_status else None,
            to_status=OrderStatus(change.to_status),
            at=change.at,
            reason=change.reason,
        )


class OrderRead(BaseModel):
    id: int
    status: OrderStatus
    session_id: int
    community_id: int | None
    fulfilment: Fulfilment
    pickup_point_id: int | None
    store_id: int | None
    contact_phone: str
    lines: list[OrderLineRead]
    subtotal_fen: int
    discount_fen: int
    total_fen: int
    # What the same units cost at the store price: the saving the sheet shows.
    store_total_fen: int
    reserved_until: datetime
    created_at: datetime
    paid_at: datetime | None
    cancelled_at: datetime | None
    expired_at: datetime | None
    refunded_at: datetime | None

    @classmethod
    def of(cls, order: Order) -> OrderRead:
        return cls(
            id=order.id,
            status=OrderStatus(order.status),
            session_id=order.session_id,
            community_id=order.community_id,
            fulfilment=Fulfilment(order.fulfilment),
            pickup_point_id=order.pickup_point_id,
            store_id=order.store_id,
            contact_phone=order.contact_phone,
            lines=[OrderLineRead.of(line) for line in order.lines],
            subtotal_fen=order.subtotal_fen,
            discount_fen=order.discount_fen,
            total_fen=order.total_fen,
            store_total_fen=sum(line.store_price_fen * line.quantity for line in order.lines),
            reserved_until=order.reserved_until,
            created_at=order.created_at,
            paid_at=order.paid_at,
            cancelled_at=order.cancelled_at,
            expired_at=order.expired_at,
            refunded_at=order.refunded_at,
        )


class PlacedOrderRead(OrderRead):
    """A new order; with ``pay`` asked for, its payment too. Should the payment not open (the provider
    unreachable), ``payment_error`` says why: the order stands, and POST /api/v1/orders/{id}/payments
    tries again."""

    payment: PaymentRead | None = None
    payment_error: dict[str, Any] | None = None


class OrderDetail(OrderRead):
    timeline: list[StatusChangeRead]

    @classmethod
    def with_timeline(cls, order: Order, history: list[OrderStatusChange]) -> OrderDetail:
        return cls(**OrderRead.of(order).model_dump(), timeline=[StatusChangeRead.of(h) for h in history])


class OrderAdminRead(OrderRead):
    user_id: int
    payment_provider: str | None
    payment_ref: str | None
    refund_ref: str | None

    @classmethod
    def of(cls, order: Order) -> OrderAdminRead:
        return cls(
            **OrderRead.of(order).model_dump(),
            user_id=order.user_id,
            payment_provider=order.payment_provider,
            payment_ref=order.payment_ref,
            refund_ref=order.refund_ref,
        )


class OrderPage(BaseModel):
    items: list[OrderRead]
    total: int
    page: int
    per_page: int


class OrderAdminPage(BaseModel):
    items: list[OrderAdminRead]
    total: int
    page: int
    per_page: int


class RefundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""


class CouponOfferRead(BaseModel):
    """One of the neighbour's coupons that fits the quote, and what it would take off."""

    coupon_id: int
    name: str
    kind: str
    discount_fen: int
    min_spend_fen: int
    valid_until: datetime


class QuoteRead(BaseModel):
    """The checkout sheet's price breakdown, computed by the server: the live price against the store
    price, the coupon's discount and the total; and the neighbour's coupons that fit, best first."""

    session_id: int
    lineup_item_id: int
    product_id: int
    product_name: str
    unit_price_fen: int
    store_price_fen: int
    quantity: int
    subtotal_fen: int
    discount_fen: int
    total_fen: int
    store_total_fen: int
    saving_fen: int
    stock_left: int
    per_user_limit: int
    held: int
    max_quantity: int
    live_price_fen: int
    coupon_id: int | None
    coupon_name: str | None
    coupon_discount_fen: int
    coupons: list[CouponOfferRead]


class CheckoutPlaceRead(BaseModel):
    """A place an order can be picked up: a pickup point of the neighbour's community, or a store."""

    id: int
    name: str
    address: str


class CheckoutOptionsRead(BaseModel):
    """What the checkout sheet offers before the first tap: the phone to prefill, the neighbour's
    community and its open pickup points (the first is the default), and the open stores."""

    contact_phone: str
    community_id: int | None
    community_name: str | None
    pickup_points: list[CheckoutPlaceRead]
    stores: list[CheckoutPlaceRead]
