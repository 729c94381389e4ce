"""Paying through the sandbox processor end to end: the cashier, its notifications delivered back into
the app by durable jobs (late, retried with backoff, duplicated, out of order), and what they change."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.config import Settings
from linli.core.db import Database
from linli.core.hub import LocalHub
from linli.core.jobs import DONE, PENDING, Job, run_due_jobs
from linli.core.runtime import Runtime
from linli.live.models import LineupItem
from linli.orders import service as orders
from linli.orders.models import Order
from linli.orders.payments import purposes, service
from linli.orders.payments.api import settling_lane
from linli.orders.payments.errors import ProviderUnavailable
from linli.orders.payments.models import Payment, PaymentNotification, PaymentPurpose, Refund
from linli.orders.payments.providers import DELIVERY_CLIENT_KEY, get_sandbox
from linli.orders.payments.providers.base import Checkout, PaymentOrder, Scene
from linli.orders.payments.providers.sandbox import DELIVER_JOB, signed_headers
from linli.orders.payments.service import REFUND_JOB, open_payment
from linli.web.app import create_app
from tests.orders.conftest import Caller
from tests.orders.factories import Sale
from tests.orders.payments.conftest import NOTIFY, Payments, calm_settings, wire


class TestStartingAPayment:
    async def test_gives_the_cashier_url_and_reuses_the_open_payment(
        self, pay: Payments, sale: Sale, buyer: Caller
    ) -> None:
        order = await pay.order(buyer, sale, quantity=2)
        first = await pay.start(buyer, order.id)
        assert first["amount_fen"] == order.total_fen == 5000
        assert first["status"] == "created"
        assert first["checkout"] == {
            "scene": "cashier",
            "url": f"/pay/sandbox/{first['out_trade_no']}",
            "params": None,
        }
        again = await pay.start(buyer, order.id)
        assert again["out_trade_no"] == first["out_trade_no"]
        assert len(await pay.events("payment.created")) == 1

    async def test_payments_open_under_generic_plans(self, pay: Payments, sale: Sale, buyer: Caller) -> None:
        """PostgreSQL plans a statement generically from its sixth run on a connection: an ON CONFLICT
        on the partial open-payment index must still find it then (its predicate is SQL text, not
        parameters). Forced here from the first run; the flash sale met it as 500s."""
        orders_ = [await pay.order(buyer, sale) for _ in range(3)]
        async with pay.db.sessionmaker() as session:
            if pay.db.engine.dialect.name == "postgresql":
                await session.execute(text("SET plan_cache_mode = force_generic_plan"))
            sandbox = get_sandbox(pay.runtime)
            for order in orders_:
                loaded = await orders.get_order(session, order.id)
                first = await open_payment(session, loaded, provider=sandbox, scene=Scene.cashier)
                again = await open_payment(session, loaded, provider=sandbox, scene=Scene.cashier)
                assert again.id == first.id
            await session.commit()
        assert len(await pay.events("payment.created")) == 3

    async def test_a_neighbour_cannot_pay_someone_elses_order(
        self, pay: Payments, sale: Sale, buyer: Caller, other_buyer: Caller
    ) -> None:
        order = await pay.order(buyer, sale)
        response = await pay.client.post(
            f"/api/v1/orders/{order.id}/payments", json={"provider": "sandbox"}, headers=other_buyer.headers
        )
        assert response.status_code == 404
        assert response.json()["error"] == "OrderNotFound"
        mine = await pay.start(buyer, order.id)
        otn = mine["out_trade_no"]
        tap = await pay.client.post(
            f"/api/v1/payments/sandbox/{otn}", json={"result": "succeeded"}, headers=other_buyer.headers
        )
        assert tap.status_code == 404
        page = await pay.client.get(
            f"/pay/sandbox/{otn}", headers={**other_buyer.headers, "Accept": "text/html"}
        )
        assert page.status_code == 404
        listing = await pay.client.get(f"/api/v1/orders/{order.id}/payments", headers=other_buyer.headers)
        assert listing.status_code == 404
        assert await pay.jobs(DELIVER_JOB) == []

    async def test_unknown_or_unconfigured_providers_are_404(
        self, pay: Payments, sale: Sale, buyer: Caller
    ) -> None:
        order = await pay.order(buyer, sale)
        for name in ("wechatpay", "paypal"):
            response = await pay.client.post(
                f"/api/v1/orders/{order.id}/payments", json={"provider": name}, headers=buyer.headers
            )
            assert response.status_code == 404
            assert response.json()["error"] == "UnknownProvider"
        notify = await pay.client.post("/api/v1/payments/notify/paypal", content=b"{}")
        assert notify.status_code == 404

    async def test_a_cancelled_order_cannot_be_paid(self, pay: Payments, sale: Sale, buyer: Caller) -> None:
        order = await pay.order(buyer, sale)
        async with pay.db.sessionmaker() as session:
            await orders.cancel_order(session, order.id, user=buyer.user)
            await session.commit()
        response = await pay.client.post(
            f"/api/v1/orders/{order.id}/payments", json={"provider": "sandbox"}, headers=buyer.headers
        )
        assert response.status_code == 409


class TestOrderingAndPayingInOneRequest:
    """``POST /api/v1/orders`` with ``pay``: the order and its payment in one round trip."""

    async def _place(
        self, pay: Payments, buyer: Caller, body: dict[str, object], key: str = "k-1"
    ) -> httpx.Response:
        return await pay.client.post(
            "/api/v1/orders", json=body, headers={**buyer.headers, "Idempotency-Key": key}
        )

    async def test_the_order_comes_with_its_payment_and_a_retry_brings_the_same_both(
        self, pay: Payments, sale: Sale, buyer: Caller
    ) -> None:
        body = {**sale.order(2).model_dump(mode="json", exclude={"pay"}), "pay": {"provider": "sandbox"}}
        first = await self._place(pay, buyer, body)
        assert first.status_code == 201, first.text
        placed = first.json()
        payment = placed["payment"]
        assert placed["status"] == "pending_payment"
        assert placed["payment_error"] is None
        assert payment["order_id"] == placed["id"]
        assert payment["amount_fen"] == placed["total_fen"] == 5000
        assert payment["checkout"]["url"] == f"/pay/sandbox/{payment['out_trade_no']}"

        again = (await self._place(pay, buyer, body)).json()
        assert (again["id"], again["payment"]["out_trade_no"]) == (placed["id"], payment["out_trade_no"])
        # Asking to pay or not is not part of the order: the same key is the same order.
        without = await self._place(pay, buyer, {k: v for k, v in body.items() if k != "pay"})
        assert without.status_code == 201
        assert (without.json()["id"], without.json()["payment"]) == (placed["id"], None)
        assert len(await pay.events("payment.created")) == 1

        await pay.tap(buyer, payment["out_trade_no"])
        await pay.drain()
        assert await pay.order_status(placed["id"]) == "paid"

    async def test_a_way_to_pay_that_is_not_offered_places_no_order(
        self, pay: Payments, sale: Sale, buyer: Caller
    ) -> None:
        order = sale.order(1).model_dump(mode="json", exclude={"pay"})
        unknown = await self._place(pay, buyer, {**order, "pay": {"provider": "paypal"}})
        assert (unknown.status_code, unknown.json()["error"]) == (404, "UnknownProvider")
        wrong_scene = await self._place(
            pay, buyer, {**order, "pay": {"provider": "sandbox", "scene": "jsapi"}}
        )
        assert (wrong_scene.status_code, wrong_scene.json()["error"]) == (400, "BadRequest")
        assert "jsapi" in wrong_scene.json()["detail"]
        assert await pay.count(Order) == 0
        async with pay.db.sessionmaker() as session:
            item = await session.get(LineupItem, sale.item.id)
        assert item is not None
        assert item.reserved == 0

    async def test_a_payment_that_cannot_open_leaves_the_order_to_pay_on_its_own(
        self, pay: Payments, sale: Sale, buyer: Caller, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        sandbox = get_sandbox(pay.runtime)

        async def unreachable(order: PaymentOrder) -> Checkout:
            raise ProviderUnavailable("the processor did not answer")

        with monkeypatch.context() as patched:
            patched.setattr(sandbox, "create_payment", unreachable)
            answer = await self._place(
                pay, buyer, {**sale.order(1).model_dump(mode="json", exclude={"pay"}), "pay": {}}
            )
        assert answer.status_code == 201, answer.text
        placed = answer.json()
        assert placed["payment"] is None
        assert placed["payment_error"]["error"] == "ProviderUnavailable"
        assert await pay.order_status(placed["id"]) == "pending_payment"
        assert await pay.count(Payment) == 0
        later = await pay.start(buyer, placed["id"])
        assert later["amount_fen"] == placed["total_fen"]


class TestCashier:
    async def test_the_page_shows_the_amount_and_both_buttons(
        self, pay: Payments, sale: Sale, buyer: Caller
    ) -> None:
        order = await pay.order(buyer, sale)
        otn = (await pay.start(buyer, order.id))["out_trade_no"]
        zh = await pay.client.get(f"/pay/sandbox/{otn}", headers=buyer.headers)
        assert zh.status_code == 200
        assert "¥25" in zh.text
        assert "支付" in zh.text
        assert "支付失败" in zh.text
        en = await pay.client.get(f"/pay/sandbox/{otn}?lang=en", headers=buyer.headers)
        assert "Pay" in en.text
        assert "Make it fail" in en.text

    async def test_tapping_pay_schedules_the_notification_and_the_order_becomes_paid(
        self, pay: Payments, sale: Sale, buyer: Caller
    ) -> None:
        order = await pay.order(buyer, sale)
        otn = (await pay.start(buyer, order.id))["out_trade_no"]
        tapped = await pay.client.post(
            f"/pay/sandbox/{otn}", data={"action": "pay", "next": "/orders"}, headers=buyer.headers
        )
        assert tapped.status_code == 303
        assert "result=paid" in tapped.headers["location"]
        page = await pay.client.get(tapped.headers["location"], headers=buyer.headers)
        assert 'data-testid="cashier-paid"' in page.text
        # Asynchronous, as a real processor: nothing has changed yet.
        assert await pay.order_status(order.id) == "pending_payment"
        assert await pay.run_jobs() == 1
        assert await pay.order_status(order.id) == "paid"
        payment = await pay.payment(otn)
        assert payment.status == "succeeded"
        assert payment.provider_ref
        assert payment.provider_ref.startswith("SBXT")
        # A second tap takes no more money and sends nothing new.
        again = await pay.tap(buyer, otn)
        assert again["accepted"] is False
        assert len(await pay.jobs(DELIVER_JOB)) == 1

    async def test_fail_then_pay(self, pay: Payments, sale: Sale, buyer: Caller) -> None:
        order = await pay.order(buyer, sale)
        otn = (await pay.start(buyer, order.id))["out_trade_no"]
        await pay.tap(buyer, otn, "failed")
        await pay.run_jobs()
        assert (await pay.payment(otn)).status == "failed"
        assert len(await pay.events("payment.failed")) == 1
        assert await pay.order_status(order.id) == "pending_payment"
        # Trying again reuses the same payment and its cashier.
        assert (await pay.start(buyer, order.id))["out_trade_no"] == otn
        await pay.tap(buyer, otn)
        await pay.run_jobs()
        assert (await pay.payment(otn)).status == "succeeded"
        assert await pay.order_status(order.id) == "paid"
        refused = await pay.client.post(
            f"/api/v1/payments/sandbox/{otn}", json={"result": "failed"}, headers=buyer.headers
        )
        assert refused.status_code == 409


class TestConfirming:
    """Back from the cashier, the sheet asks whether the payment went through (查单): the processor is
    asked, and its answer is taken as its notification would be — before the notification comes."""

    @pytest.mark.parametrize("payment_settings", [calm_settings(sandbox_duplicate_rate=1)])
    async def test_a_tapped_payment_is_paid_at_once_and_its_notifications_change_nothing_more(
        self, pay: Payments, sale: Sale, buyer: Caller
    ) -> None:
        order = await pay.order(buyer, sale, quantity=2)
        otn = (await pay.start(buyer, order.id))["out_trade_no"]
        await pay.tap(buyer, otn)
        confirmed = await pay.confirm(buyer, order.id)
        assert confirmed.status_code == 200
        body = confirmed.json()
        assert (body["order_id"], body["order_status"]) == (order.id, "paid")
        assert [(p["out_trade_no"], p["status"]) for p in body["payments"]] == [(otn, "succeeded")]
        payment = await pay.payment(otn)
        assert payment.provider_ref is not None
        assert payment.provider_ref.startswith("SBXT")
        [record] = await pay.notifications()
        assert (record.notification_id, record.outcome) == (
            f"query:{payment.provider_ref}:succeeded",
            "applied",
        )
        # The processor's notification and its repetition arrive after: nothing more is taken (the
        # repetition has the notification's id, so it is not even recorded again).
        await pay.drain()
        assert len(await pay.jobs(DELIVER_JOB)) == 2
        records = await pay.notifications()
        assert sorted(r.outcome for r in records) == ["applied", "duplicate"]
        assert [len(await pay.events(t)) for t in ("payment.succeeded", "order.paid")] == [1, 1]
        async with pay.db.sessionmaker() as session:
            item = await session.get(LineupItem, sale.item.id)
            assert item is not None
            assert (item.reserved, item.sold) == (0, 2)

    async def test_before_the_tap_the_processor_says_not_yet_and_nothing_changes(
        self, pay: Payments, sale: Sale, buyer: Caller
    ) -> None:
        order = await pay.order(buyer, sale)
        otn = (await pay.start(buyer, order.id))["out_trade_no"]
        body = (await pay.confirm(buyer, order.id)).json()
        assert body["order_status"] == "pending_payment"
        assert [p["status"] for p in body["payments"]] == ["created"]
        assert await pay.notifications() == []
        assert (await pay.payment(otn)).status == "created"

    async def test_a_failed_payment_is_told_and_can_be_paid_again(
        self, pay: Payments, sale: Sale, buyer: Caller
    ) -> None:
        order = await pay.order(buyer, sale)
        otn = (await pay.start(buyer, order.id))["out_trade_no"]
        await pay.tap(buyer, otn, "failed")
        body = (await pay.confirm(buyer, order.id)).json()
        assert (body["order_status"], body["payments"][0]["status"]) == ("pending_payment", "failed")
        await pay.tap(buyer, otn)
        await asyncio.sleep(1.05)  # the same payment is asked about at most once a second
        assert (await pay.confirm(buyer, order.id)).json()["order_status"] == "paid"

    async def test_the_processor_is_asked_at_most_once_a_second_and_never_about_a_paid_order(
        self, pay: Payments, sale: Sale, buyer: Caller, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        sandbox = get_sandbox(pay.runtime)
        asked: list[str] = []
        query = sandbox.query_payment

        async def counted(out_trade_no: str) -> Any:
            asked.append(out_trade_no)
            return await query(out_trade_no)

        monkeypatch.setattr(sandbox, "query_payment", counted)
        order = await pay.order(buyer, sale)
        otn = (await pay.start(buyer, order.id))["out_trade_no"]
        for _ in range(5):  # a neighbour tapping again and again before paying
            assert (await pay.confirm(buyer, order.id)).json()["order_status"] == "pending_payment"
        assert asked == [otn]
        await pay.tap(buyer, otn)
        await pay.drain()  # the notification pays it
        await asyncio.sleep(1.05)
        assert (await pay.confirm(buyer, order.id)).json()["order_status"] == "paid"
        assert asked == [otn]

    async def test_only_your_own_order(
        self, pay: Payments, sale: Sale, buyer: Caller, other_buyer: Caller
    ) -> None:
        order = await pay.order(buyer, sale)
        otn = (await pay.start(buyer, order.id))["out_trade_no"]
        await pay.tap(buyer, otn)
        refused = await pay.confirm(other_buyer, order.id)
        assert refused.status_code == 404
        assert refused.json()["error"] == "OrderNotFound"
        assert await pay.order_status(order.id) == "pending_payment"
        anonymous = await pay.client.post(f"/api/v1/orders/{order.id}/payments/confirm")
        assert anonymous.status_code == 401

    async def test_an_unreachable_processor_leaves_it_to_the_notification(
        self, pay: Payments, sale: Sale, buyer: Caller, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        sandbox = get_sandbox(pay.runtime)

        async def down(out_trade_no: str) -> Any:
            raise ProviderUnavailable("the processor does not answer")

        monkeypatch.setattr(sandbox, "query_payment", down)
        order = await pay.order(buyer, sale)
        otn = (await pay.start(buyer, order.id))["out_trade_no"]
        await pay.tap(buyer, otn)
        answer = await pay.confirm(buyer, order.id)
        assert (answer.status_code, answer.json()["order_status"]) == (200, "pending_payment")
        await pay.drain()
        assert await pay.order_status(order.id) == "paid"


class TestNotifications:
    @pytest.mark.parametrize(
        "payment_settings", [calm_settings(sandbox_duplicate_rate=1, sandbox_stale_rate=1)]
    )
    async def test_duplicated_and_stale_deliveries_pay_once(
        self, pay: Payments, sale: Sale, buyer: Caller
    ) -> None:
        order = await pay.order(buyer, sale)
        otn = (await pay.start(buyer, order.id))["out_trade_no"]
        await pay.tap(buyer, otn)
        assert len(await pay.jobs(DELIVER_JOB)) == 3
        assert await pay.run_jobs() == 3
        assert all(job.status == DONE for job in await pay.jobs(DELIVER_JOB))
        assert await pay.order_status(order.id) == "paid"
        assert (await pay.payment(otn)).status == "succeeded"
        assert len(await pay.events("payment.succeeded")) == 1
        assert len(await pay.events("order.paid")) == 1
        # The redelivery carried the same notification id: answered 200 from the record of the first.
        outcomes = sorted(n.outcome for n in await pay.notifications())
        assert outcomes == ["applied", "stale"]

    async def test_any_order_and_repetition_pays_once(self, pay: Payments, sale: Sale, buyer: Caller) -> None:
        order = await pay.order(buyer, sale)
        otn = (await pay.start(buyer, order.id))["out_trade_no"]
        amount = order.total_fen
        pending = pay.notification(otn, amount_fen=amount, status="pending", id="A")
        failed = pay.notification(otn, amount_fen=amount, status="failed", id="B")
        success = pay.notification(otn, amount_fen=amount, id="C")
        success_again = pay.notification(otn, amount_fen=amount, id="D")
        for body in (pending, failed, success, failed, success, success_again, pending):
            response = await pay.notify(body)
            assert response.status_code == 200, response.text
            assert response.json() == {"code": "SUCCESS", "message": "成功"}
        assert (await pay.payment(otn)).status == "succeeded"
        assert await pay.order_status(order.id) == "paid"
        assert len(await pay.events("payment.succeeded")) == 1
        assert len(await pay.events("payment.failed")) == 1  # "failed" before any success counted once
        assert len(await pay.events("order.paid")) == 1
        by_id = {n.notification_id: n.outcome for n in await pay.notifications()}
        assert by_id == {"A": "stale", "B": "applied", "C": "applied", "D": "duplicate"}

    async def test_many_at_once_pay_once(self, pay: Payments, sale: Sale, buyer: Caller) -> None:
        order = await pay.order(buyer, sale)
        otn = (await pay.start(buyer, order.id))["out_trade_no"]
        bodies = [
            pay.notification(otn, amount_fen=order.total_fen, status=status, id=f"{status}-{n % 3}")
            for n in range(4)
            for status in ("succeeded", "failed", "pending")
        ]
        responses = await asyncio.gather(*(pay.notify(body) for body in bodies))
        assert {r.status_code for r in responses} == {200}
        assert (await pay.payment(otn)).status == "succeeded"
        assert await pay.order_status(order.id) == "paid"
        assert len(await pay.events("payment.succeeded")) == 1
        assert len(await pay.events("order.paid")) == 1
        assert await pay.count(PaymentNotification) == 9  # three ids per status, each recorded once

    async def test_notifications_and_confirms_are_taken_on_the_payments_lane(
        self, pay: Payments, sale: Sale, buyer: Caller
    ) -> None:
        """On PostgreSQL the transaction that pays an order (and holds the item's row until it commits)
        runs on the lane's own loop and connections, not in the request's."""
        lane = settling_lane(pay.runtime)
        taken_on: list[Any] = []
        real_take = service._take

        async def take(session: AsyncSession, *args: Any, **kwargs: Any) -> Any:
            taken_on.append(session.bind)
            return await real_take(session, *args, **kwargs)

        first, second = await pay.order(buyer, sale), await pay.order(buyer, sale)
        first_no = (await pay.start(buyer, first.id))["out_trade_no"]
        second_no = (await pay.start(buyer, second.id))["out_trade_no"]
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(service, "_take", take)
            notified = await pay.notify(pay.notification(first_no, amount_fen=first.total_fen, id="LANE-1"))
            assert notified.status_code == 200, notified.text
            await pay.tap(buyer, second_no)
            confirmed = await pay.confirm(buyer, second.id)
            assert confirmed.json()["order_status"] == "paid"
        assert [await pay.order_status(o.id) for o in (first, second)] == ["paid", "paid"]
        engine = (pay.db if pay.db.is_sqlite else lane.lane_db).engine
        assert taken_on == [engine, engine]
        assert (lane.lane_db is pay.db) == pay.db.is_sqlite

    async def test_a_forged_notification_changes_nothing_and_cannot_take_the_real_ones_id(
        self, pay: Payments, sale: Sale, buyer: Caller
    ) -> None:
        order = await pay.order(buyer, sale)
        otn = (await pay.start(buyer, order.id))["out_trade_no"]
        real = pay.notification(otn, amount_fen=order.total_fen, id="REAL-1")
        raw = httpx.Request("POST", "/", json=real).content
        forged_headers = signed_headers(b"not the sandbox secret", raw)
        forged = await pay.client.post(NOTIFY, content=raw, headers=forged_headers)
        assert forged.status_code == 401
        body = forged.json()
        assert body["error"] == "InvalidSignature"
        assert body["detail"]
        assert body["code"] == "FAIL"
        stale = await pay.client.post(
            NOTIFY,
            content=raw,
            headers=signed_headers(pay.secret, raw, now=pay.clock - timedelta(minutes=10)),
        )
        assert stale.status_code == 401
        assert "replay" in stale.json()["detail"]
        assert (await pay.payment(otn)).status == "created"
        assert await pay.order_status(order.id) == "pending_payment"
        rejected = await pay.notifications()
        assert [(n.verified, n.notification_id, n.claimed_id, n.outcome) for n in rejected] == [
            (False, None, "REAL-1", "rejected"),
            (False, None, "REAL-1", "rejected"),
        ]
        assert len(await pay.events("payment.notification_rejected")) == 2
        # The genuine notification with that id still counts.
        assert (await pay.notify(real)).status_code == 200
        assert await pay.order_status(order.id) == "paid"

    async def test_an_amount_mismatch_is_refused_and_logged(
        self, pay: Payments, sale: Sale, buyer: Caller
    ) -> None:
        order = await pay.order(buyer, sale)
        otn = (await pay.start(buyer, order.id))["out_trade_no"]
        response = await pay.notify(pay.notification(otn, amount_fen=order.total_fen - 1, id="CHEAP"))
        assert response.status_code == 409
        assert response.json()["error"] == "NotificationAmountMismatch"
        assert response.json()["code"] == "FAIL"
        # The sender tries again: the same answer, and still nothing paid.
        again = await pay.notify(pay.notification(otn, amount_fen=order.total_fen - 1, id="CHEAP"))
        assert again.status_code == 409
        assert (await pay.payment(otn)).status == "created"
        assert await pay.order_status(order.id) == "pending_payment"
        [record] = await pay.notifications()
        assert (record.outcome, record.amount_fen) == ("amount_mismatch", order.total_fen - 1)
        [event] = await pay.events("payment.notification_rejected")
        assert event.payload["reason"] == "AmountMismatch"
        assert event.order_id == order.id

    async def test_money_for_a_purpose_nobody_here_settles_is_not_taken_until_someone_does(
        self, pay: Payments, sale: Sale, buyer: Caller, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The payment's update that takes the money is undone with the refusal: the processor is told
        to try again (503), and nothing shows it was paid until a process that can settle it answers."""
        order = await pay.order(buyer, sale)
        async with pay.db.sessionmaker() as session:
            loaded = await orders.get_order(session, order.id)
            fee = await open_payment(
                session,
                loaded,
                provider=get_sandbox(pay.runtime),
                scene=Scene.cashier,
                purpose=PaymentPurpose.delivery_fee,
                amount_fen=600,
            )
            await session.commit()
        handlers = dict(purposes._handlers)
        monkeypatch.delitem(purposes._handlers, PaymentPurpose.delivery_fee.value)
        refused = await pay.notify(pay.notification(fee.out_trade_no, amount_fen=600, id="FEE-1"))
        assert (refused.status_code, refused.json()["error"]) == (503, "PurposeNotReady")
        assert (await pay.payment(fee.out_trade_no)).status == "created"
        assert await pay.notifications() == []
        assert await pay.events("payment.succeeded") == []

        monkeypatch.setitem(purposes._handlers, PaymentPurpose.delivery_fee.value, handlers["delivery_fee"])
        settled = await pay.notify(pay.notification(fee.out_trade_no, amount_fen=600, id="FEE-1"))
        assert settled.status_code == 200
        assert (await pay.payment(fee.out_trade_no)).status == "succeeded"
        [record] = await pay.notifications()
        # Taken once, and handed to the fee's handler, which owes nothing here (no group is short of its
        # threshold): the money goes back.
        assert record.outcome == "refunding"
        [refund] = await pay.refunds()
        assert (refund.payment_id, refund.amount_fen) == (fee.id, 600)
        assert len(await pay.events("payment.succeeded")) == 1
        assert await pay.order_status(order.id) == "pending_payment"  # a fee never pays the order

    async def test_an_unknown_payment_is_404_for_the_sender(self, pay: Payments) -> None:
        response = await pay.notify(pay.notification("LPNOSUCHPAYMENT", amount_fen=100))
        assert response.status_code == 404
        assert response.json()["code"] == "FAIL"


class TestDelivery:
    @pytest.mark.parametrize("payment_settings", [calm_settings(delivery_max_attempts=6)])
    async def test_retries_with_backoff_until_acknowledged(
        self, pay: Payments, sale: Sale, buyer: Caller
    ) -> None:
        pay.transport.failures = 2  # the app answers 500 twice
        order = await pay.order(buyer, sale)
        otn = (await pay.start(buyer, order.id))["out_trade_no"]
        await pay.tap(buyer, otn)
        waits: list[timedelta] = []
        for _ in range(2):
            await pay.run_jobs(seconds=5 if not waits else 60)
            [job] = await pay.jobs(DELIVER_JOB)
            assert job.status == PENDING
            assert "500" in (job.last_error or "")
            waits.append(job.run_at - pay.clock)
        assert await pay.order_status(order.id) == "pending_payment"
        # Exponential backoff: 2 s after the first failed attempt, 4 s after the second.
        assert waits == [timedelta(seconds=2), timedelta(seconds=4)]
        await pay.run_jobs(seconds=60)
        [job] = await pay.jobs(DELIVER_JOB)
        assert (job.status, job.attempts) == (DONE, 3)
        assert pay.transport.calls == 3
        assert await pay.order_status(order.id) == "paid"

    async def test_deliveries_survive_a_restart(
        self, pay: Payments, sale: Sale, buyer: Caller, settings: Settings
    ) -> None:
        order = await pay.order(buyer, sale)
        otn = (await pay.start(buyer, order.id))["out_trade_no"]
        await pay.tap(buyer, otn)
        # The process stops before delivering; a new one (new runtime, engine and app) starts.
        await pay.runtime.extras[DELIVERY_CLIENT_KEY].aclose()
        fresh = Runtime(settings=settings, db=Database(settings.database_url), hub=LocalHub())
        app = create_app(settings, runtime=fresh)
        try:
            async with LifespanManager(app):
                wire(fresh, app, calm_settings())
                fired = await run_due_jobs(fresh.db, fresh.jobs, now=pay.clock + timedelta(seconds=5))
                assert fired == 1
                await fresh.extras[DELIVERY_CLIENT_KEY].aclose()
        finally:
            await fresh.hub.close()
            await fresh.db.dispose()
        assert await pay.order_status(order.id) == "paid"
        pay.runtime.extras[DELIVERY_CLIENT_KEY] = httpx.AsyncClient()  # closed by the fixture


class TestRefunds:
    async def test_money_after_expiry_with_the_units_gone_is_refunded_automatically(
        self, pay: Payments, db: Database, other_buyer: Caller, buyer: Caller, sale_of_one: Sale
    ) -> None:
        order = await pay.order(buyer, sale_of_one)
        otn = (await pay.start(buyer, order.id))["out_trade_no"]
        await pay.tap(buyer, otn)
        async with db.sessionmaker() as session:
            await orders.expire_order(session, order.id)
            await session.commit()
        await pay.order(other_buyer, sale_of_one)  # the last unit goes to someone else
        await pay.run_jobs()  # the late notification arrives
        assert await pay.order_status(order.id) == "expired"
        [record] = await pay.notifications()
        assert record.outcome == "refunding"
        [refund] = await pay.refunds()
        assert (refund.cause, refund.status, refund.amount_fen) == (
            "paid_after_expiry",
            "requested",
            order.total_fen,
        )
        assert len(await pay.jobs(REFUND_JOB)) == 1
        await pay.run_jobs()
        [refund] = await pay.refunds()
        assert refund.status == "succeeded"
        assert refund.provider_ref
        assert refund.provider_ref.startswith("SBXR")
        payment = await pay.payment(otn)
        assert (payment.status, payment.refunded_fen) == ("refunded", order.total_fen)
        assert [len(await pay.events(t)) for t in ("refund.requested", "refund.succeeded", "order.paid")] == [
            1,
            1,
            0,
        ]
        assert await pay.order_status(order.id) == "expired"

    async def test_money_found_by_asking_after_expiry_is_refunded_too(
        self, pay: Payments, db: Database, other_buyer: Caller, buyer: Caller, sale_of_one: Sale
    ) -> None:
        order = await pay.order(buyer, sale_of_one)
        otn = (await pay.start(buyer, order.id))["out_trade_no"]
        await pay.tap(buyer, otn)
        async with db.sessionmaker() as session:
            await orders.expire_order(session, order.id)
            await session.commit()
        await pay.order(other_buyer, sale_of_one)
        body = (await pay.confirm(buyer, order.id)).json()
        assert body["order_status"] == "expired"
        [refund] = await pay.refunds()
        assert (refund.cause, refund.amount_fen) == ("paid_after_expiry", order.total_fen)
        await pay.drain()  # the notification comes after: no second refund
        assert [r.cause for r in await pay.refunds()] == ["paid_after_expiry"]
        assert (await pay.payment(otn)).status == "refunded"

    async def test_a_second_payment_of_a_paid_order_is_refunded(
        self, pay: Payments, sale: Sale, buyer: Caller
    ) -> None:
        order = await pay.order(buyer, sale)
        first = (await pay.start(buyer, order.id))["out_trade_no"]
        # A second payment opened before either was paid (another scene, as when the neighbour switches
        # from one way to pay to another), and both get paid.
        async with pay.db.sessionmaker() as session:
            second = await open_payment(
                session,
                await orders.get_order(session, order.id),
                provider=get_sandbox(pay.runtime),
                scene=Scene.h5,
            )
            await session.commit()
        for otn in (first, second.out_trade_no):
            assert (await pay.notify(pay.notification(otn, amount_fen=order.total_fen))).status_code == 200
        assert await pay.order_status(order.id) == "paid"
        await pay.run_jobs()
        [refund] = await pay.refunds()
        assert (refund.payment_id, refund.cause, refund.status) == (second.id, "not_payable", "succeeded")
        assert (await pay.payment(first)).status == "succeeded"
        assert (await pay.payment(second.out_trade_no)).status == "refunded"

    async def test_an_operator_refund_goes_back_through_the_provider(
        self, pay: Payments, sale: Sale, buyer: Caller, operator: Caller
    ) -> None:
        order = await pay.order(buyer, sale)
        otn = (await pay.start(buyer, order.id))["out_trade_no"]
        await pay.tap(buyer, otn)
        await pay.run_jobs()
        approved = await pay.client.post(f"/api/v1/admin/orders/{order.id}/refund", headers=operator.headers)
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "refund_requested"
        # Approving twice starts no second refund.
        again = await pay.client.post(f"/api/v1/admin/orders/{order.id}/refund", headers=operator.headers)
        assert again.json()["status"] == "refund_requested"
        await pay.run_jobs()
        assert await pay.order_status(order.id) == "refunded"
        [refund] = await pay.refunds()
        assert (refund.cause, refund.status, refund.actor_id) == (
            "order_refund",
            "succeeded",
            operator.user.id,
        )
        assert (await pay.payment(otn)).status == "refunded"
        async with pay.db.sessionmaker() as session:
            assert await session.scalar(select(Refund.provider_ref)) is not None
            assert await session.scalar(select(Job.status).where(Job.kind == REFUND_JOB)) == DONE
        assert len(await pay.events("order.refunded")) == 1


@pytest.fixture
async def sale_of_one(db: Database) -> Sale:
    from tests.orders.factories import make_sale

    async with db.sessionmaker() as session:
        result = await make_sale(session, stock=1, per_user_limit=1)
        await session.commit()
    return result
