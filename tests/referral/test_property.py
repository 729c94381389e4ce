"""Attribution invariants under random sequences of visits, logins, payments and refunds (hypothesis,
each example on a fresh migrated SQLite database): credits are exact whatever the order of events."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from linli.core.db import Database
from linli.orders.models import Order
from linli.referral import leaderboard, service
from linli.referral.models import Binding, Conversion
from tests.referral.factories import World

NAMES = "ABCD"
step = st.one_of(
    st.tuples(st.just("visit"), st.sampled_from(NAMES), st.sampled_from(NAMES), st.integers(0, 12)),
    st.tuples(st.just("pay"), st.sampled_from(NAMES), st.integers(0, 12)),
    st.tuples(st.just("refund"), st.sampled_from(NAMES), st.integers(0, 12)),
)


async def _scenario(url: str, steps: list[tuple]) -> None:
    db = Database(url)
    try:
        world = await World.create(db, NAMES)
        await world.join("A", "B", "C", "D")
        # Steps happen in time order (a day each), as a log would.
        for i, (verb, *args) in enumerate(sorted(steps, key=lambda s: s[-1])):
            days = args[-1] + i * 0.001
            if verb == "visit":
                await world.visit(args[0], args[1], days=days)
            elif verb == "pay":
                await world.pay(args[0], days=days)
            elif world.orders.get(args[0]):
                async with db.sessionmaker() as session:
                    order = await session.get(Order, world.orders[args[0]][-1])
                    refundable = order is not None and order.status == "paid"
                if refundable:
                    await world.refund(args[0], days=days)
        await _check(db, world)
    finally:
        await db.dispose()


async def _check(db: Database, world: World) -> None:
    async with db.sessionmaker() as session:
        conversions = (await session.scalars(select(Conversion))).all()
        bindings = (await session.scalars(select(Binding))).all()
        orders = {o.id: o for o in (await session.scalars(select(Order))).all()}
        month = service.month_of(world.t0)
        board = await leaderboard.standings(session, world.sale.community.id, month)
    referees = [c.referee_id for c in conversions]
    assert len(referees) == len(set(referees))  # one conversion per referee, ever
    credited = {(c.referrer_id, c.referee_id) for c in conversions}
    for c in conversions:
        order = orders[c.order_id]
        assert c.referrer_id != c.referee_id
        assert (c.referee_id, c.referrer_id) not in credited  # no loop credited both ways
        assert order.user_id == c.referee_id
        assert c.revenue_fen == order.total_fen
        # Their first paid order, and nothing earlier was paid.
        earlier = [
            o
            for o in orders.values()
            if o.user_id == c.referee_id and o.paid_at and o.paid_at < order.paid_at
        ]
        assert earlier == []
        # The sharer's link was opened before the payment, inside the window.
        assert any(
            b.sharer_id == c.referrer_id
            and b.user_id == c.referee_id
            and b.bound_at <= order.paid_at < b.expires_at
            for b in bindings
        )
        assert (c.reversed_at is not None) == (order.status == "refunded")
    live = [c for c in conversions if c.reversed_at is None and c.month == service.month_of(world.t0)]
    assert sum(s.conversions for s in board) == len(live)
    assert sum(s.revenue_fen for s in board) == sum(c.revenue_fen for c in live)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=1, max_size=10))
def test_credits_are_exact_for_any_sequence(sqlite_template: Path, steps: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "linli.db"
        shutil.copy(sqlite_template, path)
        asyncio.run(_scenario(f"sqlite+aiosqlite:///{path}", steps))
