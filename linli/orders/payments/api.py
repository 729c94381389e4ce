"""JSON routes: a neighbour starts paying their order; providers post their notifications; the sandbox
processor's cashier has a JSON twin for clients and the simulator."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Request
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import JSONResponse, Response

from linli.core.clock import utcnow
from linli.core.db import Database
from linli.core.deps import RuntimeDep, SessionDep
from linli.core.errors import BadRequest, LinliError, PayloadTooLarge
from linli.core.lane import Lane
from linli.core.runtime import Runtime
from linli.identity.deps import CurrentUser, client_address
from linli.orders import service as orders
from linli.orders.checkout import PayWith
from linli.orders.errors import OrderNotFound
from linli.orders.models import Order
from linli.orders.payments import service
from linli.orders.payments.errors import PaymentNotFound
from linli.orders.payments.models import NotificationOutcome, Payment
from linli.orders.payments.providers import (
    get_provider,
    notify_url,
    payment_settings,
    sandbox_cashier_action,
)
from linli.orders.payments.providers.base import PaymentOrder, PaymentProvider, Scene
from linli.orders.payments.providers.sandbox import NAME as SANDBOX
from linli.orders.payments.schemas import (
    NotificationAck,
    PaymentConfirmRead,
    PaymentCreate,
    PaymentRead,
    SandboxAction,
    SandboxActionRead,
    SandboxResult,
)

router = APIRouter()
order_payments = APIRouter(prefix="/api/v1/orders", tags=["payments"])
payments = APIRouter(prefix="/api/v1/payments", tags=["payments"])

OrderId = Annotated[int, Path(ge=1, le=2**62)]
OutTradeNo = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
ProviderName = Annotated[str, Path(min_length=1, max_length=16)]
# Notifications are a few KB; anything far larger is not one.
MAX_NOTIFICATION_BYTES = 64 * 1024
# A payment is asked about at most this often per process (``confirm_payment``), for this many payments.
CONFIRM_INTERVAL_SECONDS = 1.0
CONFIRM_REMEMBERED = 50_000
CONFIRM_ASKED = "payments.confirm_asked"
LANE_KEY = "orders.payments.lane"
# The lane's connections: payments taken at once (each holds the item row for a round trip or two; more
# would only queue on that row, and every app process opens its own).
LANE_CONNECTIONS = 4

log = logging.getLogger("linli.payments")


@order_payments.post("/{order_id}/payments", response_model=PaymentRead, status_code=201)
async def create_payment(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: CurrentUser,
    order_id: OrderId,
    data: PaymentCreate,
) -> PaymentRead:
    """Start (or resume) paying your order. Answers what the client does next in ``checkout``.

    The same order, provider and scene reuse one payment, so a retry never opens a second one."""
    way = way_to_pay(runtime, data)
    return await start_payment(request, session, runtime, user.id, order_id, way)


@dataclass(frozen=True, slots=True)
class WayToPay:
    """How a neighbour asked to pay (``PaymentCreate``), checked: the provider, the scene, the payer."""

    provider: PaymentProvider
    scene: Scene
    payer_openid: str | None

    @property
    def local_checkout(self) -> bool:
        """The provider's checkout needs nobody else (the sandbox's cashier is ours)."""
        return bool(getattr(self.provider, "local_checkout", False))


def way_to_pay(runtime: Runtime, data: PaymentCreate) -> WayToPay:
    """The provider and scene ``data`` asks for, or why not (``UnknownProvider``, ``BadRequest``):
    checked before anything is written."""
    provider = get_provider(runtime, data.provider)
    scene = data.scene or _default_scene(provider.scenes, data.payer_openid)
    if scene not in provider.scenes:
        raise BadRequest(f"{provider.name} does not offer the {scene.value} scene")
    return WayToPay(provider, scene, data.payer_openid)


def pay_with(request: Request, runtime: Runtime, way: WayToPay | None) -> PayWith | None:
    """The payment the checkout opens in the order's own transaction: only a provider whose checkout
    needs nobody else (the sandbox); another party is asked after the order is placed."""
    if way is None or not way.local_checkout:
        return None
    return PayWith(
        way.provider,
        way.scene,
        notify_url=notify_url(runtime, way.provider.name),
        payer_ip=client_address(request),
    )


async def start_payment(
    request: Request, session: AsyncSession, runtime: Runtime, user_id: int, order_id: int, way: WayToPay
) -> PaymentRead:
    """Open (or resume) the payment of ``user_id``'s order ``order_id`` the ``way`` asked for: this
    route's work, and ``POST /api/v1/orders`` with ``pay``'s."""
    provider, scene = way.provider, way.scene
    order = await orders.get_payable_order(session, order_id, user_id=user_id, now=utcnow())

    def told(out_trade_no: str) -> PaymentOrder:
        return service.payment_order(
            out_trade_no,
            scene,
            order,
            notify_url=notify_url(runtime, provider.name),
            payer_openid=way.payer_openid,
            payer_ip=client_address(request),
        )

    if way.local_checkout:
        # Nobody to wait for (the sandbox's cashier is ours): the checkout goes in with the payment.
        out_trade_no = service.new_out_trade_no()
        checkout = await provider.create_payment(told(out_trade_no))
        payment = await service.open_payment(
            session, order, provider=provider, scene=scene, out_trade_no=out_trade_no, checkout=checkout
        )
        if payment.checkout is None:  # an open payment from before, still without its checkout
            payment = await service.attach_checkout(session, payment.id, checkout)
        return PaymentRead.of(payment)
    payment = await service.open_payment(session, order, provider=provider, scene=scene)
    if payment.checkout is not None:
        return PaymentRead.of(payment)
    # The provider is another party: commit the payment first (a retry reuses its out_trade_no) and hold
    # no transaction — nor, on SQLite, the write lock — while waiting for it.
    payment_id, request_to_provider = payment.id, told(payment.out_trade_no)
    await session.commit()
    checkout = await provider.create_payment(request_to_provider)
    return PaymentRead.of(await service.attach_checkout(session, payment_id, checkout))


def _default_scene(scenes: frozenset[Scene], payer_openid: str | None) -> Scene:
    """Inside WeChat (an openid is known) JSAPI; elsewhere the provider's page (cashier, H5)."""
    if payer_openid and Scene.jsapi in scenes:
        return Scene.jsapi
    for scene in (Scene.cashier, Scene.h5, Scene.jsapi):
        if scene in scenes:
            return scene
    raise BadRequest("this provider offers no way to pay here")


