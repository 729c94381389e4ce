"""Payments test harness: real orders from the orders service, the app's own sandbox processor, and its
notifications delivered back into the app through an injected HTTP client (httpx's ASGI transport)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from linli.core.clock import utcnow
from linli.core.db import Database
from linli.core.events import Event
from linli.core.jobs import Job, run_due_jobs
from linli.core.runtime import Runtime
from linli.orders import service as orders
from linli.orders.models import Order
from linli.orders.payments.config import PaymentSettings
from linli.orders.payments.models import Payment, PaymentNotification, Refund
from linli.orders.payments.providers import DELIVERY_CLIENT_KEY, SETTINGS_KEY, get_sandbox
from linli.orders.payments.providers.sandbox import signed_headers, transaction_id
from tests.orders.conftest import Caller
from tests.orders.factories import Sale

NOTIFY = "/api/v1/payments/notify/sandbox"


class FlakyTransport(httpx.AsyncBaseTransport):
    """Answers 500 to the first ``failures`` requests (the app "down"), then hands them to ``inner``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, failures: int = 0) -> None:
        self.inner = inner
        self.failures = failures
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls <= self.failures:
            return httpx.Response(500, json={"error": "InternalError", "detail": "down for a moment"})
        return await self.inner.handle_async_request(request)


@dataclass
class Payments:
    app: FastAPI
    client: httpx.AsyncClient
    runtime: Runtime
    transport: FlakyTransport
    clock: datetime = field(default_factory=utcnow)

    @property
    def db(self) -> Database:
        return self.runtime.db

    @property
    def secret(self) -> bytes:
        return get_sandbox(self.runtime).secret

    async def order(self, caller: Caller, sale: Sale, quantity: int = 1) -> Order:
        async with self.db.sessionmaker() as session:
            order = await orders.create_order(session, caller.user, sale.order(quantity))
            await session.commit()
        return order

    async def start(self, caller: Caller, order_id: int, **body: Any) -> dict[str, Any]:
        response = await self.client.post(
            f"/api/v1/orders/{order_id}/payments",
            json=body or {"provider": "sandbox"},
            headers=caller.headers,
        )
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    async def tap(self, caller: Caller, out_trade_no: str, result: str = "succeeded") -> dict[str, Any]:
        response = await self.client.post(
            f"/api/v1/payments/sandbox/{out_trade_no}", json={"result": result}, headers=caller.headers
        )
        assert response.status_code == 202, response.text
        data: dict[str, Any] = response.json()
        return data

    async def confirm(self, caller: Caller, order_id: int) -> httpx.Response:
        """Back from the cashier: ``POST /api/v1/orders/{order_id}/payments/confirm``."""
        return await self.client.post(f"/api/v1/orders/{order_id}/payments/confirm", headers=caller.headers)

    async def run_jobs(self, *, seconds: float = 5) -> int:
        """Move the test's clock on and fire every job due by then (once each). The clock never lags
        the real one: jobs scheduled "now" by the app use the real time, and a loaded machine can take
        longer than ``seconds`` between the fixture's start and this call."""
        self.clock = max(self.clock, utcnow()) + timedelta(seconds=seconds)
        return await run_due_jobs(self.db, self.runtime.jobs, now=self.clock)

    async def drain(self, *, rounds: int = 10) -> None:
        for _ in range(rounds):
            if not await self.run_jobs(seconds=4000):
                return

    async def notify(self, body: dict[str, Any], *, headers: dict[str, str] | None = None) -> httpx.Response:
        raw = json.dumps(body).encode()
        return await self.client.post(
            NOTIFY, content=raw, headers=headers or signed_headers(self.secret, raw)
        )

    def notification(
        self, out_trade_no: str, *, amount_fen: int, status: str = "succeeded", id: str | None = None
    ) -> dict[str, Any]:
        """A notification as the sandbox processor writes it."""
        return {
            "id": id or f"N-{out_trade_no}-{status}",
            "event_type": f"payment.{status}",
            "created_at": utcnow().isoformat(),
            "out_trade_no": out_trade_no,
            "transaction_id": transaction_id(self.secret, out_trade_no),
            "amount_fen": amount_fen,
            "status": status,
        }

    async def payment(self, out_trade_no: str) -> Payment:
        async with self.db.sessionmaker() as session:
            payment = await session.scalar(select(Payment).where(Payment.out_trade_no == out_trade_no))
        assert payment is not None
        return payment

    async def order_status(self, order_id: int) -> str:
        async with self.db.sessionmaker() as session:
            status = await session.scalar(select(Order.status).where(Order.id == order_id))
        assert status is not None
        return status

    async def events(self, type_: str) -> list[Event]:
        async with self.db.sessionmaker() as session:
            return list(
                (await session.scalars(select(Event).where(Event.type == type_).order_by(Event.id))).all()
            )

    async def notifications(self) -> list[PaymentNotification]:
        async with self.db.sessionmaker() as session:
            query = select(PaymentNotification).order_by(PaymentNotification.id)
            return list((await session.scalars(query)).all())

    async def refunds(self) -> list[Refund]:
        async with self.db.sessionmaker() as session:
            return list((await session.scalars(select(Refund).order_by(Refund.id))).all())

    async def jobs(self, kind: str) -> list[Job]:
        async with self.db.sessionmaker() as session:
            return list((await session.scalars(select(Job).where(Job.kind == kind).order_by(Job.id))).all())

    async def count(self, model: type[Any]) -> int:
        async with self.db.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def calm_settings(**overrides: Any) -> PaymentSettings:
    """The sandbox without its surprises unless a test asks for them."""
    values: dict[str, Any] = {
        "sandbox_delay_seconds": 1.0,
        "sandbox_duplicate_rate": 0.0,
        "sandbox_stale_rate": 0.0,
    }
    return PaymentSettings(**{**values, **overrides})


def wire(runtime: Runtime, app: FastAPI, settings: PaymentSettings, *, failures: int = 0) -> FlakyTransport:
    """Give the runtime its payment settings and the HTTP client its sandbox processor posts with."""
    transport = FlakyTransport(httpx.ASGITransport(app=app), failures=failures)
    runtime.extras[SETTINGS_KEY] = settings
    runtime.extras[DELIVERY_CLIENT_KEY] = httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1:8000"
    )
    return transport


@pytest.fixture
def payment_settings() -> PaymentSettings:
    return calm_settings()


@pytest.fixture
async def pay(
    app: FastAPI, client: httpx.AsyncClient, runtime: Runtime, payment_settings: PaymentSettings
) -> AsyncIterator[Payments]:
    transport = wire(runtime, app, payment_settings)
    yield Payments(app=app, client=client, runtime=runtime, transport=transport)
    await runtime.extras[DELIVERY_CLIENT_KEY].aclose()
