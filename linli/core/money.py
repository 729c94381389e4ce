"""Money is integer fen (分) in CNY, never float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from linli.core.errors import BadRequest


def format_fen(amount_fen: int, *, symbol: str = "¥") -> str:
    """``2500`` → ``¥25``; ``2550`` → ``¥25.50``."""
    sign = "-" if amount_fen < 0 else ""
    yuan, fen = divmod(abs(amount_fen), 100)
    if fen == 0:
        return f"{sign}{symbol}{yuan}"
    return f"{sign}{symbol}{yuan}.{fen:02d}"


def parse_yuan(text: str) -> int:
    """A price typed in yuan (``"25"``, ``"25.5"``) as fen; more than two decimals is refused."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise BadRequest(f"not a price: {text!r}") from exc
    if not value.is_finite():
        raise BadRequest(f"not a price: {text!r}")
    fen = value * 100
    if fen != fen.to_integral_value():
        raise BadRequest("a price has at most two decimals")
    return int(fen.quantize(Decimal(1), rounding=ROUND_HALF_UP))
