"""Money is integer fen (分) in CNY, never float."""

from __future__ import annotations

import re
import unicodedata

from linli.core.errors import BadRequest

# Optional sign, optional ¥, whole yuan, optional decimals. No exponents, separators or bare points:
# "1e2", "1_000", "1,000", "25." and ".5" are more likely typos than prices.
_YUAN = re.compile(r"([+-]?)\s*¥?\s*([0-9]+)(?:\.([0-9]+))?", re.ASCII)
# A quadrillion yuan: far beyond any price or total, and short enough to parse in constant time.
MAX_YUAN_DIGITS = 15


def format_fen(amount_fen: int, *, symbol: str = "¥") -> str:
    """``2500`` → ``¥25``; ``2550`` → ``¥25.50``."""
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), 100)
    if fen == 0:
        return f"{sign}{symbol}{yuan}"
    return f"{sign}{symbol}{yuan}.{fen:02d}"


def parse_yuan(text: str) -> int:
    """A price typed in yuan (``"25"``, ``"25.5"``, ``"¥25.50"``, full-width digits) as exact fen.

    Anything else — more than two decimals, exponents, NaN, infinity, words — is a ``BadRequest``."""
    # NFKC folds what a Chinese input method types (２５．５, ￥) into ASCII digits, point and ¥.
    normalized = unicodedata.normalize("NFKC", text).strip()
    match = _YUAN.fullmatch(normalized)
    if match is None:
        raise BadRequest(f"not a price: {text[:40]!r}")
    sign, whole, decimals = match.groups()
    if decimals is not None and len(decimals) > 2:
        raise BadRequest("a price has at most two decimals")
    if len(whole.lstrip("0")) > MAX_YUAN_DIGITS:
        raise BadRequest(f"not a price: {text[:40]!r} is too large")
    fen = int(whole) * 100 + int((decimals or "0").ljust(2, "0"))
    return -fen if sign == "-" else fen
