"""What can go wrong with live sessions and their lineups; each error carries its HTTP status."""

from __future__ import annotations

from linli.core.errors import Conflict, Forbidden, NotFound, Unprocessable


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


# --- the room -------------------------------------------------------------------------------------


class CommentNotFound(NotFound):
    pass


class RoomClosed(Conflict):
    """The session is not open for this (it has ended, is archived, or is still a draft)."""


class InvalidComment(Unprocessable):
    """Empty, too long, or made of control characters."""


class CommentRefused(Unprocessable):
    """The comment contains a word the operators have refused."""


class UserMuted(Forbidden):
    """Muted in this room until a time: they may watch, not post."""


class UserBanned(Forbidden):
    """Banned from this room, by account or by device."""


class NotModerator(Forbidden):
    """Only the session's host or an operator may do this."""


class CannotModerateStaff(Forbidden):
    """Hosts and operators are not muted or banned from a room."""


class SensitiveWordExists(Conflict):
    pass


class SensitiveWordNotFound(NotFound):
    pass


class UserNotFound(NotFound):
    pass


# --- keyword lotteries ----------------------------------------------------------------------------


class LotteryNotFound(NotFound):
    pass


class LotteryRunning(Conflict):
    """A room runs one keyword lottery at a time: draw the running one first."""


class InvalidLottery(Unprocessable):
    """A keyword, prize, duration or number of winners out of bounds."""
