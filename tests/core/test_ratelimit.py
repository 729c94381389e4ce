"""Fixed-window rate limits kept in the database: exact under concurrency, on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from linli.core.db import Database
from linli.core.errors import TooManyRequests
from linli.core.ratelimit import count_hit, enforce, peek

# A window boundary: 2026-03-01 00:00:00 UTC is a multiple of 60 s and of 3600 s.
T0 = datetime(2026, 3, 1, tzinfo=UTC)


async def _try(db: Database, key: str, *, limit: int, window: int = 60, now: datetime | None = None) -> bool:
    try:
        await enforce(db, key, limit=limit, window_seconds=window, message="slow down", now=now)
    except TooManyRequests:
        return False
    return True


async def test_the_limit_holds_exactly_under_concurrency(db: Database) -> None:
    results = await asyncio.gather(*(_try(db, "code:phone:13800000000", limit=5) for _ in range(20)))
    assert results.count(True) == 5
    assert results.count(False) == 15


async def test_the_limit_holds_exactly_when_concurrent_hits_open_a_new_window(db: Database) -> None:
    for _ in range(3):
        assert await _try(db, "verify:1.2.3.4", limit=3, now=T0 + timedelta(seconds=10))
    # The next window: the old count is gone, and twenty racing hits still let exactly three through.
    later = T0 + timedelta(seconds=70)
    results = await asyncio.gather(*(_try(db, "verify:1.2.3.4", limit=3, now=later) for _ in range(20)))
    assert results.count(True) == 3


async def test_the_window_rolls_over(db: Database) -> None:
    key = "code:phone:13900000000"
    for second in (0, 20, 59):
        assert await _try(db, key, limit=3, now=T0 + timedelta(seconds=second))
    assert not await _try(db, key, limit=3, now=T0 + timedelta(seconds=59, microseconds=999_999))
    assert await _try(db, key, limit=3, now=T0 + timedelta(seconds=60))
    async with db.sessionmaker() as session:
        assert await peek(session, key, window_seconds=60, now=T0 + timedelta(seconds=61)) == 1
        assert await peek(session, key, window_seconds=60, now=T0 + timedelta(seconds=121)) == 0


async def test_keys_and_window_lengths_count_separately(db: Database) -> None:
    assert await _try(db, "a", limit=1, now=T0)
    assert await _try(db, "b", limit=1, now=T0)
    assert await _try(db, "a", limit=1, window=3600, now=T0)
    assert not await _try(db, "a", limit=1, now=T0)


async def test_refused_hits_carry_a_positive_retry_after_to_the_window_end(db: Database) -> None:
    await _try(db, "k", limit=1, now=T0 + timedelta(seconds=15))
    with pytest.raises(TooManyRequests) as refused:
        await enforce(db, "k", limit=1, window_seconds=60, message="慢一点", now=T0 + timedelta(seconds=15))
    assert refused.value.retry_after == 45
    assert refused.value.status_code == 429
    assert refused.value.message == "慢一点"

    with pytest.raises(TooManyRequests) as at_the_edge:
        await enforce(
            db,
            "k",
            limit=1,
            window_seconds=60,
            message="x",
            now=T0 + timedelta(seconds=59, microseconds=900_000),
        )
    assert at_the_edge.value.retry_after >= 1


async def test_count_hit_reports_the_count_and_seconds_left(db: Database) -> None:
    async with db.sessionmaker() as session:
        assert await count_hit(session, "c", window_seconds=3600, now=T0 + timedelta(minutes=10)) == (1, 3000)
        assert await count_hit(session, "c", window_seconds=3600, now=T0 + timedelta(minutes=50)) == (2, 600)
        await session.commit()
