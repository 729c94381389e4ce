"""Payments for something other than an order's own total (``PaymentPurpose``), settled by the domain that
owns that thing.

Orders sits below the domains whose money this is (groupbuy's delivery fees), so it cannot call them;
they register a handler here instead, as pages register panels on the order page. The notification
path calls the handler in the notification's own transaction, right after the payment's conditional
move to ``succeeded`` (so once per payment, however often and in whatever order notifications come); a
handler never touches the order itself. A handler that cannot take the money raises a ``LinliError``
before writing anything: the payment is then refunded automatically, as a payment for an expired order
is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.errors import LinliError
from linli.orders.payments.models import Payment, PaymentPurpose, Refund


class PurposeHandler(Protocol):
    async def paid(self, session: AsyncSession, payment: Payment, *, now: datetime) -> str:
        """The money for ``payment`` arrived: record it (once) and say what happened, for the
        notification's record; raise a ``LinliError`` (writing nothing) when it cannot be taken."""
        ...

    async def refund_settled(
        self, session: AsyncSession, refund: Refund, payment: Payment, *, succeeded: bool, now: datetime
    ) -> None:
        """The provider's final word on a refund of ``payment`` (succeeded or failed), once per refund."""
        ...


class PurposeNotReady(LinliError):
    """No handler for this purpose in this process: the notification is not acknowledged (the provider
    tries again), rather than the money being taken without anyone recording what it paid for."""

    status_code = 503


_handlers: dict[str, PurposeHandler] = {}


def register_purpose(purpose: PaymentPurpose, handler: PurposeHandler) -> None:
    """The handler for payments of ``purpose`` (the last registration wins: re-imports are harmless)."""
    if purpose is PaymentPurpose.order:
        raise ValueError("orders are settled by the orders service itself")
    _handlers[purpose.value] = handler


def handler_for(purpose: str) -> PurposeHandler:
    handler = _handlers.get(purpose)
    if handler is None:
        raise PurposeNotReady(f"payments for {purpose!r} cannot be settled here yet")
    return handler
