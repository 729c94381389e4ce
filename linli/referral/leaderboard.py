"""The monthly 分享达人榜 per community, and its month-end close with the operator's rewards.

Ranking: conversions that still count (not reversed), then the revenue they brought, ties going to who got
there first (the earlier last conversion), then the lower user id so the order is total.

The close is a durable timer per month (``referral.close_month:<month>``, at midnight Shanghai of the next
month, scheduled with the month's first conversion), so it fires after any restart. Exactly once per
community and month is the database's doing, not the timer's: the close inserts its
``referral_leaderboard_closes`` row first, and a second run (a lapsed lease, two workers, a retry) fails on
that primary key — waiting, on PostgreSQL, for the first to commit — and grants nothing. The ledger
(``referral_rewards``, unique per community, month and rank) is written only next to that row, and each
reward's coupon is issued with a source naming the rank, so it is one coupon even if issuing is retried.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.clock import SHANGHAI, as_utc, utcnow
from linli.core.events import Subjects, record_event
from linli.core.jobs import Job, schedule_job
from linli.identity.models import User
from linli.orders import coupons
from linli.orders.errors import CouponTemplateNotFound, InvalidCouponTemplate
from linli.referral import events
from linli.referral.models import Conversion, LeaderboardClose, Reward
from linli.referral.service import get_referral_settings, month_of

log = logging.getLogger(__name__)

CLOSE_MONTH = "referral.close_month"


@dataclass(frozen=True)
class Standing:
    rank: int
    user_id: int
    name: str
    conversions: int
    revenue_fen: int
    reached_at: datetime


def month_end(month: str) -> datetime:
    """The first instant after ``month`` (Shanghai midnight of the next month), in UTC."""
    year, number = (int(part) for part in month.split("-"))
    year, number = (year + 1, 1) if number == 12 else (year, number + 1)
    return as_utc(datetime(year, number, 1, tzinfo=SHANGHAI))


def valid_month(raw: str) -> bool:
    parts = raw.split("-")
    return (
        len(raw) == 7
        and len(parts) == 2
        and all(p.isdigit() for p in parts)
        and 2000 <= int(parts[0]) <= 2999
        and 1 <= int(parts[1]) <= 12
    )


async def standings(
    session: AsyncSession, community_id: int, month: str, *, limit: int = 50
) -> list[Standing]:
    """The community's board for ``month`` ("2026-12"), best first."""
    count = func.count(Conversion.id)
    revenue = func.sum(Conversion.revenue_fen)
    reached = func.max(Conversion.converted_at)
    rows = (
        await session.execute(
            select(Conversion.referrer_id, count, revenue, reached, User.nickname, User.phone)
            .join(User, User.id == Conversion.referrer_id)
            .where(
                Conversion.community_id == community_id,
                Conversion.month == month,
                Conversion.reversed_at.is_(None),
            )
            .group_by(Conversion.referrer_id, User.nickname, User.phone)
            .order_by(count.desc(), revenue.desc(), reached, Conversion.referrer_id)
            .limit(limit)
        )
    ).all()
    return [
        Standing(
            rank=i,
            user_id=row[0],
            name=row[4] or f"邻居{row[5][-4:]}",
            conversions=int(row[1]),
            revenue_fen=int(row[2] or 0),
            reached_at=as_utc(row[3]),
        )
        for i, row in enumerate(rows, start=1)
    ]


async def schedule_month_close(session: AsyncSession, month: str) -> Job:
    """The month's close timer (one per month; scheduling it again returns the same job)."""
    return await schedule_job(
        session, CLOSE_MONTH, month_end(month), {"month": month}, key=f"{CLOSE_MONTH}:{month}"
    )


async def close_month(session: AsyncSession, month: str, *, now: datetime | None = None) -> int:
    """Close every community that had conversions in ``month``; returns how many this run closed."""
    community_ids = (
        await session.scalars(
            select(Conversion.community_id)
            .where(Conversion.month == month, Conversion.community_id.is_not(None))
            .distinct()
            .order_by(Conversion.community_id)
        )
    ).all()
    closed = 0
    for community_id in community_ids:
        assert community_id is not None
        if await close_community_month(session, community_id, month, now=now) is not None:
            closed += 1
    return closed


