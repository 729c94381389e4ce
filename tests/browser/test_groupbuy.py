"""Community group orders in a real browser on phones: 张哥 watches the room while a new neighbour, at
her first order, chooses 阳光花园 in the checkout sheet and pays — 张哥's community bar moves. Then the
leader 李姐 verifies 张哥's pickup code on her phone, in two goes (a multi-unit order), after the
operator cut off, batched, dispatched and confirmed the delivery; 张哥's order page follows each step.

Each test runs in a live session of its own (made through the operators' API)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import DESKTOP_VIEWPORT, PHONE_VIEWPORT, Server, login

OPERATOR = "13900000001"
LEADER = "13900000003"
CUSTOMER = "13900000004"


def _operator(browser: Browser, server: Server) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport=DESKTOP_VIEWPORT, locale="zh-CN")  # type: ignore[arg-type]
    page = context.new_page()
    login(page, server, OPERATOR, next_path="/")
    return context, page


def _live_session(page: Page, server: Server, title: str, *, threshold: int) -> tuple[int, int]:
    """A live session selling the demo's qingtuan, with its group-order threshold; (session, item)."""
    api = f"{server.base_url}/api/v1/admin/sessions"
    festival = page.request.get(f"{api}/1").json()
    start = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = page.request.post(
        api, data={"title": title, "host_id": festival["host_id"], "scheduled_start": start}
    )
    assert created.ok, created.text()
    session_id = int(created.json()["id"])
    item = {"product_id": 1, "live_price_fen": 2500, "stock": 100, "per_user_limit": 5}
    added = page.request.post(f"{api}/{session_id}/lineup", data=item)
    assert added.ok, added.text()
    for to in ("scheduled", "live"):
        assert page.request.post(f"{api}/{session_id}/transition", data={"to": to}).ok
    settings = page.request.put(
        f"{server.base_url}/api/v1/admin/groupbuy/sessions/{session_id}/settings",
        data={"threshold": threshold},
    )
    assert settings.ok, settings.text()
    return session_id, int(added.json()["id"])


def _wait(fetch: Any, done: Any, *, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r}")
        time.sleep(0.3)


def test_the_rooms_bar_moves_when_another_neighbour_pays(
    browser: Browser, phone_page: Page, server: Server
) -> None:
    op_context, operator = _operator(browser, server)
    try:
        session_id, _item = _live_session(operator, server, "集单加场", threshold=3)
    finally:
        op_context.close()
    room = f"/live/{session_id}"
    zhang = phone_page
    login(zhang, server, CUSTOMER, next_path=room)
    mine = zhang.get_by_test_id("gb-mine")
    expect(mine).to_have_text("阳光花园 已集0份,还差3份")
    expect(zhang.get_by_test_id("gb-promise")).to_contain_text("本社区订单满3份,")

    context = browser.new_context(viewport=PHONE_VIEWPORT, locale="zh-CN")  # type: ignore[arg-type]
    try:
        newcomer = context.new_page()
        login(newcomer, server, "13922220001", next_path=room)
        newcomer.get_by_test_id("product-card").first.click()
        sheet = newcomer.get_by_test_id("checkout-sheet")
        expect(sheet).to_be_visible()
        # No community yet: the sheet asks her to choose one from a searchable list.
        picker = sheet.get_by_test_id("gb-picker")
        expect(picker).to_be_visible()
        picker.get_by_test_id("gb-picker-search").fill("阳光")
        choice = picker.get_by_role("button", name="阳光花园")
        expect(choice).to_have_count(1)
        choice.click()
        expect(sheet.get_by_test_id("pickup-place")).to_contain_text("阳光花园")
        expect(sheet.get_by_test_id("fulfil-pickup")).to_be_checked()
        assert newcomer.evaluate("document.documentElement.scrollWidth") <= PHONE_VIEWPORT["width"]
        pay = sheet.get_by_test_id("checkout-pay")
        expect(pay).to_be_enabled()
        pay.click()
        newcomer.wait_for_url("**/pay/sandbox/**")
        newcomer.get_by_test_id("cashier-pay").click()
        expect(newcomer.get_by_test_id("cashier-paid")).to_be_visible()

        # 张哥, watching, sees his community's bar move without reloading.
        expect(mine).to_have_text("阳光花园 已集1份,还差2份", timeout=30_000)
        bar = zhang.get_by_test_id("gb-bar")
        expect(bar).to_have_attribute("aria-valuenow", "1")
        expect(zhang.get_by_test_id("gb-board")).to_contain_text("阳光花园1/3")
        zhang.screenshot(path=str(server.var_dir / "groupbuy-room-progress.png"))
    finally:
        context.close()


