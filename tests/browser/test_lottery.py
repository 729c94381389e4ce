"""A keyword lottery in a real browser: the host starts one from the console, 张哥 sees it on his phone and
sends the keyword with one tap, the host draws early, and the room shows him as the (masked) winner with
the revealed seed, whose hash is the one shown from the start.

Runs in a session of its own (made live through the operators' API) so the demo's scheduled festival stays
as the other browser tests expect it."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP_VIEWPORT, Server, login

OPERATOR = "13900000001"
HOST = "13900000002"
CUSTOMER = "13900000004"


def _live_session(browser: Browser, server: Server) -> int:
    context = browser.new_context(viewport=DESKTOP_VIEWPORT, locale="zh-CN")  # type: ignore[arg-type]
    try:
        page = context.new_page()
        login(page, server, OPERATOR, next_path="/")
        api = f"{server.base_url}/api/v1/admin/sessions"
        festival = page.request.get(f"{api}/1").json()
        start = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        created = page.request.post(
            api, data={"title": "抽奖专场", "host_id": festival["host_id"], "scheduled_start": start}
        )
        assert created.ok, created.text()
        session_id = int(created.json()["id"])
        for to in ("scheduled", "live"):
            moved = page.request.post(f"{api}/{session_id}/transition", data={"to": to})
            assert moved.ok, moved.text()
        return session_id
    finally:
        context.close()


def test_host_starts_a_lottery_a_neighbour_enters_and_wins(
    browser: Browser, phone_page: Page, desktop_page: Page, server: Server
) -> None:
    session_id = _live_session(browser, server)
    host = desktop_page
    login(host, server, HOST, next_path=f"/host/{session_id}")
    host.get_by_test_id("lottery-keyword").fill("麦香青团")
    host.get_by_test_id("lottery-prize-name").fill("青团礼盒")
    host.get_by_test_id("lottery-duration").fill("300")
    host.get_by_test_id("lottery-start").click()
    running = host.get_by_test_id("host-lottery-item").first
    expect(running).to_have_attribute("data-status", "running")
    expect(running.get_by_test_id("host-lottery-countdown")).to_contain_text("秒后开奖")

    zhang = phone_page
    login(zhang, server, CUSTOMER, next_path=f"/live/{session_id}")
    panel = zhang.get_by_test_id("lottery")
    expect(panel).to_be_visible()
    expect(panel.get_by_test_id("lottery-how")).to_contain_text("麦香青团")
    expect(panel.get_by_test_id("lottery-prize")).to_contain_text("青团礼盒")
    seed_hash = panel.get_by_test_id("lottery-seed-hash").inner_text()
    assert len(seed_hash) == 64
    panel.get_by_test_id("lottery-join").click()
    expect(zhang.get_by_test_id("comment").filter(has_text="麦香青团")).to_be_visible()
    expect(host.get_by_test_id("host-comment").filter(has_text="麦香青团")).to_be_visible()

    running.get_by_test_id("lottery-draw").click()
    expect(host.get_by_test_id("host-lottery-item").first).to_have_attribute("data-status", "drawn")
    expect(host.get_by_test_id("host-lottery-winners").first).to_contain_text("张*")

    expect(panel).to_have_attribute("data-status", "drawn")
    expect(panel.get_by_test_id("lottery-winner")).to_have_text(["张*"])
    expect(panel.get_by_test_id("lottery-entries")).to_contain_text("1")
    seed = panel.get_by_test_id("lottery-seed").inner_text()
    assert hashlib.sha256(seed.encode()).hexdigest() == seed_hash
