"""Durable timers of the orders domain: the reservation expiry, fired by the job runner after any restart."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.jobs import Job
from linli.orders import service
from linli.orders.errors import OrderNotFound

log = logging.getLogger(__name__)

EXPIRE_RESERVATION = service.EXPIRE_RESERVATION


async def expire_reservation_job(session: AsyncSession, job: Job) -> None:
    """``orders.expire_reservation``: expire the order if it is still unpaid (idempotent, as jobs must be)."""
    order_id = job.payload.get("order_id")
    if not isinstance(order_id, int):
        log.warning("expiry job %s has no order id: %r", job.id, job.payload)
        return
    try:
        await service.expire_order(session, order_id)
    except OrderNotFound:
        log.warning("expiry job %s: order %s no longer exists", job.id, order_id)
