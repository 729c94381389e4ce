"""What can go wrong with live sessions and their lineups; each error carries its HTTP status."""

from __future__ import annotations

from linli.core.errors import Conflict, NotFound, Unprocessable


class SessionNotFound(NotFound):
    pass


class LineupItemNotFound(NotFound):
    pass


class CommunityNotFound(NotFound):
    pass


class ProductNotFound(NotFound):
    pass


class InvalidTransition(Conflict):
    """The session's status does not allow the requested move (or it moved meanwhile)."""


class SessionLocked(Conflict):
    """The change would break a session that is live or has ended, or that is archived."""


class LineupClosed(Conflict):
    """An ended or archived session's lineup no longer changes."""


class ProductAlreadyInLineup(Conflict):
    pass


class StockBelowCommitted(Conflict):
    """Stock may never drop below what is already reserved plus sold."""


class InvalidHost(Unprocessable):
    pass


class CommunityArchived(Unprocessable):
    pass


class ProductArchived(Unprocessable):
    pass


class LivePriceAboveStorePrice(Unprocessable):
    """The live price is a live-exclusive price: never above the store price."""


class InvalidSaleWindow(Unprocessable):
    pass


class InvalidLineupOrder(Unprocessable):
    pass
