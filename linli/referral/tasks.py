"""The referral domain's background work: its consumer of orders' and identity's events, and the
month-end close timer (``leaderboard.close_month_job``)."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.consumers import Consumer
from linli.core.errors import LinliError
from linli.core.events import Event
from linli.core.runtime import Runtime
from linli.identity.models import User
from linli.orders.errors import OrderNotFound
from linli.referral import events, service, shares

log = logging.getLogger(__name__)

CONSUMER = "referral.attribution"
PRERENDER = "referral.posters"
# Drawn the moment the payment is recorded, so the neighbour coming back from the cashier finds them.
PRERENDERED_FORMATS = ("moments", "chat")


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


def poster_prerender_consumer(runtime: Runtime) -> Consumer:
    """On ``order.paid``, draw the buyer's default posters into the cache before they are asked for.

    Only files are written (idempotent: a poster already cached is left alone); it starts at the end of the
    log, so a new install does not draw every past order's poster."""

    async def handler(session: AsyncSession, event: Event) -> None:
        if event.order_id is None or event.user_id is None:
            return
        user = await session.get(User, event.user_id)
        if user is None:
            return
        for fmt in PRERENDERED_FORMATS:
            try:
                await shares.poster_file(session, runtime, event.order_id, user, fmt=fmt, line=None)
            except LinliError as exc:
                # Refunded or gone meanwhile: nothing to draw.
                log.info("no poster for order %s: %s", event.order_id, exc.message)
                return

    return Consumer(
        name=PRERENDER, handler=handler, types=frozenset({events.ORDER_PAID}), from_beginning=False
    )
