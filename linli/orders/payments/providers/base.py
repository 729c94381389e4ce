"""What every payment provider offers, in our words: open a payment, read a notification, refund."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from linli.orders.payments.errors import InvalidSignature


class Scene(enum.StrEnum):
    """How the neighbour pays: the sandbox cashier page, WeChat inside WeChat (JSAPI) or in a browser (H5)."""

    cashier = "cashier"
    jsapi = "jsapi"
    h5 = "h5"


class NotificationKind(enum.StrEnum):
    payment = "payment"
    refund = "refund"


class ReportedStatus(enum.StrEnum):
    """What a notification says happened, in our words."""

    succeeded = "succeeded"
    failed = "failed"
    pending = "pending"


@dataclass(frozen=True, slots=True)
class PaymentOrder:
    """What a provider needs to open a payment."""

    out_trade_no: str
    amount_fen: int
    description: str
    scene: Scene
    notify_url: str
    expires_at: datetime | None = None
    payer_openid: str | None = None
    payer_ip: str | None = None


@dataclass(frozen=True, slots=True)
class Checkout:
    """What the client needs to pay: a URL to open, or parameters for WeChat's JSAPI ``requestPayment``."""

    scene: Scene
    url: str | None = None
    params: dict[str, str] | None = None
    # The provider's id for the open payment (WeChat's prepay_id), kept for the record.
    prepay_ref: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "scene": self.scene.value,
            "url": self.url,
            "params": self.params,
            "prepay_ref": self.prepay_ref,
        }


@dataclass(frozen=True, slots=True)
class Notification:
    """A verified notification, normalised: which payment (or refund), what happened, for how much."""

    notification_id: str
    kind: NotificationKind
    status: ReportedStatus
    out_trade_no: str
    provider_ref: str | None
    amount_fen: int | None
    out_refund_no: str | None = None
    refund_ref: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RefundOrder:
    """What a provider needs to return money: which payment, our refund id, how much of how much."""

    out_trade_no: str
    provider_ref: str | None
    out_refund_no: str
    amount_fen: int
    total_fen: int
    reason: str
    notify_url: str


@dataclass(frozen=True, slots=True)
class RefundResult:
    """The provider's answer to a refund: done, accepted (result by notification), or refused."""

    status: ReportedStatus
    refund_ref: str | None
    raw: dict[str, Any] = field(default_factory=dict)


def check_window(timestamp: str, now: datetime, window_seconds: int) -> None:
    """Refuse a signed message sent more than ``window_seconds`` from ``now``: a replay, or a bad clock."""
    try:
        sent = int(timestamp)
    except ValueError:
        raise InvalidSignature("the timestamp is not a number") from None
    if abs(now.timestamp() - sent) > window_seconds:
        raise InvalidSignature(
            f"the timestamp is more than {window_seconds} seconds away: refused as a replay"
        )


def lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names are case-insensitive; providers look them up in lower case."""
    return {key.lower(): value for key, value in headers.items()}


class PaymentProvider(Protocol):
    """A payment processor. Calls that talk to it (``create_payment``, ``refund``) must run outside any
    database transaction; ``verify_notification`` is pure and raises ``InvalidSignature`` or
    ``MalformedNotification`` before anything is trusted."""

    name: str
    scenes: frozenset[Scene]

    async def create_payment(self, order: PaymentOrder) -> Checkout: ...

    def verify_notification(
        self, headers: Mapping[str, str], body: bytes, *, now: datetime
    ) -> Notification: ...

    def claimed_id(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """The id an unverified notification says it has, for the record of its rejection only."""
        ...

    async def refund(self, order: RefundOrder) -> RefundResult: ...

    async def query_payment(self, out_trade_no: str) -> Notification:
        """Ask the processor what became of a payment (the merchant's order query), for when its
        notification is late: its answer, trusted only as far as a notification is (verified), as a
        payment ``Notification`` whose id names the query and the transaction."""
        ...


def queried_id(out_trade_no: str, status: ReportedStatus, provider_ref: str | None) -> str:
    """The record id of a query's answer: one per transaction and outcome, so asking again is a
    duplicate of the first answer, and a notification of the same payment is recorded beside it."""
    return f"query:{provider_ref or out_trade_no}:{status.value}"[:64]
