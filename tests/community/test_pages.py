"""Admin pages for stores, communities and pickup points, driven as a browser would."""

from __future__ import annotations

import re

import httpx
import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import select

from linli.community.models import Community, PickupPoint, Store
from linli.core.config import Settings
from linli.core.db import Database
from linli.core.events import Event
from linli.identity.models import Role
from linli.identity.tokens import SESSION_COOKIE
from tests.catalog.factories import count_rows
from tests.community.factories import make_community, make_pickup_point
from tests.factories import Caller, make_user

ORIGIN = {"Origin": "http://testserver"}


@pytest.fixture
def browser(client: httpx.AsyncClient, settings: Settings, operator: Caller) -> httpx.AsyncClient:
    cookie = URLSafeSerializer(settings.resolved_secret_key(), salt="linli.session").dumps(operator.token)
    client.cookies.set(SESSION_COOKIE, cookie)
    client.headers["Accept"] = "text/html"
    return client


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def field_error(html: str, field: str) -> str | None:
    found = re.search(rf'data-testid="error-{field}">([^<]*)<', html)
    return found.group(1) if found else None


async def test_store_list_and_create(browser: httpx.AsyncClient, db: Database) -> None:
    page = text_of((await browser.get("/admin/stores")).text)
    assert "门店" in page
    assert "还没有记录" in page
    assert "新建门店" in page
    response = await browser.post(
        "/admin/stores/new",
        data={
            "name": "静安店",
            "district": "静安区",
            "address": "南京西路 100 号",
            "phone": "021-60000000",
            "opening_hours": "",
        },
        headers=ORIGIN,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/stores"
    listed = text_of((await browser.get("/admin/stores")).text)
    assert "门店已创建" in listed
    assert "静安店" in listed
    assert "南京西路 100 号" in listed


async def test_bad_store_form_keeps_input_and_writes_nothing(
    browser: httpx.AsyncClient, db: Database
) -> None:
    response = await browser.post(
        "/admin/stores/new",
        data={"name": "静安店", "address": "", "phone": "打电话给我"},
        headers=ORIGIN,
    )
    assert response.status_code == 422
    assert field_error(response.text, "address") == "请填写此项"
    response = await browser.post(
        "/admin/stores/new",
        data={"name": "静安店", "address": "南京西路", "phone": "打电话给我"},
        headers=ORIGIN,
    )
    assert response.status_code == 422
    assert field_error(response.text, "phone") == "格式不正确"
    assert 'value="打电话给我"' in response.text
    assert "请修改标红的内容后再保存" in response.text
    assert await count_rows(db, Store, Event) == {"stores": 0, "events": 0}


async def test_community_edit_page_lists_its_pickup_points(browser: httpx.AsyncClient, db: Database) -> None:
    async with db.sessionmaker() as session:
        leader = await make_user(session, nickname="张团长", roles=(Role.leader,))
        community = await make_community(session, name="梧桐苑")
        await make_pickup_point(session, community=community, name="1 号门岗", leader_id=leader.id)
        await make_pickup_point(session, community=community, name="旧门岗", archived=True)
        await session.commit()
    listed = text_of((await browser.get("/admin/communities")).text)
    assert "社区" in listed
    assert "梧桐苑" in listed
    assert "自提点数" in listed
    page = await browser.get(f"/admin/communities/{community.id}/edit")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "编辑社区" in text
    assert "1 号门岗" in text
    assert "张团长" in text
    assert "旧门岗" in text
    assert "已归档" in text
    assert f'href="/admin/pickup-points/new?community_id={community.id}"' in page.text


async def test_new_community_then_its_pickup_point_with_a_leader(
    browser: httpx.AsyncClient, db: Database
) -> None:
    async with db.sessionmaker() as session:
        leader = await make_user(session, nickname="张团长", roles=(Role.leader,))
        customer = await make_user(session, nickname="李姐")
        await session.commit()
    created = await browser.post(
        "/admin/communities/new",
        data={"name": "梧桐苑", "district": "徐汇区", "address": "梧桐路 88 弄"},
        headers=ORIGIN,
    )
    assert created.status_code == 303
    async with db.sessionmaker() as session:
        [community] = (await session.scalars(select(Community))).all()
    assert created.headers["location"] == f"/admin/communities/{community.id}/edit"

    form = await browser.get(f"/admin/pickup-points/new?community_id={community.id}")
    assert f'<option value="{community.id}" selected>' in form.text
    # Only leaders are offered.
    assert f'<option value="{leader.id}"' in form.text
    assert f'<option value="{customer.id}"' not in form.text

    saved = await browser.post(
        "/admin/pickup-points/new",
        data={
            "community_id": str(community.id),
            "name": "1 号门岗",
            "address": "梧桐路 88 弄 1 号",
            "opening_hours": "08:00–20:00",
            "leader_id": str(leader.id),
        },
        headers=ORIGIN,
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/admin/communities/{community.id}/edit"
    page = text_of((await browser.get(saved.headers["location"])).text)
    assert "自提点已创建" in page
    assert "1 号门岗" in page
    assert "张团长" in page


async def test_pickup_point_form_errors_from_the_service(browser: httpx.AsyncClient, db: Database) -> None:
    async with db.sessionmaker() as session:
        customer = await make_user(session, nickname="李姐")
        community = await make_community(session, name="梧桐苑")
        await session.commit()
    # A hand-made post with a non-leader (the select would not offer one) and then an unknown community.
    response = await browser.post(
        "/admin/pickup-points/new",
        data={
            "community_id": str(community.id),
            "name": "门岗",
            "address": "梧桐路",
            "leader_id": str(customer.id),
        },
        headers=ORIGIN,
    )
    assert response.status_code == 422
    assert "does not hold the leader role" in (field_error(response.text, "leader_id") or "")
    response = await browser.post(
        "/admin/pickup-points/new",
        data={"community_id": "999", "name": "门岗", "address": "梧桐路", "leader_id": ""},
        headers=ORIGIN,
    )
    assert response.status_code == 422
    assert field_error(response.text, "community_id") == "community 999 does not exist"
    assert await count_rows(db, PickupPoint, Event) == {"pickup_points": 0, "events": 0}


async def test_pickup_point_list_and_archive(browser: httpx.AsyncClient, db: Database) -> None:
    async with db.sessionmaker() as session:
        community = await make_community(session, name="梧桐苑")
        point = await make_pickup_point(session, community=community, name="1 号门岗")
        await session.commit()
    listed = text_of((await browser.get("/admin/pickup-points")).text)
    assert "1 号门岗" in listed
    assert "梧桐苑" in listed
    assert "所属社区" in listed
    edit_url = f"/admin/communities/{community.id}/edit"
    response = await browser.post(
        f"/admin/pickup-points/{point.id}/archive", data={"next": edit_url}, headers=ORIGIN
    )
    assert response.status_code == 303
    assert response.headers["location"] == edit_url
    assert "自提点已归档" in (await browser.get(edit_url)).text
    async with db.sessionmaker() as session:
        reread = await session.get(PickupPoint, point.id)
        assert reread is not None
        assert reread.archived_at is not None
    assert "1 号门岗" not in text_of((await browser.get("/admin/pickup-points")).text)


async def test_pages_need_an_operator(client: httpx.AsyncClient, customer: Caller) -> None:
    for path in ("/admin/stores", "/admin/communities/new", "/admin/pickup-points"):
        anonymous = await client.get(path, headers={"Accept": "text/html"})
        assert anonymous.status_code == 303
        assert anonymous.headers["location"].startswith("/login")
        refused = await client.get(path, headers={**customer.headers, "Accept": "text/html"})
        assert refused.status_code == 403


async def test_saving_untouched_form_keeps_a_leader_who_lost_the_role(
    browser: httpx.AsyncClient, db: Database
) -> None:
    """The select offers the stored value even when it is no longer a choice, so nothing changes silently."""
    async with db.sessionmaker() as session:
        former = await make_user(session, nickname="前团长")  # no leader role (any more)
        community = await make_community(session, name="枫林小区", archived=True)
        point = await make_pickup_point(session, community=community, leader_id=former.id)
        await session.commit()
    url = f"/admin/pickup-points/{point.id}/edit"
    form = await browser.get(url)
    assert f'<option value="{former.id}" selected>#{former.id}</option>' in form.text
    assert f'<option value="{community.id}" selected>枫林小区(徐汇区)(已归档)</option>' in form.text
    saved = await browser.post(
        url,
        data={
            "community_id": str(community.id),
            "name": "1 号门岗(新)",
            "address": point.address,
            "opening_hours": point.opening_hours,
            "leader_id": str(former.id),
        },
        headers=ORIGIN,
    )
    assert saved.status_code == 303
    async with db.sessionmaker() as session:
        reread = await session.get(PickupPoint, point.id)
        assert reread is not None
        assert (reread.name, reread.leader_id, reread.community_id) == (
            "1 号门岗(新)",
            former.id,
            community.id,
        )
