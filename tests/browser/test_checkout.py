"""Checkout inside the live room, in a real browser on a phone: 张哥 (a returning neighbour: logged in, a
member of 阳光花园 with its pickup point) taps a card, the sheet opens over the room with the server's
price breakdown, 立即支付 opens the sandbox cashier, 支付 pays — three taps, counted by the page itself —
and the room shows the order paid. A neighbour watching on another phone sees the purchase ticker, and a
card that sells out turns to 已售罄 for them within a second.

Each test runs in a live session of its own (made through the operators' API) so the demo's scheduled
festival stays as the other browser tests expect it."""

from __future__ import annotations

import re
import struct
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Browser, Page, Response, expect

from tests.browser.conftest import DESKTOP_VIEWPORT, PHONE_VIEWPORT, Server, login

OPERATOR = "13900000001"
CUSTOMER = "13900000004"
LEADER = "13900000003"
# Trusted (real) clicks anywhere on the site, kept across the room → cashier → room navigations.
COUNT_TAPS = """
document.addEventListener("click", (event) => {
  if (!event.isTrusted) return;
  sessionStorage.setItem("taps", String(Number(sessionStorage.getItem("taps") || 0) + 1));
}, true);
"""


def _live_session(browser: Browser, server: Server, title: str, *, stock: int, price_fen: int) -> int:
    """A live session selling the demo's qingtuan (product 1) at ``price_fen``."""
    context = browser.new_context(viewport=DESKTOP_VIEWPORT, locale="zh-CN")  # type: ignore[arg-type]
    try:
        page = context.new_page()
        login(page, server, OPERATOR, next_path="/")
        api = f"{server.base_url}/api/v1/admin/sessions"
        festival = page.request.get(f"{api}/1").json()
        start = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        created = page.request.post(
            api, data={"title": title, "host_id": festival["host_id"], "scheduled_start": start}
        )
        assert created.ok, created.text()
        session_id = int(created.json()["id"])
        item = {"product_id": 1, "live_price_fen": price_fen, "stock": stock, "per_user_limit": 5}
        added = page.request.post(f"{api}/{session_id}/lineup", data=item)
        assert added.ok, added.text()
        for to in ("scheduled", "live"):
            moved = page.request.post(f"{api}/{session_id}/transition", data={"to": to})
            assert moved.ok, moved.text()
        return session_id
    finally:
        context.close()


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_returning_neighbour_pays_from_the_room_in_three_taps(
    browser: Browser, phone_page: Page, server: Server, tmp_path: Path
) -> None:
    session_id = _live_session(browser, server, "青团加场", stock=50, price_fen=2500)
    room = f"/live/{session_id}"

    # Another neighbour watching on their phone, not logged in.
    context = browser.new_context(viewport=PHONE_VIEWPORT, locale="zh-CN")  # type: ignore[arg-type]
    watcher = context.new_page()
    try:
        watcher.goto(server.base_url + room)
        expect(watcher.get_by_test_id("stock").first).to_have_text("仅剩最后50份")

        zhang = phone_page
        login(zhang, server, CUSTOMER, next_path=room)
        expect(zhang.get_by_test_id("product-card").first).to_contain_text("春季限定青团")
        zhang.add_init_script(COUNT_TAPS)
        zhang.reload()
        expect(zhang.get_by_test_id("product-card").first).to_be_visible()
        zhang.evaluate("sessionStorage.setItem('taps', '0')")
        taps = 0

        # Tap 1: the card's 马上抢. The sheet opens over the room; the video stays on the page.
        buy = zhang.get_by_test_id("product-card").first.get_by_test_id("buy")
        expect(buy).to_have_text("马上抢")
        buy.click()
        taps += 1
        sheet = zhang.get_by_test_id("checkout-sheet")
        expect(sheet).to_be_visible()
        pay = sheet.get_by_test_id("checkout-pay")
        expect(pay).to_have_text("立即支付 ¥25")
        expect(pay).to_be_enabled()
        expect(sheet.get_by_test_id("checkout-name")).to_have_text("春季限定青团")
        expect(sheet.get_by_test_id("bd-store")).to_have_text("¥30")
        expect(sheet.get_by_test_id("bd-total")).to_have_text("¥25")
        expect(sheet.get_by_test_id("bd-saving")).to_contain_text("¥5")
        expect(sheet.get_by_test_id("qty-limit")).to_contain_text("每人限购5份")
        expect(sheet.get_by_test_id("checkout-phone")).to_have_value(CUSTOMER)
        expect(sheet.get_by_test_id("pickup-place")).to_contain_text("阳光花园")
        expect(sheet.get_by_test_id("fulfil-pickup")).to_be_checked()
        assert zhang.url.endswith(room)
        assert zhang.locator("#lr-video").count() == 1
        assert zhang.evaluate("document.documentElement.scrollWidth") <= PHONE_VIEWPORT["width"]

        shot = tmp_path / "checkout-sheet-phone.png"
        zhang.screenshot(path=str(shot))
        assert _png_size(shot) == (PHONE_VIEWPORT["width"], PHONE_VIEWPORT["height"])
        assert shot.stat().st_size > 10_000  # a rendered sheet, not a blank page

        # Tap 2: pay. The order is placed with its payment, in one request, and the sandbox cashier opens.
        posts: list[str] = []
        zhang.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
        pay.click()
        taps += 1
        zhang.wait_for_url("**/pay/sandbox/**")
        assert [url.removeprefix(server.base_url) for url in posts] == ["/api/v1/orders"]
        expect(zhang.get_by_test_id("cashier-amount")).to_have_text("¥25")

        # Tap 3: 支付 on the cashier; back in the room, the order is shown paid.
        zhang.get_by_test_id("cashier-pay").click()
        taps += 1
        expect(zhang.get_by_test_id("cashier-paid")).to_be_visible()
        # The cashier sends the neighbour back to the room (after 3 s), which asks whether the money
        # went through (the server asks the processor: its notification may come late, as a real
        # one's does) until the order shows paid.
        banner = zhang.get_by_test_id("checkout-paid")
        expect(banner).to_have_attribute("data-status", "paid", timeout=20_000)
        expect(banner).to_contain_text("已支付")
        assert f"{room}?paid=" in zhang.evaluate("location.href")
        link = banner.get_by_test_id("checkout-view-order").get_attribute("href") or ""
        order_id = link.rsplit("/", 1)[1]
        assert f"{server.base_url}/api/v1/orders/{order_id}/payments/confirm" in posts
        order = zhang.request.get(f"{server.base_url}/api/v1/orders/{order_id}").json()
        assert order["status"] == "paid"
        assert order["total_fen"] == 2500
        assert order["fulfilment"] == "pickup"

        assert taps == 3
        assert zhang.evaluate("Number(sessionStorage.getItem('taps'))") == 3

        # The neighbour watching sees the purchase (masked) and the stock go down.
        expect(watcher.get_by_test_id("ticker-line").first).to_have_text("阳光花园的张*刚刚下单了1份")
        expect(watcher.get_by_test_id("stock").first).to_have_text("仅剩最后49份")
    finally:
        context.close()


