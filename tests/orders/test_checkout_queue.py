"""The checkout queue (group commit): orders that arrive together are placed in one transaction, with the
single path's answers — and the database's invariants — for every one of them, on both databases."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from linli.core import lane
from linli.core.db import Database
from linli.core.events import Event
from linli.core.jobs import Job
from linli.identity.models import User
from linli.orders import checkout
from linli.orders.checkout import CheckoutQueue, PayWith, Placed
from linli.orders.errors import NoPickupPoint, NotForSale, PurchaseLimitReached, SoldOut
from linli.orders.models import Order, OrderLine, OrderStatusChange, PurchaseCount
from linli.orders.payments.models import Payment
from linli.orders.payments.providers.base import Scene
from linli.orders.payments.providers.sandbox import SandboxProvider
from linli.orders.schemas import OrderRead
from tests.orders.factories import Sale, count_rows, held_units, item_counts, make_buyers, make_sale


@pytest.fixture
async def queue(db: Database) -> AsyncIterator[CheckoutQueue]:
    """A queue as the app makes it (on a thread of its own on PostgreSQL), closed after the test."""
    made = CheckoutQueue(db, reservation_minutes=10)
    yield made
    await made.close()


async def _sale(db: Database, *, stock: int, limit: int) -> Sale:
    async with db.sessionmaker() as session:
        sale = await make_sale(session, stock=stock, per_user_limit=limit)
        await session.commit()
    return sale


async def _place_all(queue: CheckoutQueue, requests: list[tuple[User, Any, str | None]]) -> list[Any]:
    """Every request at once (all enqueued before the queue's task first runs); results or errors."""
    results = await asyncio.gather(
        *(queue.place(user, data, idempotency_key=key) for user, data, key in requests),
        return_exceptions=True,
    )
    return [r.order if isinstance(r, Placed) else r for r in results]


def _outcomes(results: list[Any]) -> Counter[str]:
    return Counter("ok" if isinstance(r, OrderRead) else type(r).__name__ for r in results)


async def test_orders_arriving_together_are_placed_in_one_transaction(
    queue: CheckoutQueue, db: Database
) -> None:
    sale = await _sale(db, stock=100, limit=5)
    users = await make_buyers(db, sale.community, 30)

    results = await _place_all(queue, [(u, sale.order(2), f"key-{u.id}") for u in users])

    assert _outcomes(results) == {"ok": 30}
    assert (queue.batches, queue.largest_batch, queue.failed_batches) == (1, 30, 0)
    assert await item_counts(db, sale.item.id) == (100, 60, 0)
    counts = await count_rows(db)
    assert (counts.orders, counts.lines, counts.changes, counts.counts, counts.events, counts.jobs) == (
        30,
        30,
        30,
        30,
        30,
        30,
    )
    by_user = {r.contact_phone: r for r in results}
    async with db.sessionmaker() as session:
        for user in users:
            placed = by_user[user.phone]
            order = await session.get(Order, placed.id)
            assert order is not None
            assert (order.user_id, order.total_fen, order.idempotency_key) == (
                user.id,
                5000,
                f"key-{user.id}",
            )
            assert (order.community_id, order.pickup_point_id) == (sale.community.id, sale.point.id)
            assert placed.total_fen == 5000
            assert placed.store_total_fen == 6000
            assert [(line.quantity, line.unit_price_fen) for line in placed.lines] == [(2, 2500)]
            assert placed.reserved_until == order.reserved_until
            event = await session.scalar(
                select(Event).where(Event.type == "order.created", Event.order_id == order.id)
            )
            assert event is not None
            assert (event.user_id, event.session_id, event.community_id) == (
                user.id,
                sale.live_session.id,
                sale.community.id,
            )
            assert event.payload["quantity"] == 2
            assert event.payload["total_fen"] == 5000
            job = await session.scalar(select(Job).where(Job.key == f"orders.expire:{order.id}"))
            assert job is not None
            assert job.run_at == order.reserved_until
    for user in users:
        assert await held_units(db, user.id, sale.item.id) == 2


async def test_a_batchs_events_count_as_the_apps_commits(queue: CheckoutQueue, db: Database) -> None:
    """The app's consumers wake on its database's commits; on PostgreSQL a batch commits through the
    queue's own connections, and its events must still reach the hooks here before its answers do."""
    sale = await _sale(db, stock=10, limit=5)
    users = await make_buyers(db, sale.community, 3)
    heard: list[list[tuple[str, int | None]]] = []
    db.commit_hooks.append(heard.append)
    before = db.event_commits
    results = await _place_all(queue, [(u, sale.order(1), None) for u in users])
    assert _outcomes(results) == {"ok": 3}
    assert db.event_commits == before + queue.batches
    told = Counter(kind for appended in heard for kind, _ in appended)
    assert told["order.created"] == 3
    assert {user for appended in heard for _, user in appended} == {u.id for u in users}
    assert queue.own_thread == (not db.is_sqlite)
    if queue.own_thread:  # its own connections: one for the batch, one to spare
        assert queue.batch_db is not db
        assert queue.batch_db.engine.pool.size() == 2  # type: ignore[attr-defined]


async def test_the_last_units_go_first_come_first_served(queue: CheckoutQueue, db: Database) -> None:
    sale = await _sale(db, stock=5, limit=5)
    first, second, third, fourth = await make_buyers(db, sale.community, 4)

    results = await _place_all(
        queue,
        [
            (first, sale.order(2), None),
            (second, sale.order(2), None),
            (third, sale.order(2), None),
            (fourth, sale.order(1), None),
        ],
    )

    assert isinstance(results[0], OrderRead)
    assert isinstance(results[1], OrderRead)
    assert isinstance(results[2], SoldOut)
    assert results[2].context == {"item_id": sale.item.id, "left": 1, "requested": 2}
    assert isinstance(results[3], OrderRead)  # the one unit left fits the fourth
    assert queue.batches == 1
    assert await item_counts(db, sale.item.id) == (5, 5, 0)
    # The refused neighbour holds nothing and has nothing: no order, no count, no event.
    assert await held_units(db, third.id, sale.item.id) == 0
    async with db.sessionmaker() as session:
        assert (
            await session.scalar(select(func.count()).select_from(Order).where(Order.user_id == third.id))
            == 0
        )
        assert (
            await session.scalar(select(func.count()).select_from(Event).where(Event.user_id == third.id))
            == 0
        )
    counts = await count_rows(db)
    assert (counts.orders, counts.lines, counts.events, counts.jobs) == (3, 3, 3, 3)


async def test_a_sold_out_batch_writes_nothing(queue: CheckoutQueue, db: Database) -> None:
    sale = await _sale(db, stock=2, limit=5)
    users = await make_buyers(db, sale.community, 5)
    await _place_all(queue, [(users[0], sale.order(2), None)])
    before = await count_rows(db)

    results = await _place_all(queue, [(u, sale.order(1), None) for u in users[1:]])

    assert _outcomes(results) == {"SoldOut": 4}
    assert await count_rows(db) == before


async def test_payments_asked_for_open_in_the_batch_and_a_refused_order_opens_none(
    queue: CheckoutQueue, db: Database
) -> None:
    sale = await _sale(db, stock=5, limit=5)
    users = await make_buyers(db, sale.community, 4)
    sandbox = SandboxProvider(b"s" * 32)
    pay = PayWith(sandbox, Scene.cashier, notify_url="http://linli/api/v1/payments/notify/sandbox")
    wanted = [(users[0], 2, pay), (users[1], 2, pay), (users[2], 1, None), (users[3], 2, pay)]

    results = await asyncio.gather(
        *(queue.place(user, sale.order(qty), pay=how) for user, qty, how in wanted), return_exceptions=True
    )

    assert queue.batches == 1
    first, second, unpaid, refused = results
    assert isinstance(refused, SoldOut)  # the last two units went to the earlier ones
    assert isinstance(unpaid, Placed)
    assert unpaid.payment is None
    async with db.sessionmaker() as session:
        stored = {p.out_trade_no: p for p in (await session.scalars(select(Payment))).all()}
        created = (
            await session.scalars(select(Event).where(Event.type.in_(["order.created", "payment.created"])))
        ).all()
    assert len(stored) == 2
    for user, placed in ((users[0], first), (users[1], second)):
        assert isinstance(placed, Placed)
        assert placed.payment is not None
        payment = placed.payment
        assert (payment.order_id, payment.amount_fen, payment.status) == (placed.order.id, 5000, "created")
        assert payment.checkout is not None
        assert payment.checkout.url == f"/pay/sandbox/{payment.out_trade_no}"
        row = stored[payment.out_trade_no]
        assert (row.id, row.user_id, row.order_id, row.provider, row.scene) == (
            payment.id,
            user.id,
            placed.order.id,
            "sandbox",
            "cashier",
        )
        assert row.checkout == {
            "scene": "cashier",
            "url": payment.checkout.url,
            "params": None,
            "prepay_ref": None,
        }
        # The order's events first, then its payment's: as on the one-by-one path.
        mine = [e for e in sorted(created, key=lambda e: e.id) if e.order_id == placed.order.id]
        assert [e.type for e in mine] == ["order.created", "payment.created"]
        assert mine[1].payload["payment_id"] == payment.id
        assert (mine[1].user_id, mine[1].session_id) == (user.id, sale.live_session.id)
    assert await item_counts(db, sale.item.id) == (5, 5, 0)


async def test_one_neighbours_parallel_orders_keep_to_the_limit(queue: CheckoutQueue, db: Database) -> None:
    sale = await _sale(db, stock=100, limit=3)
    [user] = await make_buyers(db, sale.community, 1)

    results = await _place_all(queue, [(user, sale.order(1), None) for _ in range(20)])

    assert _outcomes(results) == {"ok": 3, "PurchaseLimitReached": 17}
    # One request per neighbour per batch: the others waited for later batches.
    assert queue.batches == 20
    assert await held_units(db, user.id, sale.item.id) == 3
    assert await item_counts(db, sale.item.id) == (100, 3, 0)
    refusal = next(r for r in results if isinstance(r, PurchaseLimitReached))
    assert refusal.context["held"] == 3


async def test_the_same_key_twice_is_one_order(queue: CheckoutQueue, db: Database) -> None:
    sale = await _sale(db, stock=10, limit=5)
    [user] = await make_buyers(db, sale.community, 1)

    results = await _place_all(queue, [(user, sale.order(1), "same-key"), (user, sale.order(1), "same-key")])

    assert all(isinstance(r, OrderRead) for r in results)
    assert results[0].id == results[1].id
    assert await item_counts(db, sale.item.id) == (10, 1, 0)
    assert (await count_rows(db)).orders == 1


async def test_refusals_are_each_requests_own(queue: CheckoutQueue, db: Database) -> None:
    """One request's error (not on sale, no community) leaves the others of its batch alone."""
    sale = await _sale(db, stock=10, limit=5)
    async with db.sessionmaker() as session:
        ended = await make_sale(session, stock=10, per_user_limit=5)
        ended.live_session.status = "ended"
        await session.commit()
    members = await make_buyers(db, sale.community, 2)
    async with db.sessionmaker() as session:
        from tests.orders.factories import make_buyer

        stranger = await make_buyer(session, None)
        await session.commit()

    results = await _place_all(
        queue,
        [
            (members[0], sale.order(1), None),
            (members[1], ended.order(1), None),
            (stranger, sale.order(1), None),
        ],
    )

    assert isinstance(results[0], OrderRead)
    assert isinstance(results[1], NotForSale)
    assert isinstance(results[2], NoPickupPoint)
    assert queue.batches == 1
    assert (await count_rows(db)).orders == 1


async def test_a_batch_that_fails_is_placed_one_by_one(
    queue: CheckoutQueue, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    sale = await _sale(db, stock=10, limit=5)
    users = await make_buyers(db, sale.community, 4)
    real = checkout._insert_order_rows
    calls = 0

    async def flaky(*args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("the database went away mid-batch")
        await real(*args)

    monkeypatch.setattr(checkout, "_insert_order_rows", flaky)

    results = await _place_all(queue, [(u, sale.order(2), None) for u in users])

    assert _outcomes(results) == {"ok": 4}
    assert queue.failed_batches == 1
    # Nothing of the failed batch remained: each order exactly once, through the single path.
    assert await item_counts(db, sale.item.id) == (10, 8, 0)
    counts = await count_rows(db)
    assert (counts.orders, counts.lines, counts.changes, counts.events, counts.jobs) == (4, 4, 4, 4, 4)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stock=st.integers(min_value=1, max_value=12),
    limit=st.integers(min_value=1, max_value=4),
    asks=st.lists(
        st.tuples(st.integers(min_value=0, max_value=5), st.integers(min_value=1, max_value=4)),
        min_size=1,
        max_size=25,
    ),
)
async def test_batches_never_oversell_nor_pass_a_limit(
    queue: CheckoutQueue, db: Database, stock: int, limit: int, asks: list[tuple[int, int]]
) -> None:
    """Random neighbours (some asking several times) rush a small item through the queue: units and
    counts add up, nobody passes the limit, and every refusal was right when it was made."""
    sale = await _sale(db, stock=stock, limit=limit)
    users = await make_buyers(db, sale.community, 6)

    results = await _place_all(queue, [(users[u], sale.order(q), None) for u, q in asks])

    granted: Counter[int] = Counter()
    for (u, qty), result in zip(asks, results, strict=True):
        if isinstance(result, OrderRead):
            granted[u] += qty
        else:
            assert isinstance(result, SoldOut | PurchaseLimitReached), result
    _, reserved, sold = await item_counts(db, sale.item.id)
    assert sold == 0
    assert reserved == sum(granted.values()) <= stock
    left = stock - reserved
    for (u, qty), result in zip(asks, results, strict=True):
        assert granted[u] <= limit
        # Units and holdings only grew during the rush: a refusal still holds at the end.
        if isinstance(result, SoldOut):
            assert qty > left
        if isinstance(result, PurchaseLimitReached):
            assert granted[u] + qty > limit
    async with db.sessionmaker() as session:
        counts = dict(
            (
                await session.execute(
                    select(PurchaseCount.user_id, PurchaseCount.units).where(
                        PurchaseCount.lineup_item_id == sale.item.id
                    )
                )
            ).all()
        )
        lines = await session.scalar(
            select(func.coalesce(func.sum(OrderLine.quantity), 0)).where(
                OrderLine.lineup_item_id == sale.item.id
            )
        )
        changes = await session.scalar(
            select(func.count())
            .select_from(OrderStatusChange)
            .join(Order)
            .where(Order.session_id == sale.live_session.id)
        )
    assert {users[u].id: n for u, n in granted.items() if n} == {k: v for k, v in counts.items() if v}
    assert lines == reserved
    assert changes == sum(1 for r in results if isinstance(r, OrderRead))
    assert queue.failed_batches == 0


async def test_a_checkout_thread_that_cannot_start_fails_the_order_instead_of_hanging(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    sale = await _sale(db, stock=10, limit=5)
    (user,) = await make_buyers(db, sale.community, 1)
    made: list[str] = []

    def database(url: str, **options: Any) -> Database:
        made.append(url)
        if len(made) == 1:
            raise OSError("no connections left")
        return Database(url, **options)

    monkeypatch.setattr(lane, "Database", database)
    queue = CheckoutQueue(db, reservation_minutes=10, own_thread=True)
    try:
        with pytest.raises(RuntimeError, match="did not start"):
            await asyncio.wait_for(queue.place(user, sale.order(1)), timeout=10)
        assert await item_counts(db, sale.item.id) == (10, 0, 0)
        # The next order starts a new thread, and goes through.
        placed = await asyncio.wait_for(queue.place(user, sale.order(1)), timeout=10)
        assert placed.order.total_fen == 2500
        assert made == [db.url, db.url]
    finally:
        await queue.close()
