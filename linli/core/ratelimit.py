"""Fixed-window rate limits kept in the database, so they hold across app processes."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Integer, String, case, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from linli.core.clock import utcnow
from linli.core.db import Base, Database
from linli.core.errors import TooManyRequests


class RateCounter(Base):
    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(191), primary_key=True)
    window_start: Mapped[datetime]
    count: Mapped[int] = mapped_column(Integer, default=0)


def _window_start(now: datetime, window_seconds: int) -> datetime:
    return datetime.fromtimestamp((int(now.timestamp()) // window_seconds) * window_seconds, tz=UTC)


async def count_hit(
    session: AsyncSession, key: str, *, window_seconds: int, now: datetime | None = None
) -> tuple[int, int]:
    """Count one hit on ``key`` in the current window; returns the window's count and the seconds left.

    The counter is bumped with a conditional update, atomic on both databases."""
    now = now or utcnow()
    window = _window_start(now, window_seconds)
    full_key = f"{key}:{window_seconds}"
    result = await session.execute(
        update(RateCounter)
        .where(RateCounter.key == full_key, RateCounter.window_start == window)
        .values(count=RateCounter.count + 1)
        .returning(RateCounter.count)
    )
    count = result.scalar_one_or_none()
    if count is None:
        await session.execute(
            delete(RateCounter).where(RateCounter.key == full_key, RateCounter.window_start != window)
        )
        try:
            async with session.begin_nested():
                session.add(RateCounter(key=full_key, window_start=window, count=1))
            count = 1
        except IntegrityError:
            # A concurrent hit created the row first (possibly still for the previous window).
            same_window = RateCounter.window_start == window
            count = (
                await session.execute(
                    update(RateCounter)
                    .where(RateCounter.key == full_key)
                    .values(count=case((same_window, RateCounter.count + 1), else_=1), window_start=window)
                    .returning(RateCounter.count)
                )
            ).scalar_one()
    retry_after = int(window.timestamp()) + window_seconds - int(now.timestamp())
    return count, max(retry_after, 1)


async def enforce(
    db: Database,
    key: str,
    *,
    limit: int,
    window_seconds: int,
    message: str,
    now: datetime | None = None,
) -> None:
    """Count a hit in its own committed transaction, then raise ``TooManyRequests`` past ``limit``.

    Its own transaction because the request's may roll back: refused hits must still count."""
    async with db.sessionmaker() as session:
        count, retry_after = await count_hit(session, key, window_seconds=window_seconds, now=now)
        await session.commit()
    if count > limit:
        raise TooManyRequests(message, retry_after=retry_after)


async def peek(session: AsyncSession, key: str, *, window_seconds: int, now: datetime | None = None) -> int:
    """Hits counted on ``key`` in the current window (an earlier window's count has expired)."""
    window = _window_start(now or utcnow(), window_seconds)
    return (
        await session.scalar(
            select(RateCounter.count).where(
                RateCounter.key == f"{key}:{window_seconds}", RateCounter.window_start == window
            )
        )
    ) or 0
