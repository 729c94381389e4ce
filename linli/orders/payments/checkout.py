"""Starting a payment of another purpose than the order's own total (a delivery fee) with a provider: the
same open-then-ask-the-provider steps as paying an order (``api.create_payment``), for the domain that
owns what is paid for. Called at the edge: with a provider that is another party it commits the
payment first and holds no transaction while waiting for it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.errors import BadRequest
from linli.core.runtime import Runtime
from linli.orders.models import Order
from linli.orders.payments import service
from linli.orders.payments.models import Payment, PaymentPurpose
from linli.orders.payments.providers import get_provider, get_providers, notify_url
from linli.orders.payments.providers.base import PaymentOrder, Scene
from linli.orders.payments.providers.sandbox import NAME as SANDBOX


def default_scene(scenes: frozenset[Scene], payer_openid: str | None) -> Scene:
    """Inside WeChat (an openid is known) JSAPI; elsewhere the provider's page (cashier, H5)."""
    if payer_openid and Scene.jsapi in scenes:
        return Scene.jsapi
    for scene in (Scene.cashier, Scene.h5, Scene.jsapi):
        if scene in scenes:
            return scene
    raise BadRequest("this provider offers no way to pay here")


def page_provider(runtime: Runtime) -> str:
    """The provider a page pays with when the neighbour is not asked: the sandbox where it is on."""
    names = list(get_providers(runtime))
    if not names:
        raise BadRequest("no payment provider is configured here")
    return SANDBOX if SANDBOX in names else names[0]


async def start_payment(
    session: AsyncSession,
    runtime: Runtime,
    order: Order,
    *,
    purpose: PaymentPurpose,
    amount_fen: int,
    description: str,
    provider_name: str,
    scene: Scene | None = None,
    payer_openid: str | None = None,
    payer_ip: str | None = None,
) -> Payment:
    """The open payment of ``amount_fen`` for ``purpose`` of ``order`` with the provider, with what the
    client needs to pay (``checkout``). The same order, purpose, provider and scene reuse one payment.
    The caller has checked that the neighbour owns the order and that the amount is due."""
    provider = get_provider(runtime, provider_name)
    scene = scene or default_scene(provider.scenes, payer_openid)
    if scene not in provider.scenes:
        raise BadRequest(f"{provider.name} does not offer the {scene.value} scene")
    payment = await service.open_payment(
        session, order, provider=provider, scene=scene, purpose=purpose, amount_fen=amount_fen
    )
    if payment.checkout is not None:
        return payment
    request_to_provider = PaymentOrder(
        out_trade_no=payment.out_trade_no,
        amount_fen=payment.amount_fen,
        description=description,
        scene=scene,
        notify_url=notify_url(runtime, provider.name),
        payer_openid=payer_openid,
        payer_ip=payer_ip,
    )
    payment_id = payment.id
    if not getattr(provider, "local_checkout", False):
        await session.commit()
    checkout = await provider.create_payment(request_to_provider)
    return await service.attach_checkout(session, payment_id, checkout)
