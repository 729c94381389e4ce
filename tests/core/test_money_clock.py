"""Money is integer fen and times are UTC shown in Shanghai: property tests of the two helpers."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linli.core.clock import SHANGHAI, as_utc, from_local, to_local
from linli.core.errors import BadRequest
from linli.core.money import format_fen, parse_yuan

# Far beyond any price, order total or monthly revenue this platform will see.
FEN = st.integers(min_value=-(10**17) + 1, max_value=10**17 - 1)


class TestMoney:
    @given(FEN)
    def test_format_then_parse_is_the_identity(self, fen: int) -> None:
        assert parse_yuan(format_fen(fen)) == fen
        assert parse_yuan(format_fen(fen, symbol="")) == fen
        assert parse_yuan(format_fen(fen, symbol="￥")) == fen

    @pytest.mark.parametrize(
        ("amount_fen", "text"),
        [(0, "¥0"), (2500, "¥25"), (2550, "¥25.50"), (5, "¥0.05"), (-199, "-¥1.99"), (300000, "¥3000")],
    )
    def test_format_fen(self, amount_fen: int, text: str) -> None:
        assert format_fen(amount_fen) == text

    @pytest.mark.parametrize(
        ("text", "fen"),
        [
            ("25", 2500),
            ("25.5", 2550),
            ("25.50", 2550),
            (" 0.01 ", 1),
            ("¥25", 2500),
            ("￥25.5", 2550),
            ("-1.99", -199),
            ("+3", 300),
            ("２５．５", 2550),  # full-width, as a Chinese input method types it
            ("007", 700),
        ],
    )
    def test_parse_yuan_accepts(self, text: str, fen: int) -> None:
        assert parse_yuan(text) == fen

    @pytest.mark.parametrize(
        "text",
        [
            "",
            " ",
            "25.555",
            "0.001",
            "1.000",
            "NaN",
            "nan",
            "sNaN",
            "inf",
            "-Infinity",
            "abc",
            "25元",
            "1e2",
            "1e-999999999",
            "1e999999",
            "1_000",
            "1,000",
            "25.",
            ".5",
            "--1",
            "¥¥1",
            "1 2",
            "0x10",
            "9" * 5000,
        ],
    )
    def test_parse_yuan_rejects_with_bad_request(self, text: str) -> None:
        with pytest.raises(BadRequest):
            parse_yuan(text)

    @given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=3, max_value=8))
    def test_more_than_two_decimals_is_refused(self, whole: int, places: int) -> None:
        with pytest.raises(BadRequest, match="two decimals"):
            parse_yuan(f"{whole}.{'1' * places}")

    @given(st.text(max_size=30))
    def test_parse_yuan_never_fails_with_anything_but_bad_request(self, text: str) -> None:
        try:
            fen = parse_yuan(text)
        except BadRequest:
            return
        assert isinstance(fen, int)

    @given(st.floats(allow_nan=True, allow_infinity=True))
    def test_float_text_parses_exactly_or_is_refused(self, value: float) -> None:
        text = repr(value)
        whole, _, decimals = text.lstrip("-").partition(".")
        plain = math.isfinite(value) and "e" not in text and len(decimals) <= 2 and len(whole) <= 15
        try:
            fen = parse_yuan(text)
        except BadRequest:
            assert not plain
            return
        assert plain
        assert Decimal(fen) == Decimal(text) * 100


# Shanghai kept daylight saving time from 1986 to 1991; since then every wall-clock time is unambiguous.
LOCAL_TIMES = st.datetimes(min_value=datetime(1992, 1, 1), max_value=datetime(2200, 1, 1))
UTC_TIMES = st.datetimes(
    min_value=datetime(1992, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


class TestClock:
    @given(LOCAL_TIMES)
    def test_from_local_then_to_local_is_the_same_wall_clock_time(self, wall: datetime) -> None:
        stored = from_local(wall)
        assert stored.tzinfo is not None
        assert stored.utcoffset() == timedelta(0)
        assert to_local(stored).replace(tzinfo=None) == wall
        assert stored == wall.replace(tzinfo=SHANGHAI)

    @given(UTC_TIMES)
    def test_to_local_then_from_local_is_the_same_instant(self, instant: datetime) -> None:
        shown = to_local(instant)
        assert shown.utcoffset() == timedelta(hours=8)
        assert from_local(shown.replace(tzinfo=None)) == instant
        assert from_local(shown) == instant

    def test_naive_times_from_the_database_are_utc(self) -> None:
        assert as_utc(datetime(2026, 3, 1, 2, 0)) == datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
        assert to_local(datetime(2026, 3, 1, 2, 0)) == datetime(2026, 3, 1, 10, 0, tzinfo=SHANGHAI)
        # 10:00 the next morning in Shanghai (the pickup promise) is 02:00 UTC.
        assert from_local(datetime(2026, 3, 2, 10, 0)) == datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
