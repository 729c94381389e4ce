"""The sandbox provider: a payment processor of our own that behaves like a real one.

Its cashier page (``/pay/sandbox/{out_trade_no}``) takes the neighbour's "pay" or "fail"; the processor
then sends a signed notification to ``/api/v1/payments/notify/sandbox`` from a durable job, late, retried
with backoff until acknowledged, and — as real processors do — sometimes twice, and sometimes followed by
a stale "failed" or "pending" for the same payment. It never touches the payment rows: the merchant side
learns of the payment from the notifications, or by asking (``query_payment``), as it would from a real
processor.

Signature: hex HMAC-SHA256 over ``timestamp\\nnonce\\nbody\\n`` with a key derived from the app's secret,
sent in the ``X-Sandbox-Timestamp``, ``X-Sandbox-Nonce`` and ``X-Sandbox-Signature`` headers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.clock import utcnow
from linli.core.db import Database
from linli.core.jobs import Job, schedule_job
from linli.orders.payments.errors import (
    InvalidSignature,
    MalformedNotification,
    PaymentClosed,
    ProviderUnavailable,
)
from linli.orders.payments.providers.base import (
    Checkout,
    Notification,
    NotificationKind,
    PaymentOrder,
    RefundOrder,
    RefundResult,
    ReportedStatus,
    Scene,
    check_window,
    lower_keys,
    queried_id,
)

NAME = "sandbox"
TIMESTAMP_HEADER = "X-Sandbox-Timestamp"
NONCE_HEADER = "X-Sandbox-Nonce"
SIGNATURE_HEADER = "X-Sandbox-Signature"
DELIVER_JOB = "payments.sandbox_deliver"
CASHIER_PATH = "/pay/sandbox/{out_trade_no}"


def sandbox_secret(app_secret: str) -> bytes:
    """The sandbox's signing key, derived from the app's secret so no extra setting is needed."""
    return hmac.new(app_secret.encode(), b"linli.payments.sandbox.v1", hashlib.sha256).digest()


def sign(secret: bytes, timestamp: str, nonce: str, body: bytes) -> str:
    message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def signed_headers(secret: bytes, body: bytes, *, now: datetime | None = None) -> dict[str, str]:
    """The headers the processor sends with ``body``: a fresh timestamp and nonce, and their signature."""
    timestamp = str(int((now or utcnow()).timestamp()))
    nonce = secrets.token_hex(16)
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: sign(secret, timestamp, nonce, body),
    }


def _derived(secret: bytes, prefix: str, value: str, length: int = 32) -> str:
    digest = hmac.new(secret, f"{prefix}:{value}".encode(), hashlib.sha256).hexdigest()
    return (prefix + digest)[:length]


def transaction_id(secret: bytes, out_trade_no: str) -> str:
    """The processor's id for the payment of ``out_trade_no``: the same however often it is paid."""
    return _derived(secret, "SBXT", out_trade_no)


