"""The community feed in a real browser: a neighbour opens their community's feed, reads a pre-heat
teaser (short video, the session's card) and a guessing topic, guesses, and reserves the session from the
teaser post; the answer is nowhere on the page before its reveal. Leaves a screenshot."""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from playwright.sync_api import Page, expect
from sqlalchemy import select

from linli.community.feed import preheat
from linli.community.feed.models import Review
from linli.community.models import Community, Membership
from linli.core.clock import utcnow
from linli.core.db import Database
from linli.identity.models import User, UserRole
from linli.live import preheat as live_preheat
from linli.live.models import LineupItem, LiveSession, SessionStatus
from tests.browser.conftest import ARTIFACTS, Server, login

OPERATOR = "13900000001"
ANSWER = "荠菜春笋"


async def _prepare(url: str, phone: str, base_url: str) -> tuple[int, int]:
    """A neighbour of the first demo community, an upcoming session and its published pre-heat posts."""
    db = Database(url, pool=False)
    try:
        async with db.sessionmaker() as session:
            operator = await session.scalar(select(User).where(User.phone == OPERATOR))
            community = await session.scalar(select(Community).order_by(Community.id).limit(1))
            assert operator is not None
            assert community is not None
            neighbour = User(phone=phone, nickname="李姐", is_active=True, roles=[UserRole(role="customer")])
            session.add(neighbour)
            await session.flush()
            session.add(Membership(user_id=neighbour.id, community_id=community.id, source="chosen"))
            now = utcnow()
            live_session = LiveSession(
                title="青团预热场",
                host=None,
                scheduled_start=now + timedelta(days=2),
                status=SessionStatus.scheduled.value,
                lineup=[],
                communities=[],
            )
            session.add(live_session)
            await session.flush()
            campaign = await live_preheat.plan(
                session,
                live_session,
                operator,
                title="青团节预热",
                community_ids=[community.id],
                items=[
                    preheat.ItemPlan(
                        kind="teaser",
                        publish_at=now + timedelta(hours=1),
                        text="今年春天,有一款青团要回来了……后天直播间见!",
                        video_url=f"{base_url}/static/teaser-missing.mp4",
                    ),
                    preheat.ItemPlan(
                        kind="topic",
                        publish_at=now + timedelta(hours=2),
                        question="大家猜猜我们今年的青团馅料是什么?",
                        answer=ANSWER,
                        reveal_at=now + timedelta(days=1),
                        prize_name="青团一盒",
                    ),
                ],
            )
            for item in await preheat.items_of(session, campaign.id):
                await preheat.publish_item(session, item.id)  # as their timers will
            await session.commit()
            return community.id, live_session.id
    finally:
        await db.dispose()


def test_neighbour_reads_the_feed_guesses_and_reserves_from_a_teaser(
    phone_page: Page, server: Server
) -> None:
    phone = f"136{random.randint(10_000_000, 99_999_999)}"
    with ThreadPoolExecutor(max_workers=1) as pool:
        community_id, session_id = pool.submit(
            asyncio.run, _prepare(server.env["LINLI_DATABASE_URL"], phone, server.base_url)
        ).result()

    page = phone_page
    login(page, server, phone, next_path=f"/c/{community_id}")
    page.goto(f"{server.base_url}/c/{community_id}")
    expect(page.get_by_test_id("feed-title")).to_contain_text("社区动态")
    teaser = page.locator('[data-testid="feed-post"][data-kind="teaser"]')
    expect(teaser.get_by_test_id("feed-text")).to_have_text("今年春天,有一款青团要回来了……后天直播间见!")
    expect(teaser.get_by_test_id("feed-video")).to_be_attached()
    expect(teaser.get_by_test_id("feed-session-link")).to_have_attribute("href", f"/live/{session_id}")
    assert ANSWER not in page.content()

    topic = page.locator('[data-testid="feed-post"][data-kind="topic"]')
    expect(topic).to_contain_text("大家猜猜我们今年的青团馅料是什么?")
    topic.get_by_test_id("feed-guess-input").fill("豆沙")
    topic.get_by_test_id("feed-guess-send").click()
    expect(topic.get_by_test_id("feed-my-guess")).to_have_text("你的猜测:豆沙")

    reserve = teaser.get_by_test_id("feed-reserve")
    expect(reserve).to_have_text("预约直播")
    reserve.click()
    expect(reserve).to_have_text("已预约 · 取消")
    expect(teaser.get_by_test_id("feed-reserve-count")).to_have_text("1 位邻居已预约")
    # The topic post links the same session: its button follows.
    expect(topic.get_by_test_id("feed-reserve")).to_have_text("已预约 · 取消")

    teaser.get_by_test_id("feed-comment-input").fill("期待!<b>不是粗体</b>")
    teaser.locator('[data-testid="feed-comment-form"] button').click()
    expect(teaser.get_by_test_id("feed-comments")).to_contain_text("期待!<b>不是粗体</b>")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "feed_neighbour_guess_reserve.png"), full_page=True)

    page.reload()
    expect(topic.get_by_test_id("feed-my-guess")).to_have_text("你的猜测:豆沙")
    expect(reserve).to_have_text("已预约 · 取消")
    assert ANSWER not in page.content()
    # The room agrees: the reservation is the live domain's.
    page.goto(f"{server.base_url}/live/{session_id}")
    expect(page.get_by_test_id("reserve-count")).to_have_text("1 位邻居已预约")


