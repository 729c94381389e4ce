"""Identity's failures, each with the HTTP status a client sees."""

from __future__ import annotations

from linli.core.errors import Conflict, Forbidden, LinliError, NotFound, Unprocessable


class InvalidPhone(Unprocessable):
    """Not a mainland China mobile number."""


class MalformedCode(Unprocessable):
    """The code typed is not six digits; not counted as an attempt."""


class InvalidNickname(Unprocessable):
    pass


class UnknownRole(Unprocessable):
    pass


class NoCodeRequested(LinliError):
    status_code = 400


class InvalidCode(LinliError):
    """A wrong code; the attempt has been counted against the code."""

    status_code = 400


class CodeExpired(LinliError):
    status_code = 400


class CodeBurned(LinliError):
    """Too many wrong tries: the code no longer works even when typed right."""

    status_code = 400


class CodeAlreadyUsed(LinliError):
    status_code = 400


class AccountDisabled(Forbidden):
    pass


class UserNotFound(NotFound):
    pass


class CannotRemoveOwnOperatorRole(Conflict):
    pass
