"""The login, profile and admin pages, driven the way a browser would: forms, cookies, redirects."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from linli.core.config import Settings
from linli.core.db import Database
from linli.core.runtime import Runtime
from linli.identity.models import Role, User
from linli.identity.senders import last_code_sent
from linli.identity.tokens import SESSION_COOKIE
from tests.factories import make_user, make_user_with_token
from tests.identity.flows import events_of, request_code, session_cookie

HTML = {"Accept": "text/html"}


async def form_login(
    client: httpx.AsyncClient, runtime: Runtime, phone: str, *, next_path: str = "/me"
) -> httpx.Response:
    assert (await request_code(client, phone)).status_code == 201
    return await client.post(
        "/login",
        data={"phone": phone, "code": last_code_sent(runtime, phone), "next": next_path, "action": "login"},
        headers=HTML,
    )


async def test_the_login_page_speaks_chinese_then_english(client: httpx.AsyncClient) -> None:
    zh = await client.get("/login?next=/me", headers=HTML)
    assert zh.status_code == 200
    assert "手机号登录" in zh.text
    assert "获取验证码" in zh.text
    assert 'name="next" value="/me"' in zh.text
    assert "/static/js/login.js" in zh.text
    # The memory sender is not a demo sender: no "look in the terminal" hint.
    assert "终端" not in zh.text

    en = await client.get("/login?lang=en", headers=HTML)
    assert "Get code" in en.text
    assert "Log in with your phone" in en.text
    assert 'lang="en"' in en.text


async def test_the_login_page_tells_demo_users_where_codes_go(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    settings.login_code_sender = "console"
    assert "验证码不会真的发短信" in (await client.get("/login")).text


async def test_form_login_sets_a_safe_cookie_and_the_profile_shows_the_user(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    response = await form_login(client, runtime, "13500000001", next_path="/me")

    assert response.status_code == 303
    assert response.headers["location"] == "/me"
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in set_cookie
    assert "SameSite=lax" in set_cookie
    assert "Max-Age=2592000" in set_cookie
    assert "Path=/" in set_cookie
    assert "Secure" not in set_cookie

    me = await client.get("/me", headers=HTML)
    assert me.status_code == 200
    assert 'data-testid="me-name">邻居0001<' in me.text
    assert "135****0001" in me.text
    assert "顾客" in me.text
    assert 'data-testid="current-user">邻居0001<' in me.text
    en = await client.get("/me?lang=en", headers=HTML)
    assert "Customer" in en.text
    assert "Nickname" in en.text


async def test_secure_cookies_when_configured(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings
) -> None:
    settings.secure_cookies = True
    response = await form_login(client, runtime, "13500000001")
    assert "Secure" in response.headers["set-cookie"]


async def test_the_send_code_button_works_without_javascript(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    response = await client.post(
        "/login", data={"phone": "135 0000 0002", "action": "send_code", "next": "/me"}, headers=HTML
    )

    assert response.status_code == 200
    assert "验证码已发送" in response.text
    assert 'value="13500000002"' in response.text
    assert 'data-cooldown="60"' in response.text
    assert len(last_code_sent(runtime, "13500000002")) == 6

    again = await client.post("/login", data={"phone": "13500000002", "action": "send_code"}, headers=HTML)
    assert again.status_code == 429
    assert again.headers["retry-after"] == "30"
    assert "操作太频繁,请 30 秒后再试" in again.text


async def test_a_wrong_code_rerenders_the_form_with_the_reason(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    await request_code(client, "13500000003")
    code = last_code_sent(runtime, "13500000003")
    bad = f"{(int(code) + 1) % 1_000_000:06d}"

    response = await client.post(
        "/login", data={"phone": "13500000003", "code": bad, "next": "/me"}, headers=HTML
    )

    assert response.status_code == 400
    assert "验证码不正确,还可以再试 4 次" in response.text
    assert 'value="13500000003"' in response.text
    assert 'name="next" value="/me"' in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")

    en = await client.post("/login?lang=en", data={"phone": "13500000003", "code": bad}, headers=HTML)
    assert "Wrong code; 3 tries left" in en.text

    invalid = await client.post("/login?lang=zh-CN", data={"phone": "12345", "code": code}, headers=HTML)
    assert invalid.status_code == 422
    assert "请输入正确的 11 位大陆手机号" in invalid.text

    async with db.sessionmaker() as session:
        assert (await session.scalar(select(User))) is None


async def test_open_redirects_land_on_home(client: httpx.AsyncClient, runtime: Runtime) -> None:
    attempts = [
        "//evil.com",
        "https://evil.com/x",
        "/\\evil.com",
        "\\\\evil.com",
        "/\t/evil.com",
        "http:evil",
    ]
    for n, target in enumerate(attempts):
        client.cookies.clear()
        response = await form_login(client, runtime, f"1350000010{n}", next_path=target)
        assert response.status_code == 303, target
        assert response.headers["location"] == "/", target

    # Already logged in, the login page forwards — still only on-site.
    response = await client.get("/login", params={"next": "//evil.com"}, headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    response = await client.get("/login", params={"next": "/me"}, headers=HTML)
    assert response.headers["location"] == "/me"


async def test_an_anonymous_visitor_is_sent_to_login_and_back(client: httpx.AsyncClient) -> None:
    response = await client.get("/me?tab=orders", headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fme%3Ftab%3Dorders"


async def test_a_tampered_cookie_is_anonymous(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings
) -> None:
    await form_login(client, runtime, "13500000004")
    cookie = client.cookies[SESSION_COOKIE]
    token = cookie.split(".")[0]
    client.cookies.clear()

    flipped = ("A" if cookie[0] != "A" else "B") + cookie[1:]
    for value in (flipped, token, cookie + "x", "garbage", session_cookie(settings, "forged-token")):
        client.cookies.set(SESSION_COOKIE, value)
        assert (await client.get("/api/v1/me")).status_code == 401, value
        page = await client.get("/me", headers=HTML)
        assert page.status_code == 303, value
        assert page.headers["location"].startswith("/login")
    client.cookies.set(SESSION_COOKIE, cookie)
    assert (await client.get("/api/v1/me")).status_code == 200


async def test_logout_revokes_the_cookie_and_goes_home(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    await form_login(client, runtime, "13500000005")
    cookie = client.cookies[SESSION_COOKIE]

    response = await client.post("/logout", headers=HTML)

    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert re.search(rf'{SESSION_COOKIE}="?"?;.*Max-Age=0', response.headers["set-cookie"])
    assert SESSION_COOKIE not in client.cookies
    # The old cookie no longer works even if someone kept it.
    client.cookies.set(SESSION_COOKIE, cookie)
    assert (await client.get("/api/v1/me")).status_code == 401
    assert (await client.get("/me", headers=HTML)).status_code == 303
    assert len(await events_of(db, "identity.logged_out")) == 1
    # Logging out again is harmless.
    assert (await client.post("/logout", headers=HTML)).status_code == 303


async def test_the_profile_form_changes_the_nickname(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    await form_login(client, runtime, "13500000006")

    response = await client.post("/me", data={"nickname": "青团控"}, headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"] == "/me?saved=1"
    page = await client.get("/me?saved=1", headers=HTML)
    assert 'data-testid="me-name">青团控<' in page.text
    assert "已保存" in page.text

    bad = await client.post("/me", data={"nickname": "邻" * 21}, headers=HTML)
    assert bad.status_code == 422
    assert "昵称需要 1–20 个字" in bad.text
    async with db.sessionmaker() as session:
        assert (await session.scalar(select(User.nickname))) == "青团控"


async def operator_cookie(client: httpx.AsyncClient, db: Database, settings: Settings) -> User:
    operator, token = await make_user_with_token(db, roles=(Role.operator,), nickname="运营小王")
    client.cookies.set(SESSION_COOKIE, session_cookie(settings, token))
    return operator


async def test_the_admin_users_page_is_for_operators(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    anonymous = await client.get("/admin/users", headers=HTML)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=%2Fadmin%2Fusers"

    _, token = await make_user_with_token(db)
    client.cookies.set(SESSION_COOKIE, session_cookie(settings, token))
    customer = await client.get("/admin/users", headers=HTML)
    assert customer.status_code == 403
    assert "this page needs the operator role" in customer.text
    assert 'data-testid="error-detail"' in customer.text


async def test_operators_search_and_change_roles_on_the_admin_page(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    operator = await operator_cookie(client, db, settings)
    async with db.sessionmaker() as session:
        ahua = await make_user(session, phone="13512340000", nickname="阿花")
        await make_user(session, phone="13598760000", nickname="老李")
        await session.commit()

    page = await client.get("/admin/users", headers=HTML)
    assert page.status_code == 200
    assert "用户与角色" in page.text
    assert 'href="/admin/users"' in page.text
    assert "共 3 人" in page.text
    found = await client.get("/admin/users", params={"q": "阿花"}, headers=HTML)
    assert "阿花" in found.text
    assert "老李" not in found.text
    assert "共 1 人" in found.text

    changed = await client.post(
        f"/admin/users/{ahua.id}/roles",
        data={"roles": ["leader", "host"], "q": "阿花", "page": "1"},
        headers=HTML,
    )
    assert changed.status_code == 303
    assert changed.headers["location"] == f"/admin/users?q=%E9%98%BF%E8%8A%B1&page=1&saved={ahua.id}"
    shown = await client.get(changed.headers["location"], headers=HTML)
    assert f"已更新用户 {ahua.id} 的角色" in shown.text
    async with db.sessionmaker() as session:
        reloaded = (await session.execute(select(User).where(User.id == ahua.id))).scalar_one()
    assert reloaded.role_names == {"customer", "host", "leader"}

    own = await client.post(f"/admin/users/{operator.id}/roles", data={"roles": ["host"]}, headers=HTML)
    assert own.status_code == 409
    assert "不能移除你自己的运营角色" in own.text
    assert 'data-testid="current-user">运营小王<' in own.text


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
async def test_the_admin_page_pages(
    client: httpx.AsyncClient, db: Database, settings: Settings, lang: str
) -> None:
    await operator_cookie(client, db, settings)
    async with db.sessionmaker() as session:
        for _ in range(20):
            await make_user(session)
        await session.commit()

    first = await client.get(f"/admin/users?lang={lang}", headers=HTML)
    second = await client.get("/admin/users?page=2", headers=HTML)

    assert first.text.count("data-user-id=") == 20
    assert second.text.count("data-user-id=") == 1
    assert 'rel="next"' in first.text
    assert 'rel="prev"' in second.text
    assert ("第 1 / 2 页" if lang == "zh-CN" else "Page 1 of 2") in first.text