async def close_community_month(
    session: AsyncSession, community_id: int, month: str, *, now: datetime | None = None
) -> LeaderboardClose | None:
    """Close one community's month: the top N get the configured coupon per rank, in the ledger
    (``referral.reward_granted`` each, ``leaderboard.closed`` once). None when it was closed already."""
    now = now or utcnow()
    close = LeaderboardClose(community_id=community_id, month=month, closed_at=now, winners=[])
    try:
        async with session.begin_nested():
            session.add(close)
    except IntegrityError:
        return None
    config = await get_referral_settings(session)
    winners = []
    for standing in await standings(session, community_id, month, limit=config.top_n):
        template_id = (
            config.reward_template_ids[standing.rank - 1]
            if standing.rank <= len(config.reward_template_ids)
            else None
        )
        coupon_id = await _issue_reward(session, template_id, standing, community_id, month, now)
        session.add(
            Reward(
                community_id=community_id,
                month=month,
                rank=standing.rank,
                user_id=standing.user_id,
                conversions=standing.conversions,
                revenue_fen=standing.revenue_fen,
                coupon_template_id=template_id,
                coupon_id=coupon_id,
                granted_at=now,
            )
        )
        record_event(
            session,
            events.REWARD_GRANTED,
            subjects=Subjects(user_id=standing.user_id, community_id=community_id),
            payload={
                "user_id": standing.user_id,
                "month": month,
                "rank": standing.rank,
                "coupon_id": coupon_id,
                "coupon_template_id": template_id,
            },
            occurred_at=now,
        )
        winners.append(
            {
                "user_id": standing.user_id,
                "rank": standing.rank,
                "conversions": standing.conversions,
                "revenue_fen": standing.revenue_fen,
            }
        )
    close.winners = winners
    record_event(
        session,
        events.LEADERBOARD_CLOSED,
        subjects=Subjects(community_id=community_id),
        payload={"community_id": community_id, "month": month, "winners": winners},
        occurred_at=now,
    )
    await session.flush()
    return close


async def _issue_reward(
    session: AsyncSession,
    template_id: int | None,
    standing: Standing,
    community_id: int,
    month: str,
    now: datetime,
) -> int | None:
    if template_id is None:
        return None
    try:
        async with session.begin_nested():
            coupon = await coupons.issue_coupon(
                session,
                template_id,
                standing.user_id,
                source=f"referral:{month}:{community_id}:{standing.rank}",
                now=now,
            )
    except (CouponTemplateNotFound, InvalidCouponTemplate) as exc:
        # The operator's template is gone or switched off: the rank stays in the ledger without a coupon.
        log.warning("leaderboard %s/%s rank %s: no coupon: %s", community_id, month, standing.rank, exc)
        return None
    return coupon.id


async def close_month_job(session: AsyncSession, job: Job) -> None:
    """``referral.close_month``: close the month named in the payload (idempotent, as jobs must be)."""
    month = job.payload.get("month")
    if not isinstance(month, str) or not valid_month(month):
        log.warning("close job %s has no valid month: %r", job.id, job.payload)
        return
    await close_month(session, month)


async def rewards_of(session: AsyncSession, user_id: int) -> list[Reward]:
    """The neighbour's ledger rows, newest first."""
    rows = await session.scalars(select(Reward).where(Reward.user_id == user_id).order_by(Reward.id.desc()))
    return list(rows.all())


async def ledger(session: AsyncSession, *, month: str | None = None, limit: int = 500) -> list[Reward]:
    """The rewards ledger for operators, newest first."""
    query = select(Reward).order_by(Reward.id.desc()).limit(limit)
    if month is not None:
        query = query.where(Reward.month == month)
    return list((await session.scalars(query)).all())


def current_month(now: datetime | None = None) -> str:
    return month_of(now or utcnow())
