"""Durable work of payments: the sandbox processor's notification deliveries and refunds at providers.

Both talk to another party, so each first ends the job's transaction (it only read): the party may be
this very app on the same SQLite file, which could not write while we held the lock, and no row lock
may be held across a network call. Failures raise, and the job runner retries with exponential backoff;
handlers are idempotent (the provider refunds one ``out_refund_no`` once, notifications are deduped)."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.jobs import Job, JobHandler
from linli.core.runtime import Runtime
from linli.orders.payments import service
from linli.orders.payments.errors import ProviderRejected
from linli.orders.payments.models import Payment, Refund, RefundStatus
from linli.orders.payments.providers import delivery_client, get_provider, get_sandbox, notify_url
from linli.orders.payments.providers.base import RefundResult, ReportedStatus
from linli.orders.payments.providers.sandbox import DELIVER_JOB, deliver_notification

log = logging.getLogger("linli.payments")

REFUND_JOB = service.REFUND_JOB


def sandbox_delivery_handler(runtime: Runtime) -> JobHandler:
    async def deliver(session: AsyncSession, job: Job) -> None:
        body = str(job.payload["body"])
        await session.commit()
        sandbox = get_sandbox(runtime)
        await deliver_notification(
            delivery_client(runtime), notify_url(runtime, sandbox.name), sandbox.secret, body
        )

    return deliver


def refund_handler(runtime: Runtime) -> JobHandler:
    async def refund_at_provider(session: AsyncSession, job: Job) -> None:
        refund = await session.get(Refund, int(job.payload["refund_id"]))
        if refund is None or refund.status != RefundStatus.requested.value:
            return  # settled meanwhile (a notification, an earlier run whose completion was lost)
        payment = await session.get(Payment, refund.payment_id)
        assert payment is not None
        provider = get_provider(runtime, payment.provider)
        order = service.refund_order_for_provider(
            refund, payment, notify_url=notify_url(runtime, provider.name)
        )
        refund_id = refund.id
        await session.commit()
        try:
            result = await provider.refund(order)
        except ProviderRejected as exc:
            # Asking again would be refused again: the refund failed, and its amount is free again.
            log.error("provider %s refused refund %s: %s", provider.name, order.out_refund_no, exc.message)
            result = RefundResult(status=ReportedStatus.failed, refund_ref=None, raw={"error": exc.message})
        await service.settle_refund(session, refund_id, result)

    return refund_at_provider


def register(runtime: Runtime) -> None:
    """Add the payments job kinds (once, however often called)."""
    for kind, make in ((DELIVER_JOB, sandbox_delivery_handler), (REFUND_JOB, refund_handler)):
        if kind not in runtime.jobs.handlers:
            runtime.jobs.add(kind, make(runtime))
