"""Many clients at once, each in its own transaction and connection: no oversell, no limit passed, one
order per Idempotency-Key — on both databases."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from sqlalchemy import event, func, select

from linli.core.db import Database
from linli.identity.models import User
from linli.identity.tokens import issue_session
from linli.orders import service
from linli.orders.errors import PurchaseLimitReached, SoldOut
from linli.orders.models import Order
from linli.orders.schemas import OrderCreate
from tests.factories import bearer
from tests.orders.factories import Sale, held_units, item_counts, make_buyer, make_buyers, make_sale


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


# --- over HTTP: the hot path of a flash sale ---------------------------------------------------------


async def _neighbours_with_tokens(db: Database, sale: Sale, n: int) -> list[tuple[User, str]]:
    async with db.sessionmaker() as session:
        users = [await make_buyer(session, sale.community) for _ in range(n)]
        tokens = [await issue_session(session, user) for user in users]
        await session.commit()
    return list(zip(users, tokens, strict=True))


async def test_forty_neighbours_rush_thirty_units_over_http(client: httpx.AsyncClient, db: Database) -> None:
    """1–3 units each, all at once through the API: every unit goes to exactly one 201, the rest are
    told what is left, and each order is picked up at the neighbour's community's open point."""
    async with db.sessionmaker() as session:
        sale = await make_sale(session, stock=30, per_user_limit=3)
        await session.commit()
    neighbours = await _neighbours_with_tokens(db, sale, 40)
    quantities = [1 + i % 3 for i in range(len(neighbours))]

    async def buy(token: str, quantity: int) -> httpx.Response:
        return await client.post(
            "/api/v1/orders",
            json={"session_id": sale.live_session.id, "lineup_item_id": sale.item.id, "quantity": quantity},
            headers={**bearer(token), "Idempotency-Key": f"rush-{token[:16]}"},
        )

    responses = await asyncio.gather(*(buy(t, q) for (_, t), q in zip(neighbours, quantities, strict=True)))

    assert {r.status_code for r in responses} <= {201, 409}
    placed = [r.json() for r in responses if r.status_code == 201]
    refused = [r.json() for r in responses if r.status_code == 409]
    assert all(body["error"] == "SoldOut" for body in refused)
    assert refused, "40 neighbours asking for 80 units of 30: some must be refused"
    units = sum(sum(line["quantity"] for line in body["lines"]) for body in placed)
    stock, reserved, sold = await item_counts(db, sale.item.id)
    assert (reserved, sold) == (units, 0)
    assert units <= stock
    assert {body["pickup_point_id"] for body in placed} == {sale.point.id}


async def test_a_checkout_and_a_sold_out_refusal_take_few_statements(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Round trips are the flash sale's cost (bench/flash_sale.py): the auth lookup brings the roles along,
    the pickup point comes with the community in one query, and a refusal reads only the item. A new
    statement on this path should be a decision, not an accident."""
    async with db.sessionmaker() as session:
        sale = await make_sale(session, stock=3, per_user_limit=3)
        await session.commit()
    [(_, token), (_, late)] = await _neighbours_with_tokens(db, sale, 2)
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    body = {"session_id": sale.live_session.id, "lineup_item_id": sale.item.id, "quantity": 3}
    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        placed = await client.post("/api/v1/orders", json=body, headers=bearer(token))
        checkout = len(statements)
        statements.clear()
        refused = await client.post("/api/v1/orders", json=body, headers=bearer(late))
        refusal = len(statements)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)

    assert placed.status_code == 201, placed.text
    assert refused.status_code == 409
    assert refused.json()["error"] == "SoldOut"
    # SQLite's BEGIN IMMEDIATE is a statement of its own (one for the request's look-up of who is
    # calling, one for the checkout batch's transaction); PostgreSQL's BEGIN is not counted here.
    begins = 2 if db.is_sqlite else 0
    # user+roles; then the batch: item, community+points, order, count, stock, line, history, expiry
    # job, event
    assert checkout <= 10 + begins, statements
    # user+roles, item
    assert refusal <= 2 + begins, statements
