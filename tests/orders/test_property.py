"""Property: whatever sequence of create / cancel / expire / pay / late pay / refund / complete arrives,
on either database,

- reserved + sold <= stock;
- reserved == the units of pending orders;
- sold == the units of orders ever paid (paid, refund requested, refunded, completed);
- each neighbour's purchase count == the units of their pending, paid, refund-requested or completed orders;
- money adds up: every paid order was paid exactly its total.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from linli.core.db import Database
from linli.core.errors import LinliError
from linli.live.models import LineupItem
from linli.orders import service
from linli.orders.models import HOLDING, PAID_STATUSES, Order, OrderStatus, PurchaseCount
from tests.orders.factories import make_buyer, make_sale

STOCK, LIMIT, USERS = 8, 4, 3

step = st.one_of(
    st.tuples(st.just("create"), st.integers(0, USERS - 1), st.integers(1, LIMIT + 1)),
    st.tuples(
        st.sampled_from(["cancel", "expire", "pay", "refund", "complete"]), st.integers(0, 15), st.just(0)
    ),
)


async def _check(db: Database, session_id: int, item_id: int) -> None:
    async with db.sessionmaker() as session:
        item = (
            await session.execute(
                select(LineupItem.stock, LineupItem.reserved, LineupItem.sold).where(LineupItem.id == item_id)
            )
        ).one()
        orders = (await session.scalars(select(Order).where(Order.session_id == session_id))).all()
        counts = {
            c.user_id: c.units
            for c in (
                await session.scalars(select(PurchaseCount).where(PurchaseCount.lineup_item_id == item_id))
            ).all()
        }
    assert 0 <= item.reserved + item.sold <= item.stock
    assert item.reserved == sum(o.units for o in orders if o.status == OrderStatus.pending_payment)
    assert item.sold == sum(o.units for o in orders if o.status in PAID_STATUSES)
    held: dict[int, int] = defaultdict(int)
    for o in orders:
        if o.status in HOLDING:
            held[o.user_id] += o.units
    assert {u: n for u, n in counts.items() if n} == {u: n for u, n in held.items() if n}
    assert all(n <= LIMIT for n in counts.values())
    for o in orders:
        assert (o.payment_ref is not None) == (o.status in PAID_STATUSES)


async def _run(url: str, steps: list[tuple[str, int, int]]) -> None:
    db = Database(url)  # pooled: one connection per step would dominate the run
    try:
        async with db.sessionmaker() as session:
            sale = await make_sale(session, stock=STOCK, per_user_limit=LIMIT)
            users = [await make_buyer(session, sale.community) for _ in range(USERS)]
            await session.commit()
        placed: list[Order] = []
        for n, (op, who, qty) in enumerate(steps):
            async with db.sessionmaker() as session:
                try:
                    if op == "create":
                        placed.append(await service.create_order(session, users[who], sale.order(qty)))
                    elif placed:
                        order = placed[who % len(placed)]
                        owner = next(u for u in users if u.id == order.user_id)
                        if op == "cancel":
                            await service.cancel_order(session, order.id, user=owner)
                        elif op == "expire":
                            await service.expire_order(session, order.id)
                        elif op == "pay":
                            await service.mark_paid(
                                session,
                                order.id,
                                amount_fen=order.total_fen,
                                provider="sandbox",
                                provider_ref=f"tx-{order.id}",
                            )
                        elif op == "refund":
                            await service.mark_refunded(session, order.id, provider_ref=f"rf-{n}")
                        else:
                            await service.complete_order(session, order.id)
                    await session.commit()
                except LinliError:
                    await session.rollback()
            await _check(db, sale.live_session.id, sale.item.id)
    finally:
        await db.dispose()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=20))
def test_stock_counts_and_money_stay_consistent(database_url: str, steps: list[tuple[str, int, int]]) -> None:
    asyncio.run(_run(database_url, steps))
