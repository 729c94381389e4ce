"""What can go wrong with payments; each error carries its HTTP status."""

from __future__ import annotations

from linli.core.errors import BadRequest, Conflict, LinliError, NotAuthenticated, NotFound


class UnknownProvider(NotFound):
    """No such provider, or it is not configured on this installation."""


class PaymentNotFound(NotFound):
    pass


class InvalidSignature(NotAuthenticated):
    """A notification whose signature, signing key or timestamp does not hold."""


class MalformedNotification(BadRequest):
    """Signed, but not something we can read (bad JSON, a resource that does not decrypt)."""


class NotificationAmountMismatch(Conflict):
    """A provider says a different amount was paid than the payment asked for."""


class UnknownPaymentReference(NotFound):
    """A verified notification about a payment or refund we never created."""


class PaymentClosed(Conflict):
    """The sandbox cashier refuses: this payment was already paid (or closed)."""


class ProviderUnavailable(LinliError):
    """The provider did not answer, or answered with an error; trying again later may work."""

    status_code = 502


class ProviderRejected(LinliError):
    """The provider refused the request (bad parameters, closed order...)."""

    status_code = 502


class NothingToRefund(Conflict):
    """No succeeded payment (with money left to return) for this order."""