def _pay(page: Page, server: Server, session_id: int, item_id: int, quantity: int) -> int:
    base = server.base_url
    order = page.request.post(
        f"{base}/api/v1/orders",
        data={"session_id": session_id, "lineup_item_id": item_id, "quantity": quantity},
    )
    assert order.ok, order.text()
    order_id = int(order.json()["id"])
    payment = page.request.post(f"{base}/api/v1/orders/{order_id}/payments", data={"provider": "sandbox"})
    assert payment.ok, payment.text()
    tapped = page.request.post(
        f"{base}/api/v1/payments/sandbox/{payment.json()['out_trade_no']}", data={"result": "succeeded"}
    )
    assert tapped.ok, tapped.text()
    return order_id


def test_the_leader_verifies_a_pickup_on_her_phone(
    browser: Browser, phone_page: Page, server: Server
) -> None:
    base = server.base_url
    op_context, operator = _operator(browser, server)
    buyer_context = browser.new_context(viewport=PHONE_VIEWPORT, locale="zh-CN")  # type: ignore[arg-type]
    try:
        session_id, item_id = _live_session(operator, server, "集单核销", threshold=1)
        zhang = buyer_context.new_page()
        login(zhang, server, CUSTOMER, next_path="/")
        order_id = _pay(zhang, server, session_id, item_id, 2)
        status = _wait(
            lambda: zhang.request.get(f"{base}/api/v1/groupbuy/orders/{order_id}").json(),
            lambda s: s.get("code") is not None and s["group"] is not None,
        )
        assert status["message"].startswith("本社区已集齐1份,")
        code = status["code"]
        zhang.goto(f"{base}/orders/{order_id}")
        expect(zhang.get_by_test_id("gb-code")).to_have_text(code)
        expect(zhang.get_by_test_id("gb-qr").locator("svg")).to_be_visible()

        admin = f"{base}/api/v1/admin/groupbuy"
        assert operator.request.post(f"{admin}/sessions/{session_id}/cutoff").ok
        groups = operator.request.get(f"{admin}/sessions/{session_id}/groups").json()
        batch = operator.request.post(
            f"{admin}/sessions/{session_id}/batches",
            data={"group_order_ids": [g["id"] for g in groups], "note": "司机老张"},
        )
        assert batch.status == 201, batch.text()
        assert operator.request.post(f"{admin}/batches/{batch.json()['id']}/dispatch").ok
        expect(zhang.get_by_test_id("gb-order-message")).to_have_text("配送中,请留意送达通知", timeout=15_000)
        assert operator.request.post(f"{admin}/batches/{batch.json()['id']}/arrive").ok
        # His order page follows on its own.
        expect(zhang.get_by_test_id("gb-order-message")).to_have_text(
            "已送达自提点,凭取货码取货", timeout=15_000
        )

        li = phone_page
        login(li, server, LEADER, next_path="/leader")
        li.goto(f"{base}/leader")
        expect(li.get_by_test_id("gb-point-name")).to_contain_text("阳光花园")
        form = li.get_by_test_id("gb-verify-form")
        result = li.get_by_test_id("gb-result")
        wrong = "000000" if code != "000000" else "111111"
        form.get_by_test_id("gb-code-input").fill(wrong)
        form.get_by_test_id("gb-verify-button").click()
        expect(result).to_contain_text("核销失败")
        # Partial pickup: one of the two units now.
        form.get_by_test_id("gb-code-input").fill(code)
        form.get_by_test_id("gb-units-input").fill("1")
        form.get_by_test_id("gb-verify-button").click()
        expect(result).to_have_text("已核销:张* 取走 1 份 · 还剩 1 份待取")
        li.screenshot(path=str(server.var_dir / "groupbuy-leader-verify.png"))
        assert li.evaluate("document.documentElement.scrollWidth") <= PHONE_VIEWPORT["width"]
        form.get_by_test_id("gb-code-input").fill(code)
        form.get_by_test_id("gb-verify-button").click()
        expect(result).to_have_text("已核销:张* 取走 1 份")
        order = zhang.request.get(f"{base}/api/v1/orders/{order_id}").json()
        assert order["status"] == "completed"
        expect(zhang.get_by_test_id("gb-order-message")).to_have_text("已取货,感谢支持!", timeout=15_000)
    finally:
        buyer_context.close()
        op_context.close()


