"""The monthly leaderboard's order, the weekly honour, and the month close: exactly once per community
and month under concurrent runs and after a runner died mid-close, with coupons in a ledger."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from linli.community.models import InboxItem
from linli.core.db import Database
from linli.core.events import Event
from linli.core.jobs import RUNNING, Job, JobRegistry, run_due_jobs
from linli.orders import coupons
from linli.orders.coupon_schemas import CouponTemplateCreate
from linli.orders.models import Coupon
from linli.referral import honours, leaderboard, service
from linli.referral.models import Honour, LeaderboardClose, Reward
from tests.referral.factories import World


async def _board_world(db: Database) -> World:
    """A brings B and C; D brings E, who buys 3 (more revenue); F brings G before H brings I."""
    world = await World.create(db, "ABCDEFGHIJ")
    await world.join("D", "F", "H", "J")
    for referrer, referee, days, quantity in [
        ("A", "B", 0.001, 1),
        ("A", "C", 0.002, 1),
        ("D", "E", 0.003, 3),
        ("F", "G", 0.004, 1),
        ("H", "I", 0.005, 1),
    ]:
        await world.visit(referee, referrer, days=days)
        await world.pay(referee, days=days + 0.0001, quantity=quantity)
    return world


async def _rewarded(db: Database, world: World, *, top_n: int, templates: int) -> list[int]:
    """``templates`` coupon templates, for ranks 1.. of a top ``top_n``."""
    template_ids = await _templates(db, world, templates)
    async with db.sessionmaker() as session:
        await service.update_referral_settings(
            session, actor=world.users["J"], top_n=top_n, reward_template_ids=template_ids
        )
        await session.commit()
    return template_ids


async def _templates(db: Database, world: World, n: int) -> list[int]:
    async with db.sessionmaker() as session:
        ids = []
        for rank in range(1, n + 1):
            template = await coupons.create_template(
                session,
                CouponTemplateCreate(
                    name=f"分享达人第{rank}名", kind="fixed", amount_fen=1000 // rank, valid_days=30
                ),
                actor=world.users["J"],
            )
            ids.append(template.id)
        await session.commit()
    return ids


async def test_the_board_ranks_conversions_then_revenue_then_who_got_there_first(db: Database) -> None:
    world = await _board_world(db)
    month = service.month_of(world.at(0.003))
    async with db.sessionmaker() as session:
        rows = await leaderboard.standings(session, world.sale.community.id, month)
    names = {u.id: n for n, u in world.users.items()}
    assert [(names[r.user_id], r.rank, r.conversions, r.revenue_fen) for r in rows] == [
        ("A", 1, 2, 5000),
        ("D", 2, 1, 7500),
        ("F", 3, 1, 2500),
        ("H", 4, 1, 2500),
    ]


async def test_a_refund_takes_the_conversion_off_the_board(db: Database) -> None:
    world = await _board_world(db)
    await world.refund("B", days=0.01)
    month = service.month_of(world.at(0.003))
    async with db.sessionmaker() as session:
        rows = await leaderboard.standings(session, world.sale.community.id, month)
    assert rows[0].user_id == world.users["D"].id
    assert [(r.user_id, r.conversions) for r in rows if r.user_id == world.users["A"].id] == [
        (world.users["A"].id, 1)
    ]


async def _close_concurrently(db: Database, month: str, runs: int) -> list[int]:
    async def one() -> int:
        async with db.sessionmaker() as session:
            closed = await leaderboard.close_month(session, month)
            await session.commit()
            return closed

    return list(await asyncio.gather(*(one() for _ in range(runs))))


async def test_month_close_is_exactly_once_under_concurrent_runs(db: Database) -> None:
    world = await _board_world(db)
    template_ids = await _rewarded(db, world, top_n=3, templates=2)
    month = service.month_of(world.at(0.003))
    results = await _close_concurrently(db, month, 6)
    assert sorted(results) == [0, 0, 0, 0, 0, 1]
    async with db.sessionmaker() as session:
        rewards = (await session.scalars(select(Reward).order_by(Reward.rank))).all()
        issued = (await session.scalars(select(Coupon).where(Coupon.source.like("referral:%")))).all()
        closed = (await session.scalars(select(Event).where(Event.type == "leaderboard.closed"))).all()
        granted = await session.scalar(
            select(func.count()).select_from(Event).where(Event.type == "referral.reward_granted")
        )
    names = {u.id: n for n, u in world.users.items()}
    assert [(r.rank, names[r.user_id], r.coupon_template_id) for r in rewards] == [
        (1, "A", template_ids[0]),
        (2, "D", template_ids[1]),
        (3, "F", None),
    ]
    assert sorted((c.user_id, c.template_id) for c in issued) == sorted(
        [(world.users["A"].id, template_ids[0]), (world.users["D"].id, template_ids[1])]
    )
    assert {r.coupon_id for r in rewards if r.coupon_id} == {c.id for c in issued}
    assert len(closed) == 1
    assert closed[0].payload["month"] == month
    assert [w["rank"] for w in closed[0].payload["winners"]] == [1, 2, 3]
    assert granted == 3


async def test_the_close_timer_survives_a_dead_runner_and_grants_once(db: Database) -> None:
    world = await _board_world(db)
    await _rewarded(db, world, top_n=1, templates=1)
    month = service.month_of(world.at(0.003))
    async with db.sessionmaker() as session:
        job = await session.scalar(select(Job).where(Job.key == f"{leaderboard.CLOSE_MONTH}:{month}"))
        assert job is not None
        assert job.run_at == leaderboard.month_end(month)
        # A runner claimed it and died: its lease lapsed long ago.
        job.status, job.locked_until, job.attempts = RUNNING, job.run_at, 1
        await session.commit()
    registry = JobRegistry()
    registry.add(leaderboard.CLOSE_MONTH, leaderboard.close_month_job)
    after = leaderboard.month_end(month) + timedelta(minutes=5)
    assert sum(await asyncio.gather(*(run_due_jobs(db, registry, now=after) for _ in range(3)))) >= 1
    # And a manual close (or a retry) afterwards changes nothing.
    assert await _close_concurrently(db, month, 2) == [0, 0]
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Reward)) == 1
        assert await session.scalar(select(func.count()).select_from(LeaderboardClose)) == 1
        assert (await session.get(Job, job.id)).status == "done"  # type: ignore[union-attr]


async def test_the_honour_is_once_a_week_and_counts_later_conversions(db: Database) -> None:
    world = await World.create(db, "ABCD")
    for referee, days in (("B", 0.001), ("C", 0.002)):
        await world.visit(referee, "A", days=days)
        await world.pay(referee, days=days + 0.0001)
    async with db.sessionmaker() as session:
        rows = (await session.scalars(select(Honour))).all()
        items = (await session.scalars(select(InboxItem).where(InboxItem.kind == "honour"))).all()
        notices = (await session.scalars(select(Event).where(Event.type == "live.notice_posted"))).all()
    honoured = await world.events("referral.honoured")
    text = "恭喜@A哥成为本周的'社区美食推荐官'!"
    assert [(r.referrer_id, r.conversions) for r in rows] == [(world.users["A"].id, 2)]
    assert len(honoured) == 1
    payload = honoured[0].payload
    assert payload["text"] == text
    assert payload["week"] == rows[0].week
    assert payload["community_name"] == world.sale.community.name
    assert honoured[0].session_id == world.sale.live_session.id  # the sale is live
    assert [(i.user_id, i.title) for i in items] == [(world.users["A"].id, text)]
    assert [(n.session_id, n.payload["text"], n.payload["kind"]) for n in notices] == [
        (world.sale.live_session.id, text, "honour")
    ]


def test_weeks_are_iso_weeks_in_shanghai() -> None:
    from datetime import UTC, datetime

    from linli.referral.models import Conversion

    # Sunday 2026-12-06 17:00 UTC is Monday 01:00 in Shanghai: week 50, not 49.
    late = Conversion(converted_at=datetime(2026, 12, 6, 17, 0, tzinfo=UTC))
    assert honours.week_of(late) == "2026-W50"
    assert leaderboard.month_end("2026-12") == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
