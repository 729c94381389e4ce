"""The reservation timer is durable: an unpaid order scheduled by one process is expired by the next one,
and a payment that arrives after that is handled."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from linli import orders
from linli.core.config import Settings
from linli.core.db import Database
from linli.core.hub import LocalHub
from linli.core.jobs import DONE, Job, run_due_jobs
from linli.core.runtime import Runtime
from linli.orders import service
from linli.orders.models import Order, OrderStatus
from tests.orders.conftest import Caller
from tests.orders.factories import Sale, held_units, item_counts


async def test_an_unpaid_order_expires_after_a_restart(
    settings: Settings, db: Database, sale: Sale, buyer: Caller
) -> None:
    async with db.sessionmaker() as session:
        order = await service.create_order(session, buyer.user, sale.order(3))
        await session.commit()
    await db.dispose()  # the process that took the order is gone

    restarted = Runtime(settings=settings, db=Database(settings.database_url), hub=LocalHub())
    orders.register_background(restarted)
    try:
        # Not due yet: nothing happens.
        assert (
            await run_due_jobs(restarted.db, restarted.jobs, now=order.reserved_until - timedelta(seconds=1))
            == 0
        )
        assert await run_due_jobs(restarted.db, restarted.jobs, now=order.reserved_until) == 1
        async with restarted.db.sessionmaker() as session:
            expired = await session.get(Order, order.id)
            assert expired is not None
            assert expired.status == OrderStatus.expired
            job = await session.scalar(select(Job).where(Job.key == service.expiry_job_key(order.id)))
            assert job is not None
            assert (job.status, job.last_error) == (DONE, None)
        assert await item_counts(restarted.db, sale.item.id) == (10, 0, 0)
        assert await held_units(restarted.db, buyer.user.id, sale.item.id) == 0

        # The payment that was on its way all along arrives now: units are still there, so it is kept.
        async with restarted.db.sessionmaker() as session:
            paid = await service.mark_paid(
                session, order.id, amount_fen=order.total_fen, provider="sandbox", provider_ref="late-1"
            )
            await session.commit()
        assert paid.status == OrderStatus.paid
        assert await item_counts(restarted.db, sale.item.id) == (10, 0, 3)
    finally:
        await restarted.db.dispose()


async def test_a_paid_orders_timer_is_cancelled(runtime: Runtime, sale: Sale, buyer: Caller) -> None:
    orders.register_background(runtime)
    async with runtime.db.sessionmaker() as session:
        order = await service.create_order(session, buyer.user, sale.order(1))
        await service.mark_paid(
            session, order.id, amount_fen=order.total_fen, provider="sandbox", provider_ref="t"
        )
        await session.commit()
    assert await run_due_jobs(runtime.db, runtime.jobs, now=order.reserved_until + timedelta(hours=1)) == 0
    assert await item_counts(runtime.db, sale.item.id) == (10, 0, 1)