def test_a_neighbour_pays_the_delivery_fee_from_the_order_page_on_his_phone(
    browser: Browser, phone_page: Page, server: Server
) -> None:
    """A group closed below its threshold is delivered anyway with a ¥4 fee: 张哥 pays it online from his
    order page through the sandbox cashier, and the page (then his leader's) shows it paid."""
    base = server.base_url
    op_context, operator = _operator(browser, server)
    try:
        session_id, item_id = _live_session(operator, server, "集单配送费", threshold=50)
        terms = operator.request.put(
            f"{base}/api/v1/admin/groupbuy/sessions/{session_id}/settings",
            data={"below_policy": "deliver", "delivery_fee_fen": 400, "collect_fee": True},
        )
        assert terms.ok, terms.text()
        zhang = phone_page
        login(zhang, server, CUSTOMER, next_path="/")
        order_id = _pay(zhang, server, session_id, item_id, 1)
        _wait(
            lambda: zhang.request.get(f"{base}/api/v1/groupbuy/orders/{order_id}").json(),
            lambda s: s.get("group") is not None,
        )
        assert operator.request.post(f"{base}/api/v1/admin/groupbuy/sessions/{session_id}/cutoff").ok

        zhang.goto(f"{base}/orders/{order_id}")
        fee = zhang.get_by_test_id("gb-fee")
        expect(fee).to_have_attribute("data-fee-status", "due")
        expect(zhang.get_by_test_id("gb-fee-text")).to_have_text("配送费 ¥4 待支付")
        assert zhang.evaluate("document.documentElement.scrollWidth") <= PHONE_VIEWPORT["width"]
        zhang.get_by_test_id("gb-fee-pay").click()
        zhang.wait_for_url("**/pay/sandbox/**")
        expect(zhang.get_by_test_id("cashier-amount")).to_have_text("¥4")
        expect(zhang.get_by_test_id("cashier-what")).to_contain_text(f"订单 {order_id} 的配送费")
        zhang.get_by_test_id("cashier-pay").click()
        expect(zhang.get_by_test_id("cashier-paid")).to_be_visible()
        zhang.get_by_test_id("cashier-back").click()
        zhang.wait_for_url(f"**/orders/{order_id}")
        # The notification comes a little later; the page follows on its own.
        expect(zhang.get_by_test_id("gb-fee")).to_have_attribute(
            "data-fee-status", "paid_online", timeout=30_000
        )
        expect(zhang.get_by_test_id("gb-fee-text")).to_have_text("配送费 ¥4 已在线支付")
        expect(zhang.get_by_test_id("gb-fee-pay")).to_have_count(0)
        zhang.screenshot(path=str(server.var_dir / "groupbuy-fee-paid.png"))
        status = zhang.request.get(f"{base}/api/v1/groupbuy/orders/{order_id}").json()
        assert status["order_status"] == "paid"  # the fee's payment never touches the order
        inbox = zhang.request.get(f"{base}/api/v1/me/inbox").json()["items"]
        assert "配送费已支付" in [i["title"] for i in inbox]
        zhang.goto(f"{base}/orders/{order_id}?lang=en")
        expect(zhang.get_by_test_id("gb-fee-text")).to_have_text("Delivery fee of ¥4 paid online")
        zhang.goto(f"{base}/orders/{order_id}?lang=zh-CN")
    finally:
        op_context.close()
