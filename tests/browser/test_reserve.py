"""Reservations in a real browser: a neighbour opens an upcoming session, is sent to log in and comes back,
reserves and sees the count; when the host goes live, the inbox badge on every page shows the message,
and opening it leads back to the room."""

from __future__ import annotations

import asyncio
import random
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from linli.core.clock import utcnow
from linli.core.db import Database
from linli.identity.models import User
from linli.live.models import LiveSession, SessionStatus
from tests.browser.conftest import DESKTOP_VIEWPORT, Server, login

HOST = "13900000002"


async def _insert_session(url: str) -> int:
    db = Database(url, pool=False)
    try:
        async with db.sessionmaker() as session:
            host = await session.scalar(select(User).where(User.phone == HOST))
            assert host is not None
            row = LiveSession(
                title="预约测试·青团现做",
                host=host,
                scheduled_start=utcnow() + timedelta(hours=1),
                status=SessionStatus.scheduled.value,
                lineup=[],
                communities=[],
            )
            session.add(row)
            await session.commit()
            return row.id
    finally:
        await db.dispose()


def _upcoming_session(server: Server) -> int:
    # In a thread: Playwright owns this thread's event loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _insert_session(server.env["LINLI_DATABASE_URL"])).result()


def test_neighbour_reserves_and_hears_when_the_host_goes_live(
    browser: Browser, phone_page: Page, server: Server
) -> None:
    session_id = _upcoming_session(server)
    room = f"/live/{session_id}"
    # A neighbour of their own, so no other test's messages reach this inbox.
    phone = f"137{random.randint(10_000_000, 99_999_999)}"

    page = phone_page
    page.goto(server.base_url + room)
    expect(page.get_by_test_id("reserve-count")).to_have_text("0 位邻居已预约")
    page.get_by_test_id("reserve-login").click()
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.locator("#phone").fill(phone)
    sent = len(server.codes(phone))
    page.get_by_test_id("send-code").click()
    page.locator("#code").fill(server.next_code(phone, after=sent))
    page.get_by_test_id("login-submit").click()
    expect(page).to_have_url(re.compile(rf"{room}$"))  # back where they were

    button = page.get_by_test_id("reserve-button")
    expect(button).to_have_text("预约直播")
    button.click()
    expect(button).to_have_text("已预约 · 取消")
    expect(page.get_by_test_id("reserve-count")).to_have_text("1 位邻居已预约")
    page.reload()
    expect(page.get_by_test_id("reserve-count")).to_have_text("1 位邻居已预约")
    expect(page.get_by_test_id("inbox-badge")).to_be_hidden()  # nothing to read yet

    # The host goes live from the console.
    context = browser.new_context(viewport=DESKTOP_VIEWPORT, locale="zh-CN")  # type: ignore[arg-type]
    host = context.new_page()
    try:
        login(host, server, HOST, next_path=f"/host/{session_id}")
        host.on("dialog", lambda dialog: dialog.accept())
        host.get_by_test_id("go-live").click()
        expect(host.get_by_test_id("go-live")).to_have_attribute("hidden", "")
    finally:
        context.close()

    # Any page now shows one unread message (the consumer runs in the server's background worker).
    badge = page.get_by_test_id("inbox-badge")
    for _ in range(20):
        page.goto(server.base_url + "/")
        try:
            expect(badge).to_have_text("1", timeout=1000)
            break
        except AssertionError:
            continue
    expect(badge).to_have_text("1")
    page.get_by_test_id("inbox-tab").click()
    item = page.get_by_test_id("inbox-item").first
    expect(item).to_contain_text("正在直播:预约测试·青团现做")
    expect(item).to_have_attribute("data-unread", "true")
    item.locator("button").click()
    expect(page).to_have_url(re.compile(rf"{room}$"))
    expect(page.get_by_test_id("reserve")).to_have_count(0)  # live now: nothing left to reserve
    expect(badge).to_be_hidden()
