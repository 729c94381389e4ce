"""The admin console pages for live sessions, driven as a browser would post its forms."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import httpx
from PIL import Image
from sqlalchemy import select

from linli.core.db import Database
from linli.live.models import LineupItem, LiveSession, SessionStatus
from tests.factories import Caller
from tests.live.conftest import count_rows
from tests.live.factories import make_community, make_host, make_lineup_item, make_product, make_session

PAGES = "/admin/sessions"


async def _sessions(db: Database) -> list[LiveSession]:
    async with db.sessionmaker() as session:
        return list((await session.scalars(select(LiveSession).order_by(LiveSession.id))).all())


async def test_list_renders_in_chinese_with_badges_search_and_tabs(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    async with db.sessionmaker() as session:
        await make_session(
            session, title="春日青团节", status=SessionStatus.live, host=await make_host(session)
        )
        await make_session(session, title="端午粽子专场")
        await make_session(session, title="中秋月饼专场", archived=True)
        await session.commit()
    page = await client.get(PAGES, headers=operator.headers)
    assert page.status_code == 200
    html = page.text
    assert "<title>直播场次" in html
    assert "春日青团节" in html
    assert "端午粽子专场" in html
    assert "中秋月饼专场" not in html
    assert '<span class="badge badge-live" data-testid="status-badge">直播中</span>' in html
    assert '<span class="badge badge-draft" data-testid="status-badge">草稿</span>' in html
    assert 'href="/admin/sessions"' in html  # the side menu entry

    searched = (await client.get(PAGES, params={"q": "青团"}, headers=operator.headers)).text
    assert "春日青团节" in searched
    assert "端午粽子专场" not in searched
    drafts = (await client.get(PAGES, params={"status": "draft"}, headers=operator.headers)).text
    assert "端午粽子专场" in drafts
    assert "春日青团节" not in drafts
    archived = (await client.get(PAGES, params={"archived": "1"}, headers=operator.headers)).text
    assert "中秋月饼专场" in archived
    assert "春日青团节" not in archived

    english = (await client.get(PAGES, params={"lang": "en"}, headers=operator.headers)).text
    assert "Live sessions" in english
    assert ">Live</span>" in english


async def test_create_form_works(client: httpx.AsyncClient, db: Database, operator: Caller) -> None:
    async with db.sessionmaker() as session:
        host = await make_host(session, nickname="主播小麦")
        community = await make_community(session, name="春江花园")
        await make_community(session, name="翠湖天地")
        await session.commit()
    form = await client.get(f"{PAGES}/new", headers=operator.headers)
    assert form.status_code == 200
    assert "新建直播" in form.text
    assert "主播小麦" in form.text
    assert "春江花园" in form.text

    response = await client.post(
        f"{PAGES}/new",
        data={
            "title": "春日青团节",
            "scheduled_start": "2026-12-01T10:00",
            "host_id": str(host.id),
            "playback_url": "https://cdn.example/live.m3u8",
            "push_url": "",
            "description": "中央厨房现场",
            "community_ids": [str(community.id)],
        },
        headers=operator.headers,
    )
    assert response.status_code == 303, response.text
    [created] = await _sessions(db)
    assert response.headers["location"] == f"{PAGES}/{created.id}"
    assert created.title == "春日青团节"
    assert created.scheduled_start == datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # typed in Shanghai time
    assert created.host_id == host.id
    async with db.sessionmaker() as session:
        loaded = await session.get(LiveSession, created.id)
        assert loaded is not None
        assert [c.community_id for c in loaded.communities] == [community.id]

    detail = await client.get(response.headers["location"], headers=operator.headers)
    assert detail.status_code == 200
    assert "直播场次已创建" in detail.text
    assert "12-01 10:00" in detail.text
    assert "春江花园" in detail.text
    assert 'data-testid="transition-scheduled"' in detail.text


async def test_a_bad_create_form_comes_back_with_messages_and_writes_nothing(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    before = await count_rows(db)
    response = await client.post(
        f"{PAGES}/new",
        data={"title": "长" * 61, "scheduled_start": "2026-12-01T10:00", "push_url": "ftp://x.example/y"},
        headers=operator.headers,
    )
    assert response.status_code == 422
    assert 'data-testid="error-title"' in response.text
    assert "最多 60 个字" in response.text
    assert 'data-testid="error-push_url"' in response.text
    assert "长" * 61 in response.text  # what was typed is kept
    unknown = await client.post(
        f"{PAGES}/new",
        data={"title": "春日青团节", "scheduled_start": "2026-12-01T10:00", "community_ids": ["987654"]},
        headers=operator.headers,
    )
    assert unknown.status_code == 422
    assert "no community with id 987654" in unknown.text
    assert await count_rows(db) == before


async def test_session_page_lineup_forms_and_buttons(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    async with db.sessionmaker() as session:
        live_session = await make_session(session, title="春日青团节", host=await make_host(session))
        qingtuan = await make_product(session, name="春季限定青团", store_price_fen=3000)
        await make_product(session, name="艾草青团礼盒", store_price_fen=6800)
        await session.commit()
    url = f"{PAGES}/{live_session.id}"
    page = await client.get(url, headers=operator.headers)
    assert page.status_code == 200
    assert "商品清单" in page.text
    assert "还没有商品" in page.text
    assert "春季限定青团(¥30)" in page.text

    # above the store price: refused next to the field, nothing written
    before = await count_rows(db)
    refused = await client.post(
        f"{url}/lineup",
        data={
            "product_id": str(qingtuan.id),
            "live_price_fen": "30.01",
            "stock": "5000",
            "per_user_limit": "10",
        },
        headers=operator.headers,
    )
    assert refused.status_code == 422
    assert 'data-testid="error-live_price_fen"' in refused.text
    assert "store price ¥30" in refused.text
    assert await count_rows(db) == before

    added = await client.post(
        f"{url}/lineup",
        data={
            "product_id": str(qingtuan.id),
            "live_price_fen": "25",
            "stock": "5000",
            "per_user_limit": "10",
        },
        headers=operator.headers,
    )
    assert added.status_code == 303
    async with db.sessionmaker() as session:
        item = await session.scalar(select(LineupItem))
        assert item is not None
    assert (item.live_price_fen, item.stock, item.per_user_limit) == (2500, 5000, 10)
    page = (await client.get(url, headers=operator.headers)).text
    assert '<span class="price-live">¥25</span>' in page
    assert '<span class="price-store">¥30</span>' in page
    assert '<td class="num" data-testid="left">5000</td>' in page

    # edit: stock under what is committed is refused
    async with db.sessionmaker() as session:
        row = await session.get(LineupItem, item.id)
        assert row is not None
        row.sold = 200
        await session.commit()
    edit_url = f"{url}/lineup/{item.id}/edit"
    assert "编辑商品:春季限定青团" in (await client.get(edit_url, headers=operator.headers)).text
    low = await client.post(
        edit_url,
        data={"live_price_fen": "25", "stock": "199", "per_user_limit": "10"},
        headers=operator.headers,
    )
    assert low.status_code == 422
    assert "already committed" in low.text
    ok = await client.post(
        edit_url,
        data={"live_price_fen": "24.5", "stock": "4000", "per_user_limit": "5", "sale_ends_at": ""},
        headers=operator.headers,
    )
    assert ok.status_code == 303
    async with db.sessionmaker() as session:
        row = await session.get(LineupItem, item.id)
        assert row is not None
        assert (row.live_price_fen, row.stock, row.per_user_limit) == (2450, 4000, 5)

    # transitions: schedule, then a forbidden one comes back as a message
    scheduled = await client.post(f"{url}/transition", data={"to": "scheduled"}, headers=operator.headers)
    assert scheduled.status_code == 303
    ended = await client.post(f"{url}/transition", data={"to": "ended"}, headers=operator.headers)
    assert ended.status_code == 303
    shown = await client.get(url, headers=operator.headers)
    assert "a scheduled session cannot become ended" in shown.text
    assert (await _sessions(db))[0].status == "scheduled"

    # removing an item that sold something archives it
    removed = await client.post(f"{url}/lineup/{item.id}/remove", headers=operator.headers)
    assert removed.status_code == 303
    async with db.sessionmaker() as session:
        row = await session.get(LineupItem, item.id)
        assert row is not None
        assert row.archived_at is not None


async def test_cover_upload_checks_the_image(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    async with db.sessionmaker() as session:
        live_session = await make_session(session)
        await session.commit()
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 80, 20)).save(buffer, format="PNG")
    api = f"/api/v1/admin/sessions/{live_session.id}/cover"
    bad = await client.post(
        api, files={"file": ("x.png", b"not an image", "image/png")}, headers=operator.headers
    )
    assert bad.status_code == 415
    assert (await _sessions(db))[0].cover_path is None
    good = await client.post(
        api, files={"file": ("c.png", buffer.getvalue(), "image/png")}, headers=operator.headers
    )
    assert good.status_code == 200, good.text
    assert good.json()["cover_url"].startswith("/media/sessions/")
    page = await client.post(
        f"{PAGES}/{live_session.id}/cover",
        files={"file": ("x.gif", b"GIF89a", "image/gif")},
        headers=operator.headers,
    )
    assert page.status_code == 303
    shown = await client.get(f"{PAGES}/{live_session.id}", headers=operator.headers)
    assert 'data-testid="cover"' in shown.text
    assert "flash-error" in shown.text


async def test_pages_need_an_operator(client: httpx.AsyncClient, db: Database, customer: Caller) -> None:
    async with db.sessionmaker() as session:
        live_session = await make_session(session)
        item = await make_lineup_item(session, live_session=live_session)
        await session.commit()
    before = await count_rows(db)
    for path in (PAGES, f"{PAGES}/new", f"{PAGES}/{live_session.id}"):
        anonymous = await client.get(path)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"].startswith("/login?next=")
        refused = await client.get(path, headers=customer.headers | {"accept": "text/html"})
        assert refused.status_code == 403
    for path in (
        f"{PAGES}/new",
        f"{PAGES}/{live_session.id}/transition",
        f"{PAGES}/{live_session.id}/lineup/{item.id}/remove",
    ):
        refused = await client.post(path, data={"title": "x", "to": "scheduled"}, headers=customer.headers)
        assert refused.status_code == 403
    assert await count_rows(db) == before


async def test_editing_a_live_session_shows_what_is_fixed(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    async with db.sessionmaker() as session:
        host = await make_host(session, nickname="主播小麦")
        community = await make_community(session, name="春江花园")
        live_session = await make_session(
            session, title="春日青团节", status=SessionStatus.live, host=host, community_ids=(community.id,)
        )
        await session.commit()
    edit_url = f"{PAGES}/{live_session.id}/edit"
    form = (await client.get(edit_url, headers=operator.headers)).text
    assert "开播后不能再修改" in form
    assert 'name="scheduled_start"' not in form
    assert 'name="community_ids"' not in form
    assert "主播小麦" in form
    assert "春江花园" in form
    saved = await client.post(
        edit_url,
        data={"title": "春日青团节·返场", "playback_url": "https://cdn.example/b.m3u8", "description": ""},
        headers=operator.headers,
    )
    assert saved.status_code == 303
    [row] = await _sessions(db)
    assert row.title == "春日青团节·返场"
    assert row.host_id == host.id
    assert row.scheduled_start == live_session.scheduled_start
    async with db.sessionmaker() as session:
        loaded = await session.get(LiveSession, live_session.id)
        assert loaded is not None
        assert [c.community_id for c in loaded.communities] == [community.id]
