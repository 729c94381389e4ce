"""The host console's most-asked questions in a real browser: three neighbours ask whether the qingtuan is
still there in their own words, one asks something else; the host sees the first question on top with
"3 人问过", answers it from the panel, and a neighbour's phone shows the answer under that question."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from playwright.sync_api import Page, expect
from sqlalchemy import select

from linli.core.clock import utcnow
from linli.core.db import Database
from linli.identity.models import User, UserRole
from linli.live.models import Comment, LiveSession, SessionStatus
from tests.browser.conftest import Server, login

HOST = "13900000002"
ASKED = [
    ("13700000101", "梧桐苑李姐", "青团还有吗？"),
    ("13700000102", "梧桐苑张哥", "请问青团还有货吗"),
    ("13700000103", "梧桐苑王阿姨", "主播，青团还有吗～"),
    ("13700000104", "梧桐苑小陈", "几点发货"),
]


async def _seed(url: str) -> int:
    db = Database(url, pool=False)
    try:
        async with db.sessionmaker() as session:
            host = await session.scalar(select(User).where(User.phone == HOST))
            assert host is not None
            now = utcnow()
            live = LiveSession(
                title="提问测试",
                host_id=host.id,
                scheduled_start=now + timedelta(hours=1),
                status=SessionStatus.scheduled.value,
                lineup=[],
                communities=[],
            )
            session.add(live)
            await session.flush()
            for i, (phone, name, text) in enumerate(ASKED):
                user = await session.scalar(select(User).where(User.phone == phone))
                if user is None:
                    user = User(phone=phone, nickname=name, is_active=True)
                    user.roles = [UserRole(role="customer")]
                    session.add(user)
                    await session.flush()
                session.add(
                    Comment(
                        session_id=live.id, user_id=user.id, text=text, created_at=now + timedelta(seconds=i)
                    )
                )
            await session.commit()
            return live.id
    finally:
        await db.dispose()


def seed_questions(server: Server) -> int:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _seed(server.env["LINLI_DATABASE_URL"])).result()


def test_host_answers_the_most_asked_question(phone_page: Page, desktop_page: Page, server: Server) -> None:
    session_id = seed_questions(server)
    host = desktop_page
    login(host, server, HOST, next_path=f"/host/{session_id}")
    questions = host.get_by_test_id("question")
    expect(questions).to_have_count(2)
    top = questions.first
    expect(top).to_contain_text("青团还有吗？")
    expect(top).to_contain_text("3 人问过")
    expect(top).to_contain_text("梧桐苑李姐 先问")
    expect(questions.nth(1)).to_contain_text("几点发货")
    expect(host.get_by_test_id("questions-empty")).to_be_hidden()

    top.get_by_test_id("answer").click()
    expect(host.get_by_test_id("answering")).to_contain_text("青团还有吗？")
    host.get_by_test_id("answer-input").fill("还有两百份，放心拍！")
    host.get_by_test_id("answer-send").click()
    expect(host.get_by_test_id("answer-form")).to_be_hidden()
    # Answered questions sink below the open ones.
    expect(questions.first).to_contain_text("几点发货")
    expect(questions.nth(1)).to_have_class("hcq-item is-answered")

    neighbour = phone_page
    neighbour.goto(f"{server.base_url}/live/{session_id}")
    answer = neighbour.locator("[data-testid=comment].is-reply")
    expect(answer).to_contain_text("@梧桐苑李姐 还有两百份，放心拍！")
    expect(answer.locator("q")).to_have_text("青团还有吗？")