async def _prepare_reviews(url: str, phone: str) -> int:
    """Approved reviews of the demo's qingtuan (product 1) from two communities, a neighbour of the second,
    and an upcoming session selling it."""
    db = Database(url, pool=False)
    try:
        async with db.sessionmaker() as session:
            first, second = (await session.scalars(select(Community).order_by(Community.id).limit(2))).all()
            neighbour = User(
                phone=phone, nickname="王阿姨", is_active=True, roles=[UserRole(role="customer")]
            )
            li = User(
                phone=f"{phone[:-1]}{(int(phone[-1]) + 1) % 10}", nickname="李姐", is_active=True, roles=[]
            )
            zhao = User(
                phone=f"{phone[:-2]}99" if phone[-2:] != "99" else f"{phone[:-2]}98",
                nickname="赵叔",
                is_active=True,
                roles=[],
            )
            session.add_all([neighbour, li, zhao])
            await session.flush()
            session.add(Membership(user_id=neighbour.id, community_id=second.id, source="chosen"))
            now = utcnow()
            for order_id, user, community, text in (
                (9_000_001, li, second, "皮软馅足,孩子很爱吃"),
                (9_000_002, zhao, first, "艾草味很正"),
            ):
                session.add(
                    Review(
                        order_id=order_id,
                        product_id=1,
                        product_name="春季限定青团",
                        user_id=user.id,
                        community_id=community.id,
                        rating=5,
                        text=text,
                        status="approved",
                        created_at=now,
                    )
                )
            live_session = LiveSession(
                title="证言测试·青团",
                host=None,
                scheduled_start=now + timedelta(hours=3),
                status=SessionStatus.scheduled.value,
                lineup=[],
                communities=[],
            )
            session.add(live_session)
            await session.flush()
            session.add(
                LineupItem(
                    session_id=live_session.id,
                    product_id=1,
                    live_price_fen=2500,
                    stock=100,
                    reserved=0,
                    sold=0,
                    per_user_limit=5,
                    position=0,
                )
            )
            await session.commit()
            return live_session.id
    finally:
        await db.dispose()


def test_the_room_rolls_approved_reviews_same_community_first(phone_page: Page, server: Server) -> None:
    phone = f"135{random.randint(10_000_000, 99_999_899)}"
    with ThreadPoolExecutor(max_workers=1) as pool:
        session_id = pool.submit(
            asyncio.run, _prepare_reviews(server.env["LINLI_DATABASE_URL"], phone)
        ).result()
    page = phone_page
    login(page, server, phone, next_path=f"/live/{session_id}")
    page.goto(f"{server.base_url}/live/{session_id}")
    line = page.get_by_test_id("card-testimonial")
    # The viewer's own community first: 李姐 lives in the same community as this neighbour.
    expect(line).to_contain_text("的李姐:★★★★★ 皮软馅足,孩子很爱吃")
    # Then it rolls on to the next review.
    expect(line).to_contain_text("的赵叔:★★★★★ 艾草味很正", timeout=10_000)
    page.get_by_test_id("product-card").first.click()
    expect(page.get_by_test_id("checkout-sheet")).to_be_visible()
    expect(page.get_by_test_id("checkout-testimonial")).to_contain_text("邻居说")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "room_testimonials.png"), full_page=False)
