"""The live room in a real browser: 张哥 comments from his phone, a neighbour's phone shows it, the host
answers from the console with an @mention and the room shows the answer under the question; a comment
made of markup stays text. A screenshot of the room on a phone is kept in ``test-artifacts/``."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS, PHONE_VIEWPORT, Server, login

HOST = "13900000002"
CUSTOMER = "13900000004"
ROOM = "/live/1"


def test_neighbour_comments_and_the_host_replies_with_a_mention(
    browser: Browser, phone_page: Page, desktop_page: Page, server: Server
) -> None:
    # A neighbour watching without logging in.
    neighbour = phone_page
    neighbour.goto(server.base_url + ROOM)
    expect(neighbour.get_by_test_id("product-card").first).to_contain_text("春季限定青团")
    expect(neighbour.get_by_test_id("product-card").first).to_contain_text("¥25")
    expect(neighbour.get_by_test_id("store-price").first).to_have_text("¥30")
    expect(neighbour.get_by_test_id("not-live")).to_be_visible()
    # Not live yet, so nothing is on sale: the cards offer no 马上抢 (the live room's cards do).
    expect(neighbour.get_by_test_id("product-card").first.get_by_test_id("buy")).to_be_hidden()
    expect(neighbour.get_by_test_id("login-to-comment")).to_be_visible()
    expect(neighbour.get_by_test_id("viewer-count")).to_contain_text("人在看")

    # 张哥 on his own phone.
    context = browser.new_context(viewport=PHONE_VIEWPORT, locale="zh-CN")  # type: ignore[arg-type]
    zhang = context.new_page()
    try:
        login(zhang, server, CUSTOMER, next_path=ROOM)
        expect(zhang.get_by_test_id("comment-form")).to_be_visible()
        zhang.get_by_test_id("comment-input").fill("青团是今天现做的吗?")
        zhang.get_by_test_id("comment-send").click()
        expect(zhang.get_by_test_id("comment").filter(has_text="青团是今天现做的吗?")).to_be_visible()
        expect(zhang.get_by_test_id("comment-input")).to_have_value("")
        markup = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
        zhang.get_by_test_id("comment-input").fill(markup)
        zhang.get_by_test_id("comment-send").click()
        expect(zhang.get_by_test_id("comment-input")).to_have_value("")

        question = neighbour.get_by_test_id("comment").filter(has_text="青团是今天现做的吗?")
        expect(question).to_contain_text("张哥")
        shown = neighbour.get_by_test_id("comment").filter(has_text="<script>")
        expect(shown).to_contain_text(markup)
        assert neighbour.evaluate("window.__xss") is None
        assert neighbour.locator("[data-testid=comments] img, [data-testid=comments] script").count() == 0

        # The host answers from the console.
        host = desktop_page
        login(host, server, HOST, next_path="/host/1")
        incoming = host.get_by_test_id("host-comment").filter(has_text="青团是今天现做的吗?")
        expect(incoming).to_be_visible()
        incoming.get_by_test_id("reply").click()
        expect(host.get_by_test_id("replying-to")).to_have_text("回复 @张哥")
        host.get_by_test_id("host-input").fill("今天凌晨中央厨房现做的!")
        host.get_by_test_id("host-send").click()
        expect(host.get_by_test_id("replying-to")).to_be_hidden()

        answer = neighbour.locator("[data-testid=comment].is-reply")
        expect(answer).to_contain_text("@张哥 今天凌晨中央厨房现做的!")
        expect(answer.locator("q")).to_have_text("青团是今天现做的吗?")
        expect(zhang.locator("[data-testid=comment].is-reply")).to_contain_text("@张哥")

        # The host pins the qingtuan: it is on top of every viewer's lineup, marked as explained now.
        first_item = host.get_by_test_id("host-item").first
        first_item.locator("[data-pin]").click()
        pinned = neighbour.locator("[data-testid=product-card].is-pinned")
        expect(pinned).to_contain_text("正在讲解")
        expect(pinned).to_contain_text("春季限定青团")

        # Nothing overflows the phone's width.
        assert neighbour.evaluate("document.documentElement.scrollWidth") <= PHONE_VIEWPORT["width"]
        ARTIFACTS.mkdir(exist_ok=True)
        neighbour.screenshot(path=str(ARTIFACTS / "live-room-phone.png"), full_page=True)
    finally:
        context.close()