def test_a_card_that_sells_out_turns_sold_out_for_another_viewer_within_a_second(
    browser: Browser, phone_page: Page, server: Server
) -> None:
    session_id = _live_session(browser, server, "青团秒杀", stock=2, price_fen=990)
    room = f"/live/{session_id}"
    context = browser.new_context(viewport=PHONE_VIEWPORT, locale="zh-CN")  # type: ignore[arg-type]
    watcher = context.new_page()
    try:
        watcher.goto(server.base_url + room)
        card = watcher.get_by_test_id("product-card").first
        expect(card.get_by_test_id("stock")).to_have_text("仅剩最后2份")

        zhang = phone_page
        login(zhang, server, CUSTOMER, next_path=room)
        zhang.get_by_test_id("product-card").first.click()
        sheet = zhang.get_by_test_id("checkout-sheet")
        expect(sheet.get_by_test_id("checkout-pay")).to_be_enabled()
        sheet.get_by_test_id("qty-plus").click()
        expect(sheet.get_by_test_id("qty")).to_have_text("2")
        # Bounded by the stock left: no third unit.
        expect(sheet.get_by_test_id("qty-plus")).to_be_disabled()
        expect(sheet.get_by_test_id("bd-total")).to_have_text("¥19.80")

        def is_order(response: Response) -> bool:
            return response.url.endswith("/api/v1/orders") and response.request.method == "POST"

        with zhang.expect_response(is_order) as placing:
            sheet.get_by_test_id("checkout-pay").click()
        assert placing.value.status == 201
        placed = time.monotonic()
        expect(card.get_by_test_id("stock")).to_have_text("已售罄", timeout=1_000)
        assert time.monotonic() - placed < 1.0
        expect(card).to_have_class(re.compile(r"\bis-sold-out\b"))
        expect(card.get_by_test_id("buy")).to_be_hidden()
        zhang.wait_for_url("**/pay/sandbox/**")

        # One more order is a clear 409, and the sheet says 已售罄.
        body = {
            "session_id": session_id,
            "lineup_item_id": int(card.get_attribute("data-item-id") or 0),
            "quantity": 1,
        }
        refused = zhang.request.post(f"{server.base_url}/api/v1/orders", data=body)
        assert refused.status == 409
        assert refused.json()["error"] == "SoldOut"
        zhang.goto(server.base_url + room)
        zhang.get_by_test_id("product-card").first.click()
        expect(zhang.get_by_test_id("checkout-error")).to_have_text("已售罄，下次早点来哦")
        expect(zhang.get_by_test_id("checkout-pay")).to_be_disabled()

        # A neighbour who is not logged in goes to log in, and comes back to the room.
        card.click()
        watcher.wait_for_url("**/login?next=**")
        assert parse_qs(urlsplit(watcher.url).query)["next"] == [room]
        watcher.locator("#phone").fill(LEADER)
        sent = len(server.codes(LEADER))
        watcher.get_by_test_id("send-code").click()
        watcher.locator("#code").fill(server.next_code(LEADER, after=sent))
        watcher.get_by_test_id("login-submit").click()
        watcher.wait_for_url(f"**{room}")
        expect(watcher.get_by_test_id("product-card").first.get_by_test_id("stock")).to_have_text("已售罄")
    finally:
        context.close()
