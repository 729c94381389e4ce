"""Where an approved refund reaches the payment provider: the seam between orders and payments.

``approve_refund`` (service) calls :func:`request_provider_refund` after moving the order to
``refund_requested``. The payments side fills it in: find the order's captured payment, ask its provider for
a refund (or schedule that call as a durable job, so it happens after the commit), return True; when the
provider confirms, it calls ``service.mark_refunded(session, order_id, provider_ref=...)``. Until then — and
for orders that were never paid through a provider — it returns False and the order is marked refunded at
once.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from linli.orders.models import Order


async def request_provider_refund(session: AsyncSession, order: Order, *, actor_id: int | None) -> bool:
    """Start refunding ``order``'s payment at its provider, inside the caller's transaction.

    True: a refund is under way and the provider's notification will mark the order refunded.
    False: there is no provider payment to refund; the caller marks the order refunded itself."""
    # Imported here: payments builds on the orders service, which imports this module.
    from linli.orders.payments.service import ensure_order_refund

    return await ensure_order_refund(session, order.id, actor_id=actor_id, reason=f"订单{order.id}退款")
