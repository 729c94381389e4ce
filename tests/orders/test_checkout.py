"""create_order: pricing at the live price, what is refused (and that a refusal writes nothing),
fulfilment, reservation and idempotency."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from linli.core.clock import utcnow
from linli.core.db import Database
from linli.core.events import Event
from linli.core.jobs import Job
from linli.live.models import LineupItem, LiveSession, SessionStatus
from linli.orders import service
from linli.orders.errors import (
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    LineupItemNotFound,
    NoPickupPoint,
    NotForSale,
    PurchaseLimitReached,
    SoldOut,
    StoreUnavailable,
)
from linli.orders.models import Order, OrderStatus, OrderStatusChange
from tests.community.factories import make_pickup_point, make_store
from tests.orders.conftest import Caller
from tests.orders.factories import Sale, count_rows, held_units, item_counts, make_buyer, make_sale


async def _create(
    db: Database, caller: Caller, sale: Sale, quantity: int = 1, *, key: str | None = None, **fields
):
    async with db.sessionmaker() as session:
        order = await service.create_order(
            session, caller.user, sale.order(quantity, **fields), idempotency_key=key
        )
        await session.commit()
    return order


class TestCreateOrder:
    async def test_reserves_units_at_the_live_price_and_records_everything(
        self, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        order = await _create(db, buyer, sale, 3)

        assert order.status == OrderStatus.pending_payment
        assert (order.subtotal_fen, order.discount_fen, order.total_fen) == (7500, 0, 7500)
        [line] = order.lines
        assert (line.product_name, line.unit_price_fen, line.store_price_fen, line.quantity) == (
            "春季限定青团",
            2500,
            3000,
            3,
        )
        assert order.fulfilment == "pickup"
        assert order.pickup_point_id == sale.point.id
        assert order.community_id == sale.community.id
        assert order.contact_phone == buyer.user.phone
        assert timedelta(minutes=9) < order.reserved_until - utcnow() <= timedelta(minutes=10)
        assert await item_counts(db, sale.item.id) == (10, 3, 0)
        assert await held_units(db, buyer.user.id, sale.item.id) == 3

        async with db.sessionmaker() as session:
            [event] = (await session.scalars(select(Event).where(Event.type == "order.created"))).all()
            assert (event.user_id, event.session_id, event.order_id, event.community_id) == (
                buyer.user.id,
                sale.live_session.id,
                order.id,
                sale.community.id,
            )
            assert event.payload["quantity"] == 3
            [job] = (await session.scalars(select(Job))).all()
            assert job.kind == "orders.expire_reservation"
            assert job.run_at == order.reserved_until
            assert job.payload == {"order_id": order.id}
            [change] = (await session.scalars(select(OrderStatusChange))).all()
            assert (change.from_status, change.to_status) == (None, "pending_payment")

    async def test_a_chosen_pickup_point_and_a_contact_phone(
        self, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            second = await make_pickup_point(session, community=sale.community, name="2 号门")
            await session.commit()
        order = await _create(db, buyer, sale, pickup_point_id=second.id, contact_phone="139 1234-5678")
        assert order.pickup_point_id == second.id
        assert order.contact_phone == "13912345678"

    async def test_store_pickup_needs_no_community(self, db: Database, sale: Sale) -> None:
        async with db.sessionmaker() as session:
            store = await make_store(session)
            loner = await make_buyer(session, None)
            await session.commit()
        order = await _create(db, Caller(loner, ""), sale, fulfilment="store", store_id=store.id)
        assert (order.fulfilment, order.store_id, order.pickup_point_id, order.community_id) == (
            "store",
            store.id,
            None,
            None,
        )

    async def test_the_reservation_time_is_configurable(
        self, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            order = await service.create_order(session, buyer.user, sale.order(1), reservation_minutes=3)
            await session.commit()
        assert order.reserved_until - order.created_at == timedelta(minutes=3)


async def _refused(db: Database, caller: Caller, data, error: type[Exception], **kwargs) -> Exception:
    before = await count_rows(db)
    async with db.sessionmaker() as session:
        with pytest.raises(error) as info:
            await service.create_order(session, caller.user, data, **kwargs)
        await session.rollback()
    assert await count_rows(db) == before
    return info.value


class TestRefusals:
    async def test_sold_out_and_the_limit_counting_earlier_orders(
        self, db: Database, sale: Sale, buyer: Caller, other_buyer: Caller
    ) -> None:
        await _create(db, buyer, sale, 3)
        error = await _refused(db, buyer, sale.order(3), PurchaseLimitReached)  # 3 + 3 > 5
        assert (error.context["held"], error.context["left"]) == (3, 2)
        await _create(db, other_buyer, sale, 5)
        async with db.sessionmaker() as session:
            third = await make_buyer(session, sale.community)
            await session.commit()
        error = await _refused(db, Caller(third, ""), sale.order(3), SoldOut)  # 10 - 8 = 2 left
        assert error.status_code == 409
        assert "only 2 unit(s) left" in str(error)
        await _create(db, Caller(third, ""), sale, 2)
        error = await _refused(db, Caller(third, ""), sale.order(1), SoldOut)
        assert "sold out" in str(error)

    async def test_quantity_above_the_limit(self, db: Database, sale: Sale, buyer: Caller) -> None:
        error = await _refused(db, buyer, sale.order(6), PurchaseLimitReached)
        assert error.status_code == 409
        assert "5 per person" in str(error)

    async def test_not_for_sale_unless_live(self, db: Database, buyer: Caller) -> None:
        for status, reason in (
            (SessionStatus.scheduled, "not_live_yet"),
            (SessionStatus.ended, "ended"),
            (SessionStatus.draft, "not_open"),
        ):
            async with db.sessionmaker() as session:
                other = await make_sale(session, status=status)
                await session.commit()
            error = await _refused(db, buyer, other.order(1), NotForSale)
            assert error.context["reason"] == reason
            if reason == "ended":
                assert "¥30 in our stores" in str(error)

    async def test_not_for_sale_outside_the_item_window(
        self, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        now = utcnow()
        async with db.sessionmaker() as session:
            item = await session.get(LineupItem, sale.item.id)
            assert item is not None
            item.sale_starts_at = now + timedelta(minutes=30)
            await session.commit()
        error = await _refused(db, buyer, sale.order(1), NotForSale)
        assert error.context["reason"] == "not_started"
        async with db.sessionmaker() as session:
            item = await session.get(LineupItem, sale.item.id)
            assert item is not None
            item.sale_starts_at, item.sale_ends_at = now - timedelta(hours=1), now - timedelta(minutes=1)
            await session.commit()
        error = await _refused(db, buyer, sale.order(1), NotForSale)
        assert error.context["reason"] == "ended"

    async def test_not_for_sale_once_taken_off_the_lineup(
        self, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            item = await session.get(LineupItem, sale.item.id)
            assert item is not None
            item.archived_at = utcnow()
            await session.commit()
        error = await _refused(db, buyer, sale.order(1), NotForSale)
        assert error.context["reason"] == "archived"

    async def test_unknown_item_session_or_an_item_of_another_session(
        self, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            other = await make_sale(session)
            await session.commit()
        await _refused(db, buyer, sale.order(1, lineup_item_id=10**9), LineupItemNotFound)
        await _refused(db, buyer, sale.order(1, session_id=10**9), LineupItemNotFound)
        error = await _refused(db, buyer, sale.order(1, lineup_item_id=other.item.id), LineupItemNotFound)
        assert error.status_code == 404  # the other session's item is not in this session's lineup

    async def test_pickup_needs_a_community_with_an_open_point(self, db: Database, sale: Sale) -> None:
        async with db.sessionmaker() as session:
            loner = await make_buyer(session, None)
            await session.commit()
        error = await _refused(db, Caller(loner, ""), sale.order(1), NoPickupPoint)
        assert error.status_code == 422

    async def test_a_pickup_point_of_another_community(self, db: Database, sale: Sale, buyer: Caller) -> None:
        async with db.sessionmaker() as session:
            other = await make_sale(session)
            await session.commit()
        await _refused(db, buyer, sale.order(1, pickup_point_id=other.point.id), NoPickupPoint)

    async def test_a_closed_or_unknown_store(self, db: Database, sale: Sale, buyer: Caller) -> None:
        async with db.sessionmaker() as session:
            closed = await make_store(session, archived=True)
            await session.commit()
        await _refused(db, buyer, sale.order(1, fulfilment="store", store_id=closed.id), StoreUnavailable)
        await _refused(db, buyer, sale.order(1, fulfilment="store", store_id=10**9), StoreUnavailable)


class TestIdempotency:
    async def test_the_same_key_returns_the_same_order(self, db: Database, sale: Sale, buyer: Caller) -> None:
        first = await _create(db, buyer, sale, 2, key="k-1")
        again = await _create(db, buyer, sale, 2, key="k-1")
        assert again.id == first.id
        assert await item_counts(db, sale.item.id) == (10, 2, 0)

    async def test_a_retry_after_the_sale_ended_still_returns_the_order(
        self, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        first = await _create(db, buyer, sale, 2, key="k-1")
        async with db.sessionmaker() as session:
            live_session = await session.get(LiveSession, sale.live_session.id)
            assert live_session is not None
            live_session.status, live_session.ended_at = SessionStatus.ended.value, utcnow()
            await session.commit()
        assert (await _create(db, buyer, sale, 2, key="k-1")).id == first.id
        await _refused(db, buyer, sale.order(2), NotForSale, idempotency_key="k-2")
        await _refused(db, buyer, sale.order(1), IdempotencyKeyReused, idempotency_key="k-1")

    async def test_the_same_key_with_another_body_is_a_conflict(
        self, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        await _create(db, buyer, sale, 2, key="k-1")
        error = await _refused(db, buyer, sale.order(3), IdempotencyKeyReused, idempotency_key="k-1")
        assert error.status_code == 409

    async def test_keys_belong_to_one_neighbour(
        self, db: Database, sale: Sale, buyer: Caller, other_buyer: Caller
    ) -> None:
        mine = await _create(db, buyer, sale, 1, key="shared")
        theirs = await _create(db, other_buyer, sale, 1, key="shared")
        assert mine.id != theirs.id

    async def test_a_malformed_key(self, db: Database, sale: Sale, buyer: Caller) -> None:
        await _refused(db, buyer, sale.order(1), InvalidIdempotencyKey, idempotency_key="x" * 65)
        await _refused(db, buyer, sale.order(1), InvalidIdempotencyKey, idempotency_key="钥匙")


class TestQuote:
    async def test_prices_and_how_many_are_still_allowed(
        self, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        await _create(db, buyer, sale, 2)
        async with db.sessionmaker() as session:
            result = await service.quote(session, buyer.user, sale.live_session.id, sale.item.id, 3)
        assert (result.unit_price_fen, result.total_fen, result.store_total_fen, result.saving_fen) == (
            2500,
            7500,
            9000,
            1500,
        )
        assert (result.stock_left, result.held, result.max_quantity) == (8, 2, 3)

    async def test_not_for_sale(self, db: Database, buyer: Caller) -> None:
        async with db.sessionmaker() as session:
            ended = await make_sale(session, status=SessionStatus.ended)
            await session.commit()
            with pytest.raises(NotForSale):
                await service.quote(session, buyer.user, ended.live_session.id, ended.item.id)


async def test_orders_are_listed_newest_first_and_only_the_owners(
    db: Database, sale: Sale, buyer: Caller, other_buyer: Caller
) -> None:
    first = await _create(db, buyer, sale, 1)
    second = await _create(db, buyer, sale, 1)
    await _create(db, other_buyer, sale, 1)
    async with db.sessionmaker() as session:
        result = await service.list_my_orders(session, buyer.user.id)
        assert [o.id for o in result.items] == [second.id, first.id]
        assert result.total == 2
        assert (await session.scalar(select(Order).where(Order.id == first.id))) is not None