@order_payments.get("/{order_id}/payments", response_model=list[PaymentRead])
async def list_payments(session: SessionDep, user: CurrentUser, order_id: OrderId) -> list[PaymentRead]:
    """Your order's payments, oldest first."""
    order = await orders.get_order_of(session, order_id, user.id)
    return [PaymentRead.of(p) for p in await service.payments_of_order(session, order.id)]


@order_payments.post("/{order_id}/payments/confirm", response_model=PaymentConfirmRead)
async def confirm_payment(
    session: SessionDep, runtime: RuntimeDep, user: CurrentUser, order_id: OrderId
) -> PaymentConfirmRead:
    """Back from the cashier: has my payment gone through? The processor is asked about your order's
    open payments (查单: in a rush its notification may come late), and what it answers is taken as
    that notification would be — the money once, whichever comes first. Asked at most once a second per
    payment (``CONFIRM_INTERVAL_SECONDS``); a processor that does not answer leaves it to the
    notification. Answers where the order and its payments stand."""
    status, payments_ = await _standing(session, order_id, user.id)
    asks = [
        (payment.provider, payment.out_trade_no)
        for payment in payments_
        if payment.status in service.OPEN_STATUSES and _may_ask(runtime, payment.out_trade_no)
    ]
    if asks:
        await session.commit()  # no transaction held while the processor answers
        refund_max_attempts = payment_settings(runtime).refund_max_attempts
        taken = False
        for provider_name, out_trade_no in asks:
            try:
                provider = get_provider(runtime, provider_name)
                answer = await provider.query_payment(out_trade_no)
            except LinliError as exc:
                log.warning("could not ask %s about %s: %s", provider_name, out_trade_no, exc.message)
                continue
            receipt = await settle(
                runtime,
                partial(
                    service.take_query_answer,
                    provider=provider,
                    answer=answer,
                    refund_max_attempts=refund_max_attempts,
                ),
            )
            if receipt.error is not None:
                log.error("%s's answer about %s was refused: %s", provider_name, out_trade_no, receipt.error)
            taken = taken or receipt.outcome is not NotificationOutcome.stale
        if taken:
            status, payments_ = await _standing(session, order_id, user.id)
    return PaymentConfirmRead(
        order_id=order_id, order_status=status, payments=[PaymentRead.of(p) for p in payments_]
    )


# Built once: every neighbour back from the cashier asks it, in a rush thousands at once.
_STANDING = (
    select(Order.user_id, Order.status, Payment)
    .outerjoin(Payment, Payment.order_id == Order.id)
    .where(Order.id == bindparam("order_id"))
    .order_by(Payment.id)
    .execution_options(populate_existing=True)
)


