"""The groupbuy domain's errors, each with its HTTP status."""

from __future__ import annotations

from linli.core.errors import Conflict, Forbidden, NotFound, Unprocessable


class GroupOrderNotFound(NotFound):
    pass


class BatchNotFound(NotFound):
    pass


class InvalidSettings(Unprocessable):
    pass


class SettingsLocked(Conflict):
    """The session's groups were already settled at cutoff."""


class InvalidGroupTransition(Conflict):
    pass


class InvalidBatch(Unprocessable):
    pass


class WrongPickupCode(NotFound):
    """No open code like it at this point (counted against the leader's attempts)."""


class NotYourPickupPoint(Forbidden):
    pass


class NotReadyForPickup(Conflict):
    pass


class TooManyUnits(Unprocessable):
    pass


class NoStoreForPickup(Conflict):
    pass


class NoPickupCode(NotFound):
    pass


class NoDeliveryFee(NotFound):
    """The order has no delivery fee (its group was not delivered below its threshold)."""


class FeeNotPayable(Conflict):
    """The fee is not due (any more): waived, paid online, collected in cash, or its order refunded."""


class MemberNotFound(NotFound):
    """The user is not a member of this community."""


class AlreadyInCommunity(Conflict):
    """Moving a neighbour to the community they are in."""


class InvalidMemberChange(Unprocessable):
    pass
