"""What can go wrong with invite links, posters and the referral settings."""

from __future__ import annotations

from linli.core.errors import NotFound, Unprocessable


class InviteNotFound(NotFound):
    """No neighbour has this invite code."""


class InvalidShareLine(Unprocessable):
    """The share line is empty, too long, or holds a refused word."""


class InvalidPosterFormat(Unprocessable):
    """Posters come as ``chat``, ``moments`` or ``group``."""


class InvalidReferralSettings(Unprocessable):
    """A setting out of range, or a reward coupon template that does not exist."""


class PosterFontMissing(RuntimeError):
    """No CJK-capable font is installed (``scripts/system-deps.sh fonts`` installs fonts-noto-cjk)."""