async def _standing(session: AsyncSession, order_id: int, user_id: int) -> tuple[str, list[Payment]]:
    """The caller's order's status and its payments, in one query (``OrderNotFound`` when the order is
    not theirs)."""
    rows = (await session.execute(_STANDING, {"order_id": order_id})).all()
    if not rows or rows[0][0] != user_id:
        raise OrderNotFound(f"no order with id {order_id}", order_id=order_id)
    return str(rows[0][1]), [payment for _, _, payment in rows if payment is not None]


def _may_ask(runtime: Runtime, out_trade_no: str) -> bool:
    """At most one query a ``CONFIRM_INTERVAL_SECONDS`` per payment in this process: a neighbour
    tapping (or a script calling) again and again does not become a stream of calls to the processor."""
    asked: OrderedDict[str, float] = runtime.extras.setdefault(CONFIRM_ASKED, OrderedDict())
    now = time.monotonic()
    last = asked.get(out_trade_no)
    if last is not None and now - last < CONFIRM_INTERVAL_SECONDS:
        return False
    asked[out_trade_no] = now
    asked.move_to_end(out_trade_no)
    while len(asked) > CONFIRM_REMEMBERED:
        asked.popitem(last=False)
    return True


@payments.post(
    "/notify/{provider_name}",
    response_model=NotificationAck,
    responses={
        401: {"description": "Signature, signing key or timestamp check failed (code FAIL)"},
        404: {"description": "No such provider, or a payment we never created (code FAIL)"},
        409: {"description": "The amount does not match the payment (code FAIL)"},
    },
)
async def receive_notification(
    request: Request, runtime: RuntimeDep, provider_name: ProviderName
) -> Response:
    """A provider tells us about a payment or refund. Verified before anything else; answered 200 only
    after the change is committed (``settle`` commits before it returns), so the sender retries whenever
    we could not keep it."""
    provider = get_provider(runtime, provider_name)
    body = await request.body()
    if len(body) > MAX_NOTIFICATION_BYTES:
        return _refuse(PayloadTooLarge("a notification is not this large"))
    receipt = await settle(
        runtime,
        partial(
            service.receive_notification,
            provider=provider,
            headers=request.headers,
            body=body,
            refund_max_attempts=payment_settings(runtime).refund_max_attempts,
        ),
    )
    if receipt.error is not None:
        return _refuse(receipt.error)
    return JSONResponse(NotificationAck().model_dump())


async def settle(
    runtime: Runtime, take: Callable[[AsyncSession], Awaitable[service.Receipt]]
) -> service.Receipt:
    """Take a notification or a processor's answer in a transaction of its own, committed before this
    returns, on the payments' lane (``settling_lane``): a payment that pays an order moves the item's
    units to sold last, and that row stays locked until the commit — on the lane, for a few database
    round trips instead of turns of a loop busy with the rush, while the next orders wait for the row."""

    async def run(db: Database) -> service.Receipt:
        async with db.sessionmaker() as session:
            receipt = await take(session)
            await session.commit()
            return receipt

    return await settling_lane(runtime).run(run)


def settling_lane(runtime: Runtime) -> Lane:
    """This process's lane for taking payments (``core.lane``), kept in the runtime's ``extras``."""
    lane = runtime.extras.get(LANE_KEY)
    if not isinstance(lane, Lane) or lane.db is not runtime.db:
        lane = runtime.extras[LANE_KEY] = Lane(runtime.db, "payments-settle", pool_size=LANE_CONNECTIONS)
    return lane


def _refuse(error: LinliError) -> Response:
    """Our error shape, plus the ``code``/``message`` a provider reads (WeChat Pay: FAIL → it retries).
    Returned rather than raised, so the record of the refusal is committed with the answer."""
    body = {**error.to_dict(), "code": "FAIL", "message": error.message}
    return JSONResponse(body, status_code=error.status_code)


@payments.post("/sandbox/{out_trade_no}", response_model=SandboxActionRead, status_code=202)
async def sandbox_cashier(
    session: SessionDep, runtime: RuntimeDep, user: CurrentUser, out_trade_no: OutTradeNo, data: SandboxAction
) -> SandboxActionRead:
    """The sandbox cashier's buttons as JSON: pay (or fail) your sandbox payment. The sandbox processor
    then notifies us as a real one would: late, signed, retried, sometimes twice or out of order."""
    payment = await service.get_payment_for_user(session, out_trade_no, user_id=user.id)
    if payment.provider != SANDBOX or payment.scene != Scene.cashier.value:
        raise PaymentNotFound("no such sandbox payment")
    accepted = await sandbox_cashier_action(
        runtime,
        session,
        out_trade_no=payment.out_trade_no,
        amount_fen=payment.amount_fen,
        succeed=data.result is SandboxResult.succeeded,
    )
    return SandboxActionRead(out_trade_no=payment.out_trade_no, result=data.result, accepted=accepted)


router.include_router(order_payments)
router.include_router(payments)
