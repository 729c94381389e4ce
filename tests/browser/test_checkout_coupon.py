"""The coupon picker of the room's checkout sheet, in a real browser on a phone: an operator issues 张哥 a
¥3-off coupon for orders from ¥40; the sheet applies the best coupon that fits by itself once the order
reaches the minimum, the neighbour can take it off and put it back, and paying uses it — the order's total
is the server's, and the coupon is spent.

The minimum spend keeps the coupon out of the other checkout tests' one- and two-unit orders, which expect
the plain live price."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP_VIEWPORT, Server, login
from tests.browser.test_checkout import CUSTOMER, OPERATOR, _live_session


def _issue_coupon(browser: Browser, server: Server, *, amount_fen: int, min_spend_fen: int) -> int:
    context = browser.new_context(viewport=DESKTOP_VIEWPORT, locale="zh-CN")  # type: ignore[arg-type]
    try:
        page = context.new_page()
        login(page, server, OPERATOR, next_path="/")
        api = f"{server.base_url}/api/v1/admin/coupons/templates"
        until = (datetime.now(UTC) + timedelta(days=3)).isoformat()
        template = page.request.post(
            api,
            data={
                "name": "青团满减券",
                "kind": "fixed",
                "amount_fen": amount_fen,
                "min_spend_fen": min_spend_fen,
                "valid_until": until,
            },
        )
        assert template.ok, template.text()
        issued = page.request.post(f"{api}/{template.json()['id']}/issue", data={"phone": CUSTOMER})
        assert issued.ok, issued.text()
        return int(issued.json()["id"])
    finally:
        context.close()


def test_the_sheet_applies_the_best_coupon_and_paying_spends_it(
    browser: Browser, phone_page: Page, server: Server
) -> None:
    session_id = _live_session(browser, server, "青团满减场", stock=50, price_fen=2500)
    coupon_id = _issue_coupon(browser, server, amount_fen=300, min_spend_fen=4000)
    room = f"/live/{session_id}"
    zhang = phone_page
    login(zhang, server, CUSTOMER, next_path=room)

    zhang.get_by_test_id("product-card").first.click()
    sheet = zhang.get_by_test_id("checkout-sheet")
    pay = sheet.get_by_test_id("checkout-pay")
    # One unit (¥25) is under the coupon's minimum: no coupon, the live price.
    expect(pay).to_have_text("立即支付 ¥25")
    expect(sheet.get_by_test_id("bd-coupon")).to_be_hidden()

    # Two units (¥50) reach it: the sheet applies it by itself.
    sheet.get_by_test_id("qty-plus").click()
    expect(sheet.get_by_test_id("qty")).to_have_text("2")
    expect(sheet.get_by_test_id("bd-coupon")).to_have_text("−¥3")
    expect(sheet.get_by_test_id("bd-total")).to_have_text("¥47")
    select = sheet.get_by_test_id("coupon-select")
    expect(select).to_have_value(str(coupon_id))

    # Taken off, the total is the plain live price again; put back, ¥3 off again.
    select.select_option("")
    expect(sheet.get_by_test_id("bd-total")).to_have_text("¥50")
    expect(sheet.get_by_test_id("bd-coupon")).to_be_hidden()
    select.select_option(str(coupon_id))
    expect(sheet.get_by_test_id("bd-total")).to_have_text("¥47")
    expect(pay).to_have_text("立即支付 ¥47")

    pay.click()
    zhang.wait_for_url("**/pay/sandbox/**")
    expect(zhang.get_by_test_id("cashier-amount")).to_have_text("¥47")
    zhang.get_by_test_id("cashier-pay").click()
    banner = zhang.get_by_test_id("checkout-paid")
    expect(banner).to_have_attribute("data-status", "paid", timeout=20_000)
    order_id = (banner.get_by_test_id("checkout-view-order").get_attribute("href") or "").rsplit("/", 1)[1]
    order = zhang.request.get(f"{server.base_url}/api/v1/orders/{order_id}").json()
    assert (order["subtotal_fen"], order["discount_fen"], order["total_fen"]) == (5000, 300, 4700)
    mine = {c["id"]: c for c in zhang.request.get(f"{server.base_url}/api/v1/me/coupons").json()}
    assert mine[coupon_id]["status"] == "used"
    assert mine[coupon_id]["order_id"] == int(order_id)
