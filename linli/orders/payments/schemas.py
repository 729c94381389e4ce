"""API shapes of payments. Money is integer fen."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from linli.orders.payments.models import Payment
from linli.orders.payments.providers.base import Scene


class PaymentCreate(BaseModel):
    """Start paying an order: which provider, and how the client will pay (its default scene if left out)."""

    model_config = ConfigDict(extra="forbid")

    provider: Annotated[str, Field(min_length=1, max_length=16, examples=["sandbox", "wechatpay"])] = (
        "sandbox"
    )
    scene: Scene | None = Field(
        default=None, description="sandbox: cashier; wechatpay: jsapi (inside WeChat) or h5 (other browsers)"
    )
    payer_openid: Annotated[str | None, Field(max_length=128)] = Field(
        default=None, description="The payer's openid for the merchant's appid (WeChat JSAPI only)"
    )


class CheckoutRead(BaseModel):
    """What the client does next: open ``url`` (the sandbox cashier, WeChat's H5 page), or pass ``params``
    to ``WeixinJSBridge.invoke('getBrandWCPayRequest', params)`` / ``wx.requestPayment``."""

    scene: Scene
    url: str | None = None
    params: dict[str, str] | None = None


class PaymentRead(BaseModel):
    id: int
    order_id: int
    # "order" (the order's total) or "delivery_fee" (a below-threshold group's delivery fee).
    purpose: str
    provider: str
    scene: Scene
    out_trade_no: str
    amount_fen: int
    refunded_fen: int
    status: str
    created_at: datetime
    succeeded_at: datetime | None
    checkout: CheckoutRead | None

    @classmethod
    def of(cls, payment: Payment) -> PaymentRead:
        checkout: dict[str, Any] | None = payment.checkout
        return cls(
            id=payment.id,
            order_id=payment.order_id,
            purpose=payment.purpose,
            provider=payment.provider,
            scene=Scene(payment.scene),
            out_trade_no=payment.out_trade_no,
            amount_fen=payment.amount_fen,
            refunded_fen=payment.refunded_fen,
            status=payment.status,
            created_at=payment.created_at,
            succeeded_at=payment.succeeded_at,
            checkout=CheckoutRead(
                scene=checkout["scene"], url=checkout.get("url"), params=checkout.get("params")
            )
            if checkout
            else None,
        )


class PaymentConfirmRead(BaseModel):
    """Where the order's payments stand after the processor was asked about the open ones."""

    order_id: int
    order_status: str
    payments: list[PaymentRead]


class SandboxResult(enum.StrEnum):
    succeeded = "succeeded"
    failed = "failed"


class SandboxAction(BaseModel):
    """What the payer does on the sandbox cashier: pay, or make the payment fail."""

    model_config = ConfigDict(extra="forbid")

    result: SandboxResult = SandboxResult.succeeded


class SandboxActionRead(BaseModel):
    out_trade_no: str
    result: SandboxResult
    # False when the processor had already taken this payment (a second tap on 支付 takes no more money).
    accepted: bool


class NotificationAck(BaseModel):
    """The documented acknowledgement (WeChat Pay's shape): sent only after the change is committed."""

    code: str = "SUCCESS"
    message: str = "成功"
