"""What can go wrong with checkout and orders; each error carries its HTTP status and a message a
neighbour's client can show as it is."""

from __future__ import annotations

from linli.core.errors import BadRequest, Conflict, NotFound, Unprocessable


class SoldOut(Conflict):
    """Fewer units are left than were asked for (已售罄 when none are left)."""


class PurchaseLimitReached(Conflict):
    """The neighbour's live orders of this item would go past its per-user limit."""


class NotForSale(Conflict):
    """The item cannot be bought at the live price right now: the session is not live, the sale window
    has not opened or has closed, or the item was taken off the lineup."""


class LineupItemNotFound(NotFound):
    pass


class OrderNotFound(NotFound):
    """No such order — also what a neighbour is told about someone else's order."""


class InvalidOrderTransition(Conflict):
    """The order's status does not allow the requested move."""


class ReservationExpired(Conflict):
    """The order's reservation ran out before it was paid; its units went back to the sale."""


class IdempotencyKeyReused(Conflict):
    """The same Idempotency-Key came with a different order."""


class InvalidIdempotencyKey(BadRequest):
    pass


class NoPickupPoint(Unprocessable):
    """Pickup needs a community with an open pickup point."""


class StoreUnavailable(Unprocessable):
    pass


class AmountMismatch(Conflict):
    """A payment's amount differs from the order's total: it is not applied."""


class AlreadyPaid(Conflict):
    """The order was already paid by another payment (the payments side refunds the second one)."""


class PaidAfterExpiry(Conflict):
    """A payment arrived for an order that is no longer pending and cannot be revived: the payments side
    must refund it. Nothing was written when this is raised."""


class PaidAfterCancel(PaidAfterExpiry):
    """A payment arrived for an order its owner had cancelled."""


class CouponTemplateNotFound(NotFound):
    pass


class InvalidCouponTemplate(Unprocessable):
    """A coupon template's terms or validity do not hold together, or it cannot be issued (inactive)."""


class CouponNotFound(NotFound):
    """No such coupon of the neighbour's — also what they are told about someone else's coupon."""


class CouponUnavailable(Conflict):
    """The coupon is used, applied to another unpaid order, void, expired or not valid yet."""


class CouponNotApplicable(Conflict):
    """The coupon's terms do not fit this order (minimum spend, or its free item is not in the order)."""
