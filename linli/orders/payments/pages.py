"""The sandbox processor's cashier page (收银台): the amount, and 支付 / 支付失败. Thin: the same processor
action as the JSON route; a payment that is not the neighbour's own is a 404 page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi import Path as PathParam
from starlette.responses import RedirectResponse, Response

from linli.core.deps import RuntimeDep, SessionDep
from linli.core.errors import LinliError
from linli.core.i18n import catalog
from linli.core.templating import register_templates, render, translator
from linli.identity.deps import PageUser
from linli.identity.pages import safe_next
from linli.orders import service as orders
from linli.orders.payments import service
from linli.orders.payments.errors import PaymentNotFound
from linli.orders.payments.providers import get_sandbox, sandbox_cashier_action
from linli.orders.payments.providers.base import Scene
from linli.orders.payments.providers.sandbox import NAME as SANDBOX
from linli.orders.payments.providers.sandbox import processor_has_paid

HERE = Path(__file__).parent
register_templates(HERE / "templates")
catalog.load_dir(HERE / "locales")

router = APIRouter(include_in_schema=False)

OutTradeNo = Annotated[str, PathParam(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]


def _error_text(t: Callable[..., str], name: str) -> str:
    key = f"payments.errors.{name}"
    text = t(key)
    return t("payments.errors.generic") if text == key else text


@router.get("/pay/sandbox/{out_trade_no}")
async def cashier(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: PageUser,
    out_trade_no: OutTradeNo,
    result: Annotated[str | None, Query(max_length=16)] = None,
    next: Annotated[str | None, Query(max_length=500)] = None,
    error: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    get_sandbox(runtime)
    payment = await service.get_payment_for_user(session, out_trade_no, user_id=user.id)
    if payment.provider != SANDBOX:
        raise PaymentNotFound("no such sandbox payment")
    order = await orders.get_order_of(session, payment.order_id, user.id)
    t = translator(request)
    return render(
        request,
        "payments/cashier.html",
        {
            "payment": payment,
            "order": order,
            "paid": await processor_has_paid(session, payment.out_trade_no),
            "result": result if result in ("paid", "failed", "already") else None,
            "error": _error_text(t, error) if error else None,
            "next": safe_next(next or f"/orders/{order.id}"),
        },
    )


@router.post("/pay/sandbox/{out_trade_no}")
async def cashier_action(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: PageUser,
    out_trade_no: OutTradeNo,
    action: Annotated[str, Form(max_length=8)],
    next: Annotated[str | None, Form(max_length=500)] = None,
) -> Response:
    payment = await service.get_payment_for_user(session, out_trade_no, user_id=user.id)
    if payment.provider != SANDBOX or payment.scene != Scene.cashier.value:
        raise PaymentNotFound("no such sandbox payment")
    back = f"/pay/sandbox/{payment.out_trade_no}?" + urlencode(
        {"next": safe_next(next or f"/orders/{payment.order_id}")}
    )
    try:
        accepted = await sandbox_cashier_action(
            runtime,
            session,
            out_trade_no=payment.out_trade_no,
            amount_fen=payment.amount_fen,
            succeed=action == "pay",
        )
    except LinliError as exc:
        return RedirectResponse(f"{back}&error={exc.name}", status_code=303)
    outcome = ("paid" if accepted else "already") if action == "pay" else "failed"
    return RedirectResponse(f"{back}&result={outcome}", status_code=303)