class SandboxProvider:
    name = NAME
    scenes = frozenset({Scene.cashier})
    # Its checkout is our own cashier page: ``create_payment`` asks nobody, so it may run inside the
    # transaction that opens the payment (one transaction per payment instead of two).
    local_checkout = True

    def __init__(self, secret: bytes, *, window_seconds: int = 300, db: Database | None = None) -> None:
        self.secret = secret
        self.window_seconds = window_seconds
        # Where the processor keeps what it knows (its delivery jobs), for ``query_payment``.
        self.db = db

    async def create_payment(self, order: PaymentOrder) -> Checkout:
        return Checkout(scene=Scene.cashier, url=CASHIER_PATH.format(out_trade_no=order.out_trade_no))

    def claimed_id(self, headers: Mapping[str, str], body: bytes) -> str | None:
        try:
            value = json.loads(body).get("id")
        except (ValueError, AttributeError):
            return None
        return str(value)[:64] if value is not None else None

    def verify_notification(self, headers: Mapping[str, str], body: bytes, *, now: datetime) -> Notification:
        h = lower_keys(headers)
        timestamp = h.get(TIMESTAMP_HEADER.lower())
        nonce = h.get(NONCE_HEADER.lower())
        signature = h.get(SIGNATURE_HEADER.lower())
        if not (timestamp and nonce and signature):
            raise InvalidSignature("the notification carries no signature")
        check_window(timestamp, now, self.window_seconds)
        if not hmac.compare_digest(sign(self.secret, timestamp, nonce, body), signature.lower()):
            raise InvalidSignature("the notification's signature does not match")
        try:
            data = json.loads(body)
            status = ReportedStatus(data["status"])
            amount = data["amount_fen"]
            if not isinstance(amount, int) or isinstance(amount, bool):
                raise TypeError("amount_fen is not an integer")
            return Notification(
                notification_id=str(data["id"]),
                kind=NotificationKind.payment,
                status=status,
                out_trade_no=str(data["out_trade_no"]),
                provider_ref=str(data["transaction_id"]),
                amount_fen=amount,
                raw=data,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MalformedNotification(f"the notification cannot be read: {exc}") from None

    async def query_payment(self, out_trade_no: str) -> Notification:
        """What the processor knows of the payment: paid (its "paid" notification is scheduled, and says
        how much and under which transaction), failed, or not paid yet."""
        if self.db is None:
            raise ProviderUnavailable("the sandbox processor keeps no state here")
        async with self.db.sessionmaker() as session:
            keys = {"paid": _key(out_trade_no, "paid"), "failed": _key(out_trade_no, "failed")}
            bodies: dict[str, dict[str, Any]] = dict((await session.execute(_TOLD, keys)).all())
        told = bodies.get(keys["paid"]) or bodies.get(keys["failed"])
        if told is None:
            return Notification(
                notification_id=queried_id(out_trade_no, ReportedStatus.pending, None),
                kind=NotificationKind.payment,
                status=ReportedStatus.pending,
                out_trade_no=out_trade_no,
                provider_ref=None,
                amount_fen=None,
            )
        data = json.loads(told["body"])
        status = ReportedStatus(data["status"])
        return Notification(
            notification_id=queried_id(out_trade_no, status, data["transaction_id"]),
            kind=NotificationKind.payment,
            status=status,
            out_trade_no=out_trade_no,
            provider_ref=data["transaction_id"],
            amount_fen=data["amount_fen"],
            raw=data,
        )

    async def refund(self, order: RefundOrder) -> RefundResult:
        # The sandbox returns money at once, and once per out_refund_no (the same id every time).
        return RefundResult(
            status=ReportedStatus.succeeded,
            refund_ref=_derived(self.secret, "SBXR", order.out_refund_no),
            raw={"out_refund_no": order.out_refund_no, "amount_fen": order.amount_fen},
        )


# --- the processor's side: what happens when the neighbour taps a button on the cashier page -----------


def _notification_body(
    secret: bytes, *, out_trade_no: str, amount_fen: int, status: ReportedStatus, label: str, at: datetime
) -> str:
    body: dict[str, Any] = {
        "id": _derived(secret, "SBXN", f"{out_trade_no}:{label}"),
        "event_type": f"payment.{status.value}",
        "created_at": at.isoformat(),
        "out_trade_no": out_trade_no,
        "transaction_id": transaction_id(secret, out_trade_no),
        "amount_fen": amount_fen,
        "status": status.value,
    }
    return json.dumps(body, sort_keys=True)


# What the processor told about a payment (its "paid" or "failed" notification), built once.
_TOLD = select(Job.key, Job.payload).where(Job.key.in_([bindparam("paid"), bindparam("failed")]))
_PAID = select(Job.id).where(Job.key == bindparam("paid"))


def _key(out_trade_no: str, label: str) -> str:
    return f"sandbox:{out_trade_no}:{label}"


async def processor_has_paid(session: AsyncSession, out_trade_no: str) -> bool:
    """Whether the sandbox processor took money for ``out_trade_no`` (it keeps that in its own jobs)."""
    found = await session.scalar(_PAID, {"paid": _key(out_trade_no, "paid")})
    return found is not None


async def process_cashier_action(
    session: AsyncSession,
    *,
    secret: bytes,
    out_trade_no: str,
    amount_fen: int,
    succeed: bool,
    delay_seconds: float,
    duplicate_rate: float,
    stale_rate: float,
    max_attempts: int,
    rng: random.Random | None = None,
) -> bool:
    """Take the neighbour's "pay" (``succeed``) or "fail" and schedule the notifications about it.

    Idempotent: paying twice takes the money once (returns False the second time); failing after paying
    is refused. Deliveries are durable jobs, sent after this transaction commits."""
    rng = rng or random.Random()
    now = utcnow()
    first = now + timedelta(seconds=delay_seconds)
    if await processor_has_paid(session, out_trade_no):
        if succeed:
            return False
        raise PaymentClosed("this payment has already been paid")
    if not succeed:
        body = _notification_body(
            secret,
            out_trade_no=out_trade_no,
            amount_fen=amount_fen,
            status=ReportedStatus.failed,
            label="failed",
            at=now,
        )
        await schedule_job(
            session,
            DELIVER_JOB,
            first,
            {"body": body},
            key=_key(out_trade_no, "failed"),
            max_attempts=max_attempts,
        )
        return True
    body = _notification_body(
        secret,
        out_trade_no=out_trade_no,
        amount_fen=amount_fen,
        status=ReportedStatus.succeeded,
        label="paid",
        at=now,
    )
    await schedule_job(
        session, DELIVER_JOB, first, {"body": body}, key=_key(out_trade_no, "paid"), max_attempts=max_attempts
    )
    if rng.random() < duplicate_rate:
        # The same notification again, as a processor does when it never saw our answer.
        await schedule_job(
            session,
            DELIVER_JOB,
            first + timedelta(milliseconds=300),
            {"body": body},
            key=_key(out_trade_no, "paid:again"),
            max_attempts=max_attempts,
        )
    if rng.random() < stale_rate:
        # An earlier state of the payment, delivered after the success.
        stale = rng.choice((ReportedStatus.failed, ReportedStatus.pending))
        stale_body = _notification_body(
            secret,
            out_trade_no=out_trade_no,
            amount_fen=amount_fen,
            status=stale,
            label=f"stale:{stale.value}",
            at=now - timedelta(seconds=1),
        )
        await schedule_job(
            session,
            DELIVER_JOB,
            first + timedelta(milliseconds=600),
            {"body": stale_body},
            key=_key(out_trade_no, "paid:stale"),
            max_attempts=max_attempts,
        )
    return True


class DeliveryRefused(Exception):
    """The merchant did not acknowledge a notification: the job fails and is tried again later."""


async def deliver_notification(client: httpx.AsyncClient, url: str, secret: bytes, body: str) -> int:
    """POST one signed notification (signed afresh, so a retry hours later is inside the window)."""
    raw = body.encode()
    try:
        response = await client.post(url, content=raw, headers=signed_headers(secret, raw))
    except httpx.HTTPError as exc:
        raise DeliveryRefused(f"could not reach {url}: {type(exc).__name__}: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryRefused(f"{url} answered {response.status_code}: {response.text[:200]}")
    return response.status_code
