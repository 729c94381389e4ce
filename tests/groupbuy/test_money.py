"""The refund policy end to end through the payments module: paid through the sandbox processor, counted
into the group, refunded at cutoff by the provider (a refund job, the provider's word), counted back out."""

from __future__ import annotations

from sqlalchemy import select

from linli.community.models import InboxItem
from linli.core.consumers import drain
from linli.groupbuy import events
from linli.orders.payments.models import Payment
from tests.groupbuy.factories import Town
from tests.orders.payments.conftest import Payments


async def test_a_group_below_threshold_is_refunded_through_the_provider(town: Town, pay: Payments) -> None:
    await town.settings(threshold=5, below_policy="refund")
    buyers = [await town.neighbour(nickname=n) for n in ("王阿姨", "李叔")]
    orders = []
    for buyer, quantity in zip(buyers, (2, 1), strict=True):
        order = await pay.order(buyer, town.sale, quantity=quantity)
        started = await pay.start(buyer, order.id)
        await pay.tap(buyer, started["out_trade_no"])
        orders.append(order)
    await pay.drain()  # the sandbox's notifications arrive: the orders are paid
    assert [await pay.order_status(o.id) for o in orders] == ["paid", "paid"]
    await drain(pay.db, pay.runtime.consumers)
    group = await town.group()
    assert group is not None
    assert group.units == 3

    await town.close()
    # The provider has not answered yet: the money is on its way back.
    assert [await pay.order_status(o.id) for o in orders] == ["refund_requested", "refund_requested"]
    assert [(r.amount_fen, r.status) for r in await pay.refunds()] == [
        (5000, "requested"),
        (2500, "requested"),
    ]
    await pay.drain()  # the refund jobs ask the sandbox, which confirms
    assert [await pay.order_status(o.id) for o in orders] == ["refunded", "refunded"]
    assert {r.status for r in await pay.refunds()} == {"succeeded"}
    async with pay.db.sessionmaker() as session:
        payments = (await session.scalars(select(Payment).order_by(Payment.id))).all()
        items = (await session.scalars(select(InboxItem).where(InboxItem.kind == "groupbuy"))).all()
    assert [(p.amount_fen, p.refunded_fen) for p in payments] == [(5000, 5000), (2500, 2500)]
    assert sorted(i.title for i in items) == ["未成团,已全额退款"] * 2
    await drain(pay.db, pay.runtime.consumers)
    group = await town.group()
    assert group is not None
    assert (group.units, group.state, group.outcome) == (0, "closed", "refunded")
    # Both payments counted in one run (one move up), the refunds one by one (two down).
    progressed = [e.payload["units"] for e in await town.events(events.PROGRESSED)]
    assert progressed[0] == 3
    assert len(progressed) == 3
    assert progressed[-1] == 0
