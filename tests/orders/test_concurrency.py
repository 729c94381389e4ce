"""Many clients at once, each in its own transaction and connection: no oversell, no limit passed, one
order per Idempotency-Key — on both databases."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import func, select

from linli.core.db import Database
from linli.identity.models import User
from linli.orders import service
from linli.orders.errors import PurchaseLimitReached, SoldOut
from linli.orders.models import Order
from linli.orders.schemas import OrderCreate
from tests.orders.factories import held_units, item_counts, make_buyers, make_sale


async def _attempt(db: Database, user: User, data: OrderCreate, key: str | None = None) -> str | int:
    async with db.sessionmaker() as session:
        try:
            order = await service.create_order(session, user, data, idempotency_key=key)
            await session.commit()
        except (SoldOut, PurchaseLimitReached) as exc:
            await session.rollback()
            return exc.name
    return order.id


async def test_fifty_neighbours_for_ten_units(db: Database) -> None:
    async with db.sessionmaker() as session:
        sale = await make_sale(session, stock=10, per_user_limit=5)
        await session.commit()
    users = await make_buyers(db, sale.community, 50)

    results = await asyncio.gather(*(_attempt(db, u, sale.order(1)) for u in users))

    outcomes = Counter("ok" if isinstance(r, int) else r for r in results)
    assert outcomes == {"ok": 10, "SoldOut": 40}
    assert await item_counts(db, sale.item.id) == (10, 10, 0)
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 10


async def test_twenty_parallel_orders_by_one_neighbour_with_a_limit_of_three(db: Database) -> None:
    async with db.sessionmaker() as session:
        sale = await make_sale(session, stock=100, per_user_limit=3)
        await session.commit()
    [user] = await make_buyers(db, sale.community, 1)

    results = await asyncio.gather(*(_attempt(db, user, sale.order(1)) for _ in range(20)))

    outcomes = Counter("ok" if isinstance(r, int) else r for r in results)
    assert outcomes == {"ok": 3, "PurchaseLimitReached": 17}
    assert await held_units(db, user.id, sale.item.id) == 3
    assert await item_counts(db, sale.item.id) == (100, 3, 0)


async def test_concurrent_retries_with_one_key_make_one_order(db: Database) -> None:
    async with db.sessionmaker() as session:
        sale = await make_sale(session, stock=100, per_user_limit=5)
        await session.commit()
    [user] = await make_buyers(db, sale.community, 1)

    results = await asyncio.gather(*(_attempt(db, user, sale.order(2), key="tap-1") for _ in range(12)))

    assert len(set(results)) == 1
    assert isinstance(results[0], int)
    assert await item_counts(db, sale.item.id) == (100, 2, 0)
    assert await held_units(db, user.id, sale.item.id) == 2
