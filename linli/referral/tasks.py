"""The referral domain's background work: its consumer of orders' and identity's events, and the
month-end close timer (``leaderboard.close_month_job``)."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.consumers import Consumer
from linli.core.events import Event
from linli.orders.errors import OrderNotFound
from linli.referral import events, service

log = logging.getLogger(__name__)

CONSUMER = "referral.attribution"


async def _on_event(session: AsyncSession, event: Event) -> None:
    """Idempotent by construction: a paid order converts once (unique referee and order), a refund
    reverses once, a login attaches only bindings still anonymous."""
    if event.type == events.ORDER_PAID and event.order_id is not None:
        try:
            await service.attribute_first_order(session, event.order_id)
        except OrderNotFound:
            log.warning("order.paid %s names a missing order %s", event.id, event.order_id)
    elif event.type == events.ORDER_REFUNDED and event.order_id is not None:
        await service.reverse_conversion(session, event.order_id, reason="refunded", now=event.occurred_at)
    elif event.type == events.LOGGED_IN and event.anonymous_id and event.user_id is not None:
        await service.attach_user(session, anonymous_id=event.anonymous_id, user_id=event.user_id)


def attribution_consumer() -> Consumer:
    return Consumer(
        name=CONSUMER,
        handler=_on_event,
        types=frozenset({events.ORDER_PAID, events.ORDER_REFUNDED, events.LOGGED_IN}),
    )
