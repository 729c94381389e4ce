"""The order state machine: every transition moves stock and counts as it should, records one history row
and one event, and refuses what its status does not allow."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from linli.core.db import Database
from linli.core.events import Event
from linli.core.jobs import CANCELLED, Job
from linli.orders import service
from linli.orders.errors import (
    AlreadyPaid,
    AmountMismatch,
    InvalidOrderTransition,
    OrderNotFound,
    PaidAfterCancel,
    PaidAfterExpiry,
    ReservationExpired,
)
from linli.orders.models import Order, OrderStatus
from tests.orders.conftest import Caller
from tests.orders.factories import Sale, count_rows, held_units, item_counts, make_buyer


async def _order(db: Database, caller: Caller, sale: Sale, quantity: int = 2) -> Order:
    async with db.sessionmaker() as session:
        order = await service.create_order(session, caller.user, sale.order(quantity))
        await session.commit()
    return order


async def _pay(db: Database, order: Order, *, ref: str = "tx-1", amount: int | None = None) -> Order:
    async with db.sessionmaker() as session:
        paid = await service.mark_paid(
            session,
            order.id,
            amount_fen=order.total_fen if amount is None else amount,
            provider="sandbox",
            provider_ref=ref,
        )
        await session.commit()
    return paid


async def _expire(db: Database, order: Order) -> Order:
    async with db.sessionmaker() as session:
        expired = await service.expire_order(session, order.id)
        await session.commit()
    return expired


async def _events(db: Database, type_: str) -> list[Event]:
    async with db.sessionmaker() as session:
        return list((await session.scalars(select(Event).where(Event.type == type_))).all())


async def _timeline(db: Database, order_id: int) -> list[tuple[str | None, str]]:
    async with db.sessionmaker() as session:
        return [(c.from_status, c.to_status) for c in await service.order_timeline(session, order_id)]


async def _job_status(db: Database, order_id: int) -> str:
    async with db.sessionmaker() as session:
        status = await session.scalar(select(Job.status).where(Job.key == service.expiry_job_key(order_id)))
    assert status is not None
    return status


async def _refused(db: Database, error: type[Exception], verb, *args, **kwargs) -> Exception:
    before = await count_rows(db)
    async with db.sessionmaker() as session:
        with pytest.raises(error) as info:
            await verb(session, *args, **kwargs)
        await session.rollback()
    assert await count_rows(db) == before
    return info.value


class TestCancel:
    async def test_releases_units_and_count_at_once(self, db: Database, sale: Sale, buyer: Caller) -> None:
        order = await _order(db, buyer, sale, 2)
        async with db.sessionmaker() as session:
            cancelled = await service.cancel_order(session, order.id, user=buyer.user)
            await session.commit()
        assert cancelled.status == OrderStatus.cancelled
        assert cancelled.cancelled_at is not None
        assert await item_counts(db, sale.item.id) == (10, 0, 0)
        assert await held_units(db, buyer.user.id, sale.item.id) == 0
        assert await _job_status(db, order.id) == CANCELLED
        assert await _timeline(db, order.id) == [(None, "pending_payment"), ("pending_payment", "cancelled")]
        [event] = await _events(db, "order.cancelled")
        assert (event.order_id, event.actor_id, event.payload["to"]) == (order.id, buyer.user.id, "cancelled")

    async def test_twice_changes_nothing(self, db: Database, sale: Sale, buyer: Caller) -> None:
        order = await _order(db, buyer, sale)
        for _ in range(2):
            async with db.sessionmaker() as session:
                await service.cancel_order(session, order.id, user=buyer.user)
                await session.commit()
        assert len(await _events(db, "order.cancelled")) == 1
        assert await item_counts(db, sale.item.id) == (10, 0, 0)

    async def test_someone_elses_order_does_not_exist(
        self, db: Database, sale: Sale, buyer: Caller, other_buyer: Caller
    ) -> None:
        order = await _order(db, buyer, sale)
        error = await _refused(db, OrderNotFound, service.cancel_order, order.id, user=other_buyer.user)
        assert error.status_code == 404

    async def test_a_paid_order_is_refunded_not_cancelled(
        self, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        order = await _order(db, buyer, sale)
        await _pay(db, order)
        error = await _refused(db, InvalidOrderTransition, service.cancel_order, order.id, user=buyer.user)
        assert "request a refund" in str(error)


class TestExpire:
    async def test_releases_an_unpaid_order_once(self, db: Database, sale: Sale, buyer: Caller) -> None:
        order = await _order(db, buyer, sale, 3)
        assert (await _expire(db, order)).status == OrderStatus.expired
        assert (await _expire(db, order)).status == OrderStatus.expired
        assert await item_counts(db, sale.item.id) == (10, 0, 0)
        assert await held_units(db, buyer.user.id, sale.item.id) == 0
        assert len(await _events(db, "order.expired")) == 1

    async def test_leaves_a_paid_order_alone(self, db: Database, sale: Sale, buyer: Caller) -> None:
        order = await _order(db, buyer, sale, 3)
        await _pay(db, order)
        assert (await _expire(db, order)).status == OrderStatus.paid
        assert await item_counts(db, sale.item.id) == (10, 0, 3)


class TestMarkPaid:
    async def test_reserved_units_become_sold(self, db: Database, sale: Sale, buyer: Caller) -> None:
        order = await _order(db, buyer, sale, 2)
        paid = await _pay(db, order)
        assert (paid.status, paid.payment_provider, paid.payment_ref) == ("paid", "sandbox", "tx-1")
        assert paid.paid_at is not None
        assert await item_counts(db, sale.item.id) == (10, 0, 2)
        assert await held_units(db, buyer.user.id, sale.item.id) == 2
        assert await _job_status(db, order.id) == CANCELLED
        [event] = await _events(db, "order.paid")
        assert (event.user_id, event.order_id, event.session_id, event.community_id) == (
            buyer.user.id,
            order.id,
            sale.live_session.id,
            sale.community.id,
        )
        assert event.payload["amount_fen"] == 5000

    async def test_the_same_payment_again_changes_nothing(
        self, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        order = await _order(db, buyer, sale, 2)
        await _pay(db, order)
        before = await count_rows(db)
        again = await _pay(db, order)
        assert again.status == OrderStatus.paid
        assert await count_rows(db) == before
        assert await item_counts(db, sale.item.id) == (10, 0, 2)

    async def test_another_payment_for_a_paid_order(self, db: Database, sale: Sale, buyer: Caller) -> None:
        order = await _order(db, buyer, sale)
        await _pay(db, order)
        kwargs = {"amount_fen": order.total_fen, "provider": "sandbox", "provider_ref": "tx-2"}
        await _refused(db, AlreadyPaid, service.mark_paid, order.id, **kwargs)

    async def test_a_wrong_amount_is_not_applied(self, db: Database, sale: Sale, buyer: Caller) -> None:
        order = await _order(db, buyer, sale, 2)
        kwargs = {"amount_fen": 4999, "provider": "sandbox", "provider_ref": "tx-1"}
        error = await _refused(db, AmountMismatch, service.mark_paid, order.id, **kwargs)
        assert error.context == {"order_id": order.id, "amount_fen": 4999, "total_fen": 5000}

    async def test_unknown_order(self, db: Database) -> None:
        kwargs = {"amount_fen": 1, "provider": "sandbox", "provider_ref": "tx"}
        await _refused(db, OrderNotFound, service.mark_paid, 10**9, **kwargs)

    async def test_after_expiry_revives_the_order_while_units_are_left(
        self, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        order = await _order(db, buyer, sale, 2)
        await _expire(db, order)
        paid = await _pay(db, order)
        assert paid.status == OrderStatus.paid
        assert await item_counts(db, sale.item.id) == (10, 0, 2)
        assert await held_units(db, buyer.user.id, sale.item.id) == 2
        [event] = await _events(db, "order.paid")
        assert event.payload["revived"] is True
        assert await _timeline(db, order.id) == [
            (None, "pending_payment"),
            ("pending_payment", "expired"),
            ("expired", "paid"),
        ]

    async def test_after_expiry_with_the_units_gone_asks_for_a_refund_and_writes_nothing(
        self, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        order = await _order(db, buyer, sale, 2)
        await _expire(db, order)
        async with db.sessionmaker() as session:
            others = [await make_buyer(session, sale.community) for _ in range(2)]
            await session.commit()
        for other in others:
            await _order(db, Caller(other, ""), sale, 5)
        kwargs = {"amount_fen": order.total_fen, "provider": "sandbox", "provider_ref": "late"}
        error = await _refused(db, PaidAfterExpiry, service.mark_paid, order.id, **kwargs)
        assert "refunded" in str(error)
        assert await item_counts(db, sale.item.id) == (10, 10, 0)
        assert await held_units(db, buyer.user.id, sale.item.id) == 0

    async def test_after_expiry_past_the_neighbours_limit(
        self, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        order = await _order(db, buyer, sale, 3)
        await _expire(db, order)
        await _order(db, buyer, sale, 5)  # the limit is 5: the late payment's 3 no longer fit
        kwargs = {"amount_fen": order.total_fen, "provider": "sandbox", "provider_ref": "late"}
        await _refused(db, PaidAfterExpiry, service.mark_paid, order.id, **kwargs)

    async def test_after_a_cancel(self, db: Database, sale: Sale, buyer: Caller) -> None:
        order = await _order(db, buyer, sale)
        async with db.sessionmaker() as session:
            await service.cancel_order(session, order.id, user=buyer.user)
            await session.commit()
        kwargs = {"amount_fen": order.total_fen, "provider": "sandbox", "provider_ref": "late"}
        error = await _refused(db, PaidAfterCancel, service.mark_paid, order.id, **kwargs)
        assert isinstance(error, PaidAfterExpiry)  # payments refunds both the same way


class TestRefunds:
    async def test_request_then_refund_keeps_units_sold_and_frees_the_limit(
        self, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        order = await _order(db, buyer, sale, 2)
        await _pay(db, order)
        async with db.sessionmaker() as session:
            requested = await service.request_refund(session, order.id, user=buyer.user, reason="买多了")
            await session.commit()
        assert requested.status == OrderStatus.refund_requested
        async with db.sessionmaker() as session:
            refunded = await service.mark_refunded(session, order.id, provider_ref="rf-1")
            await session.commit()
        assert (refunded.status, refunded.refund_ref) == ("refunded", "rf-1")
        assert await item_counts(db, sale.item.id) == (10, 0, 2)
        assert await held_units(db, buyer.user.id, sale.item.id) == 0
        assert await _timeline(db, order.id) == [
            (None, "pending_payment"),
            ("pending_payment", "paid"),
            ("paid", "refund_requested"),
            ("refund_requested", "refunded"),
        ]
        async with db.sessionmaker() as session:
            again = await service.mark_refunded(session, order.id, provider_ref="rf-1")
            await session.commit()
        assert again.status == OrderStatus.refunded
        assert len(await _events(db, "order.refunded")) == 1

    async def test_an_unpaid_order_cannot_be_refunded(self, db: Database, sale: Sale, buyer: Caller) -> None:
        order = await _order(db, buyer, sale)
        await _refused(db, InvalidOrderTransition, service.request_refund, order.id, user=buyer.user)
        await _refused(db, InvalidOrderTransition, service.mark_refunded, order.id, provider_ref=None)

    async def test_only_the_owner_asks(
        self, db: Database, sale: Sale, buyer: Caller, other_buyer: Caller
    ) -> None:
        order = await _order(db, buyer, sale)
        await _pay(db, order)
        await _refused(db, OrderNotFound, service.request_refund, order.id, user=other_buyer.user)

    async def test_an_operator_approves_without_a_provider_payment(
        self, db: Database, sale: Sale, buyer: Caller, operator: Caller
    ) -> None:
        order = await _order(db, buyer, sale)
        await _pay(db, order)
        async with db.sessionmaker() as session:
            refunded = await service.approve_refund(session, order.id, actor=operator.user)
            await session.commit()
        assert refunded.status == OrderStatus.refunded
        [event] = await _events(db, "order.refunded")
        assert event.actor_id == operator.user.id


class TestComplete:
    async def test_a_paid_order_completes(self, db: Database, sale: Sale, buyer: Caller) -> None:
        order = await _order(db, buyer, sale)
        await _refused(db, InvalidOrderTransition, service.complete_order, order.id)
        await _pay(db, order)
        async with db.sessionmaker() as session:
            done = await service.complete_order(session, order.id)
            await session.commit()
        assert done.status == OrderStatus.completed
        assert len(await _events(db, "order.completed")) == 1


class TestPayable:
    async def test_only_the_owners_pending_order_inside_its_reservation(
        self, db: Database, sale: Sale, buyer: Caller, other_buyer: Caller
    ) -> None:
        order = await _order(db, buyer, sale)
        async with db.sessionmaker() as session:
            assert (await service.get_payable_order(session, order.id, user_id=buyer.user.id)).id == order.id
            with pytest.raises(OrderNotFound):
                await service.get_payable_order(session, order.id, user_id=other_buyer.user.id)
            with pytest.raises(ReservationExpired):
                await service.get_payable_order(
                    session, order.id, user_id=buyer.user.id, now=order.reserved_until
                )
        await _pay(db, order)
        async with db.sessionmaker() as session:
            with pytest.raises(InvalidOrderTransition):
                await service.get_payable_order(session, order.id, user_id=buyer.user.id)


async def test_every_transition_leaves_one_history_row_and_one_event(
    db: Database, sale: Sale, buyer: Caller
) -> None:
    order = await _order(db, buyer, sale)
    await _pay(db, order)
    async with db.sessionmaker() as session:
        await service.complete_order(session, order.id)
        await session.commit()
        events = await session.scalar(
            select(func.count()).select_from(Event).where(Event.order_id == order.id)
        )
    assert events == len(await _timeline(db, order.id)) == 3
