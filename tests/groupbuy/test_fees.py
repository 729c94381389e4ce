"""Delivery fees paid online, end to end through the sandbox processor: a below-threshold group delivered
anyway with its fee collected; the neighbour pays it from the JSON API or the order page, the signed,
late, duplicated, forged and out-of-order notifications mark it paid exactly once and never touch the
order; the leader sees it paid (and takes no cash), or takes cash first (the online money goes back);
the order's refund refunds the fee."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import select

from linli.community import inbox
from linli.community.models import InboxItem
from linli.groupbuy import events
from linli.groupbuy.models import DeliveryFee, PickupCode
from linli.live.models import LineupItem
from linli.orders.models import Order
from linli.orders.payments.models import Payment
from linli.orders.payments.providers import get_providers
from linli.orders.payments.providers.sandbox import signed_headers
from linli.orders.payments.providers.wechatpay import REFUND_PATH, WechatPayProvider
from tests.factories import Caller
from tests.groupbuy.factories import Town
from tests.orders.payments.conftest import NOTIFY, Payments
from tests.orders.payments.wechat_fake import (
    FakeWechatPay,
    Keys,
    pay_sign_holds,
    refund_notification,
    signed,
    transaction_notification,
)

ADMIN = "/api/v1/admin/groupbuy"
FEE = 400


async def _fee_due(town: Town, buyer: Caller, quantity: int = 1) -> Order:
    """A paid order in a group that closed below its threshold, delivered anyway with a ¥4 fee due."""
    await town.settings(threshold=9, below_policy="deliver", delivery_fee_fen=FEE, collect_fee=True)
    order = await town.buy(buyer, quantity)
    await town.drain()
    await town.close()
    return order


async def _fee(town: Town, order_id: int) -> DeliveryFee:
    async with town.db.sessionmaker() as session:
        fee = await session.get(DeliveryFee, order_id)
    assert fee is not None
    return fee


async def _start(pay: Payments, buyer: Caller, order_id: int) -> dict[str, Any]:
    response = await pay.client.post(
        f"/api/v1/groupbuy/orders/{order_id}/fee/payments",
        json={"provider": "sandbox"},
        headers=buyer.headers,
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def _snapshot(town: Town, order_id: int) -> tuple[Any, ...]:
    """What a fee payment must never change: the order's row and its item's stock counters."""
    async with town.db.sessionmaker() as session:
        order = await session.get(Order, order_id)
        item = await session.get(LineupItem, town.sale.item.id)
        assert order is not None
        assert item is not None
        return (
            order.status,
            order.updated_at,
            order.paid_at,
            order.payment_ref,
            order.total_fen,
            item.sold,
            item.reserved,
        )


async def _items(town: Town, user_id: int) -> list[InboxItem]:
    async with town.db.sessionmaker() as session:
        query = select(InboxItem).where(InboxItem.user_id == user_id).order_by(InboxItem.id)
        return list((await session.scalars(query)).all())


async def _deliver(town: Town, client: httpx.AsyncClient) -> None:
    group = await town.group()
    assert group is not None
    created = await client.post(
        f"{ADMIN}/sessions/{town.session_id}/batches",
        json={"group_order_ids": [group.id], "note": "司机老张"},
        headers=town.operator.headers,
    )
    assert created.status_code == 201, created.text
    for step in ("dispatch", "arrive"):
        moved = await client.post(
            f"{ADMIN}/batches/{created.json()['id']}/{step}", headers=town.operator.headers
        )
        assert moved.status_code == 200, moved.text


async def _code(town: Town, order_id: int) -> str:
    async with town.db.sessionmaker() as session:
        row = await session.get(PickupCode, order_id)
    assert row is not None
    return row.code


class TestPayingOnline:
    async def test_the_neighbour_pays_the_fee_through_the_sandbox_and_the_order_is_untouched(
        self, town: Town, pay: Payments
    ) -> None:
        buyer = await town.neighbour()
        order = await _fee_due(town, buyer)
        [told] = await _items(town, buyer.user.id)
        assert "配送费¥4可在订单页在线支付" in told.body

        read = await pay.client.get(f"/api/v1/groupbuy/orders/{order.id}/fee", headers=buyer.headers)
        assert read.status_code == 200
        assert (read.json()["status"], read.json()["payable"], read.json()["amount_fen"]) == (
            "due",
            True,
            FEE,
        )
        assert read.json()["text"] == "配送费 ¥4 待支付"

        started = await _start(pay, buyer, order.id)
        assert (started["purpose"], started["amount_fen"], started["status"]) == (
            "delivery_fee",
            FEE,
            "created",
        )
        assert started["checkout"]["url"] == f"/pay/sandbox/{started['out_trade_no']}"
        # A retry (or a second tap) reuses the open payment.
        assert (await _start(pay, buyer, order.id))["out_trade_no"] == started["out_trade_no"]
        cashier = await pay.client.get(started["checkout"]["url"], headers=buyer.headers)
        assert "订单 " + str(order.id) + " 的配送费" in cashier.text
        assert "¥4" in cashier.text

        before = await _snapshot(town, order.id)
        paid_events = len(await town.events("order.paid"))
        await pay.tap(buyer, started["out_trade_no"])
        assert (await _fee(town, order.id)).status == "due"  # asynchronous, as a real processor
        await pay.drain()

        fee = await _fee(town, order.id)
        payment = await pay.payment(started["out_trade_no"])
        assert (fee.status, fee.payment_id) == ("paid_online", payment.id)
        assert fee.paid_at is not None
        assert (payment.status, payment.purpose) == ("succeeded", "delivery_fee")
        assert await _snapshot(town, order.id) == before
        assert len(await town.events("order.paid")) == paid_events
        [paid] = await town.events(events.FEE_PAID)
        assert paid.payload == {
            "order_id": order.id,
            "amount_fen": FEE,
            "payment_id": payment.id,
            "provider": "sandbox",
        }
        assert (paid.user_id, paid.order_id) == (buyer.user.id, order.id)
        last = (await _items(town, buyer.user.id))[-1]
        assert last.title == "配送费已支付"
        assert inbox.shown(last, "en").title == "Delivery fee paid"

        status = (await pay.client.get(f"/api/v1/groupbuy/orders/{order.id}", headers=buyer.headers)).json()
        assert status["fee"] == {
            "amount_fen": FEE,
            "status": "paid_online",
            "text": "配送费 ¥4 已在线支付",
            "payable": False,
        }
        again = await pay.client.post(
            f"/api/v1/groupbuy/orders/{order.id}/fee/payments", json={}, headers=buyer.headers
        )
        assert again.status_code == 409
        assert again.json()["error"] == "FeeNotPayable"

    async def test_duplicate_stale_and_out_of_order_notifications_mark_it_paid_once(
        self, town: Town, pay: Payments
    ) -> None:
        buyer = await town.neighbour()
        order = await _fee_due(town, buyer)
        otn = (await _start(pay, buyer, order.id))["out_trade_no"]
        pending = pay.notification(otn, amount_fen=FEE, status="pending", id="P")
        failed = pay.notification(otn, amount_fen=FEE, status="failed", id="F")
        success = pay.notification(otn, amount_fen=FEE, id="S")
        success_again = pay.notification(otn, amount_fen=FEE, id="S2")
        for body in (pending, failed, success, success, failed, success_again, pending):
            response = await pay.notify(body)
            assert response.status_code == 200, response.text
        assert (await _fee(town, order.id)).status == "paid_online"
        assert len(await town.events(events.FEE_PAID)) == 1
        assert [i.title for i in await _items(town, buyer.user.id)].count("配送费已支付") == 1
        by_id = {n.notification_id: n.outcome for n in await pay.notifications()}
        assert by_id == {"P": "stale", "F": "applied", "S": "applied", "S2": "duplicate"}
        assert await pay.refunds() == []

    async def test_a_forged_notification_changes_nothing(self, town: Town, pay: Payments) -> None:
        buyer = await town.neighbour()
        order = await _fee_due(town, buyer)
        otn = (await _start(pay, buyer, order.id))["out_trade_no"]
        real = pay.notification(otn, amount_fen=FEE, id="REAL")
        raw = httpx.Request("POST", "/", json=real).content
        forged = await pay.client.post(NOTIFY, content=raw, headers=signed_headers(b"a guess", raw))
        assert forged.status_code == 401
        assert (await _fee(town, order.id)).status == "due"
        assert (await pay.payment(otn)).status == "created"
        assert await town.events(events.FEE_PAID) == []
        assert (await pay.notify(real)).status_code == 200
        assert (await _fee(town, order.id)).status == "paid_online"

    async def test_an_amount_mismatch_is_refused(self, town: Town, pay: Payments) -> None:
        buyer = await town.neighbour()
        order = await _fee_due(town, buyer)
        otn = (await _start(pay, buyer, order.id))["out_trade_no"]
        cheap = await pay.notify(pay.notification(otn, amount_fen=FEE - 1, id="CHEAP"))
        assert cheap.status_code == 409
        assert cheap.json()["error"] == "NotificationAmountMismatch"
        # Nor the order's total: a fee payment is for the fee.
        total = await pay.notify(pay.notification(otn, amount_fen=order.total_fen, id="TOTAL"))
        assert total.status_code == 409
        assert (await _fee(town, order.id)).status == "due"
        assert (await pay.payment(otn)).status == "created"
        assert await town.events(events.FEE_PAID) == []
        assert (await pay.notify(pay.notification(otn, amount_fen=FEE, id="RIGHT"))).status_code == 200
        assert (await _fee(town, order.id)).status == "paid_online"

    async def test_two_payments_of_one_fee_take_it_once_and_return_the_other(
        self, town: Town, pay: Payments
    ) -> None:
        buyer = await town.neighbour()
        order = await _fee_due(town, buyer)
        first = (await _start(pay, buyer, order.id))["out_trade_no"]
        # A second way to pay opened before either was paid (the sandbox's h5 scene stands in for it).
        from linli.orders.payments import service as payments
        from linli.orders.payments.models import PaymentPurpose
        from linli.orders.payments.providers import get_sandbox
        from linli.orders.payments.providers.base import Scene

        async with pay.db.sessionmaker() as session:
            second = await payments.open_payment(
                session,
                await session.get_one(Order, order.id),
                provider=get_sandbox(pay.runtime),
                scene=Scene.h5,
                purpose=PaymentPurpose.delivery_fee,
                amount_fen=FEE,
            )
            await session.commit()
        for otn in (first, second.out_trade_no):
            assert (await pay.notify(pay.notification(otn, amount_fen=FEE))).status_code == 200
        fee = await _fee(town, order.id)
        assert (fee.status, fee.payment_id) == ("paid_online", (await pay.payment(first)).id)
        await pay.drain()
        [refund] = await pay.refunds()
        assert (refund.payment_id, refund.cause, refund.status) == (second.id, "not_payable", "succeeded")
        assert (await pay.payment(second.out_trade_no)).status == "refunded"
        assert (await _fee(town, order.id)).status == "paid_online"
        assert (await _items(town, buyer.user.id))[-1].title == "配送费已退回"

    async def test_racing_payments_of_one_fee_take_it_once(self, town: Town, pay: Payments) -> None:
        from linli.orders.payments import service as payments
        from linli.orders.payments.models import PaymentPurpose
        from linli.orders.payments.providers import get_sandbox
        from linli.orders.payments.providers.base import Scene

        buyer = await town.neighbour()
        order = await _fee_due(town, buyer)
        otns = [(await _start(pay, buyer, order.id))["out_trade_no"]]
        async with pay.db.sessionmaker() as session:
            other = await payments.open_payment(
                session,
                await session.get_one(Order, order.id),
                provider=get_sandbox(pay.runtime),
                scene=Scene.h5,
                purpose=PaymentPurpose.delivery_fee,
                amount_fen=FEE,
            )
            await session.commit()
        otns.append(other.out_trade_no)
        bodies = [pay.notification(otn, amount_fen=FEE, id=f"{otn}-{n}") for otn in otns for n in range(3)]
        responses = await asyncio.gather(*(pay.notify(body) for body in bodies))
        assert {r.status_code for r in responses} == {200}
        assert len(await town.events(events.FEE_PAID)) == 1
        outcomes = sorted(n.outcome for n in await pay.notifications())
        assert outcomes.count("applied") == 1
        assert outcomes.count("refunding") == 1
        fee = await _fee(town, order.id)
        ids = {(await pay.payment(otn)).id for otn in otns}
        [refund] = await pay.refunds()
        assert {fee.payment_id, refund.payment_id} == ids  # one took the fee, the other goes back


class TestAtPickup:
    async def test_the_leader_sees_it_paid_and_takes_no_cash(
        self, town: Town, pay: Payments, client: httpx.AsyncClient
    ) -> None:
        buyer = await town.neighbour(nickname="王阿姨")
        order = await _fee_due(town, buyer)
        unpaid = await town.neighbour(nickname="李叔")
        other = await town.buy(unpaid)  # paid after cutoff: settled at once, its fee due too
        await town.drain()
        otn = (await _start(pay, buyer, order.id))["out_trade_no"]
        await pay.tap(buyer, otn)
        await pay.drain()
        await _deliver(town, client)
        leader = town.hoods[0].leader
        listing = await client.get(
            f"/api/v1/leader/points/{town.hoods[0].point.id}/orders", headers=leader.headers
        )
        rows = {r["order_id"]: r for r in listing.json()}
        assert (rows[order.id]["fee_status"], rows[order.id]["fee_due_fen"]) == ("paid_online", 0)
        assert (rows[other.id]["fee_status"], rows[other.id]["fee_due_fen"]) == ("due", FEE)
        page = await client.get(
            f"/leader/points/{town.hoods[0].point.id}", headers={**leader.headers, "Accept": "text/html"}
        )
        assert "配送费 ¥4 已在线支付" in page.text
        assert "需收配送费 ¥4" in page.text  # the other order's, still to collect

        verified = await client.post(
            "/api/v1/leader/pickups/verify",
            json={"code": await _code(town, order.id)},
            headers=leader.headers,
        )
        assert verified.status_code == 200, verified.text
        assert (verified.json()["fee_collected_fen"], verified.json()["fee_status"]) == (0, "paid_online")
        cash = await client.post(
            "/api/v1/leader/pickups/verify",
            json={"code": await _code(town, other.id)},
            headers=leader.headers,
        )
        assert (cash.json()["fee_collected_fen"], cash.json()["fee_status"]) == (FEE, "collected")
        assert [e.order_id for e in await town.events(events.FEE_COLLECTED)] == [other.id]
        assert (await _fee(town, order.id)).status == "paid_online"

    async def test_cash_first_then_the_online_payment_goes_back(
        self, town: Town, pay: Payments, client: httpx.AsyncClient
    ) -> None:
        buyer = await town.neighbour()
        order = await _fee_due(town, buyer)
        otn = (await _start(pay, buyer, order.id))["out_trade_no"]  # opened, not paid yet
        await _deliver(town, client)
        leader = town.hoods[0].leader
        cash = await client.post(
            "/api/v1/leader/pickups/verify",
            json={"code": await _code(town, order.id)},
            headers=leader.headers,
        )
        assert cash.json()["fee_collected_fen"] == FEE
        # Paying now is refused; a payment already at the processor is taken and returned.
        refused = await pay.client.post(
            f"/api/v1/groupbuy/orders/{order.id}/fee/payments", json={}, headers=buyer.headers
        )
        assert refused.status_code == 409
        assert (await pay.notify(pay.notification(otn, amount_fen=FEE))).status_code == 200
        [note] = await pay.notifications()
        assert note.outcome == "refunding"
        fee = await _fee(town, order.id)
        assert (fee.status, fee.payment_id, fee.collected_by) == ("collected", None, leader.user.id)
        await pay.drain()
        [refund] = await pay.refunds()
        assert (refund.cause, refund.status, refund.amount_fen) == ("not_payable", "succeeded", FEE)
        assert await town.events(events.FEE_PAID) == []
        returned = (await _items(town, buyer.user.id))[-1]
        assert returned.title == "配送费已退回"
        assert inbox.shown(returned, "en").title == "Delivery fee refunded"


class TestRefunds:
    async def test_an_order_refund_refunds_the_fee_paid_online_and_only_the_orders_payment_for_the_order(
        self, town: Town, pay: Payments
    ) -> None:
        await town.settings(threshold=9, below_policy="deliver", delivery_fee_fen=FEE, collect_fee=True)
        buyer = await town.neighbour()
        order = await pay.order(buyer, town.sale, quantity=2)
        order_otn = (await pay.start(buyer, order.id))["out_trade_no"]
        await pay.tap(buyer, order_otn)
        await pay.drain()
        await town.drain()
        await town.close()
        fee_otn = (await _start(pay, buyer, order.id))["out_trade_no"]
        await pay.tap(buyer, fee_otn)
        await pay.drain()
        assert (await _fee(town, order.id)).status == "paid_online"
        admin_page = await pay.client.get(
            f"/admin/orders/{order.id}", headers={**town.operator.headers, "Accept": "text/html"}
        )
        assert admin_page.text.count('data-testid="payment-purpose"') == 1  # the fee's, beside the order's

        approved = await pay.client.post(
            f"/api/v1/admin/orders/{order.id}/refund", headers=town.operator.headers
        )
        assert approved.status_code == 200, approved.text
        await pay.drain()  # the order's refund at the provider
        assert await pay.order_status(order.id) == "refunded"
        [order_refund] = await pay.refunds()
        assert (order_refund.payment_id, order_refund.amount_fen, order_refund.cause) == (
            (await pay.payment(order_otn)).id,
            order.total_fen,
            "order_refund",
        )
        await town.drain()  # groupbuy reacts to order.refunded: the fee goes back too
        fee = await _fee(town, order.id)
        assert fee.status == "refunding"
        await town.drain()  # redelivery starts nothing twice
        await pay.drain()
        fee = await _fee(town, order.id)
        assert fee.status == "refunded"
        assert fee.refunded_at is not None
        refunds = await pay.refunds()
        assert [(r.cause, r.amount_fen, r.status) for r in refunds] == [
            ("order_refund", order.total_fen, "succeeded"),
            ("fee_refund", FEE, "succeeded"),
        ]
        assert (await pay.payment(fee_otn)).status == "refunded"
        assert [len(await town.events(t)) for t in (events.FEE_REFUND_STARTED, events.FEE_REFUNDED)] == [1, 1]
        assert len(await town.events("order.refunded")) == 1  # the fee's refund marks nothing on the order
        last = (await _items(town, buyer.user.id))[-1]
        assert last.title == "配送费已退回"
        assert "订单" + str(order.id) + "已退款" in last.body

    async def test_a_fee_still_due_is_cancelled_and_a_late_payment_returned(
        self, town: Town, pay: Payments
    ) -> None:
        buyer = await town.neighbour()
        order = await _fee_due(town, buyer)
        otn = (await _start(pay, buyer, order.id))["out_trade_no"]
        await town.refund(order)  # paid without a provider: refunded at once
        await town.drain()
        assert (await _fee(town, order.id)).status == "cancelled"
        [cancelled] = await town.events(events.FEE_CANCELLED)
        assert cancelled.payload == {"order_id": order.id, "amount_fen": FEE}
        read = await pay.client.get(f"/api/v1/groupbuy/orders/{order.id}/fee", headers=buyer.headers)
        assert (read.json()["status"], read.json()["payable"]) == ("cancelled", False)
        assert (await pay.notify(pay.notification(otn, amount_fen=FEE))).status_code == 200
        await pay.drain()
        assert (await _fee(town, order.id)).status == "cancelled"
        [refund] = await pay.refunds()
        assert (refund.cause, refund.status) == ("not_payable", "succeeded")

    async def test_a_refused_fee_refund_leaves_it_paid(self, town: Town, pay: Payments) -> None:
        from linli.groupbuy import fees
        from linli.orders.payments import service as payments
        from linli.orders.payments.providers.base import RefundResult, ReportedStatus

        buyer = await town.neighbour()
        order = await _fee_due(town, buyer)
        otn = (await _start(pay, buyer, order.id))["out_trade_no"]
        assert (await pay.notify(pay.notification(otn, amount_fen=FEE))).status_code == 200
        async with town.db.sessionmaker() as session:
            await fees.order_refunded(session, await session.get_one(Order, order.id), now=pay.clock)
            await session.commit()
        [refund] = await pay.refunds()
        async with town.db.sessionmaker() as session:
            failed = RefundResult(status=ReportedStatus.failed, refund_ref=None, raw={"error": "closed"})
            assert await payments.settle_refund(session, refund.id, failed)
            await session.commit()
        assert (await _fee(town, order.id)).status == "paid_online"
        assert len(await town.events(events.FEE_REFUND_FAILED)) == 1


class TestWhoMayPay:
    async def test_a_neighbour_cannot_pay_or_see_another_neighbours_fee(
        self, town: Town, pay: Payments
    ) -> None:
        buyer, other = await town.neighbour(), await town.neighbour(nickname="李叔")
        order = await _fee_due(town, buyer)
        base = f"/api/v1/groupbuy/orders/{order.id}"
        assert (await pay.client.get(f"{base}/fee", headers=other.headers)).status_code == 404
        paying = await pay.client.post(f"{base}/fee/payments", json={}, headers=other.headers)
        assert paying.status_code == 404
        assert paying.json()["error"] == "OrderNotFound"
        page = await pay.client.post(
            f"/orders/{order.id}/delivery-fee/pay", headers={**other.headers, "Accept": "text/html"}
        )
        assert page.status_code == 404
        otn = (await _start(pay, buyer, order.id))["out_trade_no"]
        cashier = await pay.client.get(
            f"/pay/sandbox/{otn}", headers={**other.headers, "Accept": "text/html"}
        )
        assert cashier.status_code == 404
        tap = await pay.client.post(
            f"/api/v1/payments/sandbox/{otn}", json={"result": "succeeded"}, headers=other.headers
        )
        assert tap.status_code == 404
        async with town.db.sessionmaker() as session:
            assert await session.scalar(select(Payment.id).where(Payment.user_id == other.user.id)) is None
        assert (await _fee(town, order.id)).status == "due"
        assert not (await pay.client.get(f"{base}/fee")).is_success  # nor anonymously

    async def test_no_fee_or_a_waived_one_cannot_be_paid(self, town: Town, pay: Payments) -> None:
        await town.settings(threshold=9, below_policy="deliver", delivery_fee_fen=FEE, collect_fee=False)
        buyer = await town.neighbour()
        waived = await town.buy(buyer)
        await town.drain()
        none = await town.buy(buyer)  # not counted yet: no group, no fee
        response = await pay.client.post(
            f"/api/v1/groupbuy/orders/{none.id}/fee/payments", json={}, headers=buyer.headers
        )
        assert (response.status_code, response.json()["error"]) == (404, "NoDeliveryFee")
        await town.close()
        response = await pay.client.post(
            f"/api/v1/groupbuy/orders/{waived.id}/fee/payments", json={}, headers=buyer.headers
        )
        assert (response.status_code, response.json()["error"]) == (409, "FeeNotPayable")
        assert await pay.count(Payment) == 0


class TestOrderPage:
    async def test_the_order_page_pays_the_fee_and_then_shows_it_paid(
        self, town: Town, pay: Payments
    ) -> None:
        buyer = await town.neighbour()
        order = await _fee_due(town, buyer)
        html = {**buyer.headers, "Accept": "text/html"}
        page = await pay.client.get(f"/orders/{order.id}", headers=html)
        assert 'data-fee-status="due"' in page.text
        assert "在线支付配送费 ¥4" in page.text
        english = await pay.client.get(f"/orders/{order.id}?lang=en", headers=html)
        assert "Pay the delivery fee of ¥4 online" in english.text
        assert "Below the threshold: delivered to the pickup point anyway" in english.text

        tapped = await pay.client.post(f"/orders/{order.id}/delivery-fee/pay", headers=html)
        assert tapped.status_code == 303
        location = tapped.headers["location"]
        assert location.startswith("/pay/sandbox/")
        assert location.endswith(f"?next=%2Forders%2F{order.id}")
        otn = location.split("/")[3].split("?")[0]
        paid = await pay.client.post(f"/pay/sandbox/{otn}", data={"action": "pay"}, headers=html)
        assert paid.status_code == 303
        await pay.drain()
        page = await pay.client.get(f"/orders/{order.id}?lang=zh-CN", headers=html)  # the cookie says en now
        assert 'data-fee-status="paid_online"' in page.text
        assert "配送费 ¥4 已在线支付" in page.text
        assert 'data-testid="gb-fee-pay"' not in page.text
        again = await pay.client.post(f"/orders/{order.id}/delivery-fee/pay", headers=html)
        assert again.headers["location"] == f"/orders/{order.id}?fee_error=FeeNotPayable"
        shown = await pay.client.get(again.headers["location"], headers=html)
        assert "这笔配送费现在无需支付" in shown.text


class TestWechatPay:
    async def test_a_fee_paid_by_jsapi_and_refunded_with_its_order(
        self, town: Town, pay: Payments, wechat: WechatPayProvider, fake: FakeWechatPay, keys: Keys
    ) -> None:
        get_providers(pay.runtime)[wechat.name] = wechat
        buyer = await town.neighbour()
        order = await _fee_due(town, buyer)
        started = await pay.client.post(
            f"/api/v1/groupbuy/orders/{order.id}/fee/payments",
            json={"provider": "wechatpay", "payer_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            headers=buyer.headers,
        )
        assert started.status_code == 201, started.text
        assert (started.json()["scene"], started.json()["purpose"]) == ("jsapi", "delivery_fee")
        assert pay_sign_holds(keys, started.json()["checkout"]["params"])
        [(_, asked)] = fake.requests
        assert asked["amount"] == {"total": FEE, "currency": "CNY"}
        assert asked["description"] == f"配送费 · 订单{order.id}"
        otn = started.json()["out_trade_no"]

        notify = "/api/v1/payments/notify/wechatpay"
        body, headers = signed(keys, transaction_notification(keys, out_trade_no=otn, total=FEE))
        for _ in range(2):
            assert (await pay.client.post(notify, content=body, headers=headers)).status_code == 200
        assert (await _fee(town, order.id)).status == "paid_online"
        assert await pay.order_status(order.id) == "paid"
        assert len(await town.events(events.FEE_PAID)) == 1

        await town.refund(order)
        await town.drain()
        await pay.run_jobs()  # the fee's refund asked of WeChat Pay
        path, refund_body = fake.requests[-1]
        assert path == REFUND_PATH
        assert refund_body["amount"] == {"refund": FEE, "total": FEE, "currency": "CNY"}
        [refund] = await pay.refunds()
        assert (refund.cause, refund.status) == ("fee_refund", "processing")
        assert (await _fee(town, order.id)).status == "refunding"
        done = refund_notification(
            keys, out_trade_no=otn, out_refund_no=refund.out_refund_no, refund=FEE, total=FEE
        )
        body, headers = signed(keys, done)
        assert (await pay.client.post(notify, content=body, headers=headers)).status_code == 200
        assert (await _fee(town, order.id)).status == "refunded"
        assert await pay.order_status(order.id) == "refunded"
