"""The groupbuy domain's background work: the counting consumer and the durable cutoff timer."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.clock import as_utc
from linli.core.consumers import Consumer, batching
from linli.core.events import Event
from linli.core.jobs import Job
from linli.groupbuy import events, fees, service
from linli.groupbuy.service import CUTOFF_JOB
from linli.orders import service as orders

log = logging.getLogger(__name__)

__all__ = ["CONSUMER", "CUTOFF_JOB", "count_consumer", "cutoff_job"]

CONSUMER = "groupbuy.count"
TYPES = frozenset({events.ORDER_PAID, events.ORDER_REFUNDED, events.ORDER_CANCELLED, events.SESSION_ENDED})


async def handle(session: AsyncSession, event: Event) -> None:
    """Count a paid order into its group, take a refunded one back out (its delivery fee with it: no
    longer due, or refunded if paid online), and start the cutoff of a session that ended without an
    explicit one. Idempotent (see ``service`` and ``fees``): redelivery changes nothing."""
    if event.type == events.SESSION_ENDED:
        if event.session_id is not None:
            await service.session_ended(session, event.session_id, as_utc(event.occurred_at))
        return
    if event.order_id is None:
        return
    if event.type == events.ORDER_PAID:
        await service.count_paid_order(session, event.order_id, now=as_utc(event.occurred_at))
    else:
        await service.uncount_order(
            session, event.order_id, reason=f"order {event.order_id} {event.type[6:]}"
        )
        if event.type == events.ORDER_REFUNDED:
            order = await orders.get_order(session, event.order_id)
            await fees.order_refunded(session, order, now=as_utc(event.occurred_at))


async def count_paid(session: AsyncSession, paid: list[Event]) -> None:
    """A run of ``order.paid`` events counted at once (``service.count_paid_orders``)."""
    await service.count_paid_orders(
        session, [(e.order_id, e.occurred_at) for e in paid if e.order_id is not None]
    )


def count_consumer() -> Consumer:
    # From the beginning: orders paid before this consumer existed belong to their groups too. A group's
    # count may lag a rush by a few seconds: the orders go first, and what piled up is counted at once.
    return Consumer(
        name=CONSUMER,
        handler=handle,
        types=TYPES,
        from_beginning=True,
        yields_to_requests=True,
        batch_handler=batching(events.ORDER_PAID, count_paid, handle),
    )


async def cutoff_job(session: AsyncSession, job: Job) -> None:
    """``groupbuy.cutoff``: settle the session's open groups (idempotent, as jobs must be)."""
    session_id = job.payload.get("session_id")
    if not isinstance(session_id, int):
        log.warning("cutoff job %s has no session id: %r", job.id, job.payload)
        return
    await service.close_session(session, session_id)
