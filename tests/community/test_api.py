"""Operators' API for stores, communities and pickup points; neighbours' community list."""

from __future__ import annotations

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select

from linli.community import api as community_api
from linli.community.models import Community, Membership, PickupPoint, Store
from linli.core.db import Database
from linli.core.events import Event
from linli.identity.models import Role
from tests.catalog.factories import count_rows
from tests.community.factories import make_community, make_pickup_point, make_store
from tests.factories import Caller, make_user

STORES = "/api/v1/admin/stores"
COMMUNITIES = "/api/v1/admin/communities"
POINTS = "/api/v1/admin/pickup-points"
EVERYTHING = (Store, Community, PickupPoint, Membership, Event)


async def make_leader(
    db: Database, *, nickname: str = "张团长", roles: tuple[Role, ...] = (Role.leader,)
) -> int:
    async with db.sessionmaker() as session:
        user = await make_user(session, nickname=nickname, roles=roles)
        await session.commit()
        return user.id


async def event_types(db: Database) -> list[str]:
    async with db.sessionmaker() as session:
        return list((await session.scalars(select(Event.type).order_by(Event.id))).all())


class TestStores:
    async def test_round_trip(self, client: httpx.AsyncClient, db: Database, operator: Caller) -> None:
        body = {
            "name": " 麦香邻里·静安店 ",
            "address": "南京西路 100 号",
            "district": "静安区",
            "phone": "021-6000 0000",
            "opening_hours": "07:00–21:00",
        }
        created = await client.post(STORES, json=body, headers=operator.headers)
        assert created.status_code == 201, created.text
        store = created.json()
        assert store["name"] == "麦香邻里·静安店"
        assert store["phone"] == "021-6000 0000"
        patched = await client.patch(
            f"{STORES}/{store['id']}", json={"opening_hours": "06:30–22:00"}, headers=operator.headers
        )
        assert patched.json()["opening_hours"] == "06:30–22:00"
        assert (
            await client.get(f"{STORES}/{store['id']}", headers=operator.headers)
        ).json() == patched.json()
        await client.post(f"{STORES}/{store['id']}/archive", headers=operator.headers)
        assert (await client.get(STORES, headers=operator.headers)).json()["total"] == 0
        listed = (
            await client.get(STORES, params={"include_archived": True}, headers=operator.headers)
        ).json()
        assert [s["id"] for s in listed["items"]] == [store["id"]]
        await client.post(f"{STORES}/{store['id']}/unarchive", headers=operator.headers)
        assert await event_types(db) == [
            "community.store_created",
            "community.store_updated",
            "community.store_archived",
            "community.store_unarchived",
        ]

    @pytest.mark.parametrize(
        ("body", "detail"),
        [
            ({"name": "店", "address": "路", "phone": "call me"}, "phone: String should match pattern"),
            ({"name": "店" * 61, "address": "路"}, "name: String should have at most 60 characters"),
            ({"name": "店", "address": ""}, "address: String should have at least 1 character"),
            ({"name": "店\n二号", "address": "路"}, "name: Text may not contain control characters"),
            ({"address": "路"}, "name: Field required"),
        ],
    )
    async def test_bad_input_writes_nothing(
        self, client: httpx.AsyncClient, db: Database, operator: Caller, body: dict, detail: str
    ) -> None:
        response = await client.post(STORES, json=body, headers=operator.headers)
        assert response.status_code == 422
        assert detail in response.json()["detail"]
        assert await count_rows(db, *EVERYTHING) == dict.fromkeys(
            ("stores", "communities", "pickup_points", "memberships", "events"), 0
        )

    async def test_search_and_pages(self, client: httpx.AsyncClient, db: Database, operator: Caller) -> None:
        async with db.sessionmaker() as session:
            for i in range(12):
                await make_store(session, name=f"门店 {i:02d}", address=f"长宁路 {i} 号")
            await make_store(session, name="徐汇旗舰店", address="天钥桥路 1 号")
            await session.commit()
        page = (await client.get(STORES, params={"limit": 5, "offset": 10}, headers=operator.headers)).json()
        assert page["total"] == 13
        assert [s["name"] for s in page["items"]] == ["门店 02", "门店 01", "门店 00"]
        by_address = (await client.get(STORES, params={"q": "天钥桥"}, headers=operator.headers)).json()
        assert [s["name"] for s in by_address["items"]] == ["徐汇旗舰店"]


class TestCommunities:
    async def test_round_trip_with_pickup_points(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        created = await client.post(
            COMMUNITIES,
            json={"name": "梧桐苑", "address": "梧桐路 88 弄", "district": "徐汇区"},
            headers=operator.headers,
        )
        assert created.status_code == 201, created.text
        community = created.json()
        assert community["pickup_points"] == []
        leader_id = await make_leader(db)
        point = await client.post(
            POINTS,
            json={
                "community_id": community["id"],
                "name": "1 号门岗",
                "address": "梧桐路 88 弄 1 号",
                "opening_hours": "08:00–20:00",
                "leader_id": leader_id,
            },
            headers=operator.headers,
        )
        assert point.status_code == 201, point.text
        assert point.json()["leader_name"] == "张团长"
        assert point.json()["community_name"] == "梧桐苑"
        reread = (await client.get(f"{COMMUNITIES}/{community['id']}", headers=operator.headers)).json()
        assert [p["name"] for p in reread["pickup_points"]] == ["1 号门岗"]
        async with db.sessionmaker() as session:
            [event] = (
                await session.scalars(select(Event).where(Event.type == "community.pickup_point_created"))
            ).all()
            assert event.community_id == community["id"]
            assert event.user_id == leader_id
            assert event.actor_id == operator.user.id

    async def test_public_list_hides_archived_and_searches(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            open_one = await make_community(session, name="梧桐苑", district="徐汇区")
            await make_pickup_point(session, community=open_one, name="1 号门岗")
            await make_pickup_point(session, community=open_one, name="旧门岗", archived=True)
            await make_community(session, name="枫林小区", district="徐汇区", archived=True)
            await make_community(session, name="樱花里", district="闵行区")
            await session.commit()
        listed = (await client.get("/api/v1/communities")).json()
        assert listed["total"] == 2
        assert [c["name"] for c in listed["items"]] == ["梧桐苑", "樱花里"]
        assert [p["name"] for p in listed["items"][0]["pickup_points"]] == ["1 号门岗"]
        assert "archived_at" not in listed["items"][0]
        assert set(listed["items"][0]["pickup_points"][0]) == {
            "id",
            "name",
            "address",
            "opening_hours",
            "leader_name",
        }
        found = (await client.get("/api/v1/communities", params={"q": "徐汇"})).json()
        assert [c["name"] for c in found["items"]] == ["梧桐苑"]
        archived_id = (
            await client.get(
                COMMUNITIES, params={"q": "枫林", "include_archived": True}, headers=operator.headers
            )
        ).json()["items"][0]["id"]
        gone = await client.get(f"/api/v1/communities/{archived_id}")
        assert gone.status_code == 404
        assert gone.json()["error"] == "CommunityNotFound"


class TestPickupPointRules:
    async def test_unknown_community_is_404_and_nothing_written(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        before = await count_rows(db, *EVERYTHING)
        response = await client.post(
            POINTS,
            json={"community_id": 999, "name": "门岗", "address": "某路 1 号"},
            headers=operator.headers,
        )
        assert response.status_code == 404
        assert response.json()["error"] == "CommunityNotFound"
        assert response.json()["detail"] == "community 999 does not exist"
        assert await count_rows(db, *EVERYTHING) == before

    async def test_leader_without_the_role_is_422(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            community = await make_community(session)
            await session.commit()
        neighbour = await make_leader(db, nickname="王阿姨", roles=())
        before = await count_rows(db, *EVERYTHING)
        response = await client.post(
            POINTS,
            json={
                "community_id": community.id,
                "name": "门岗",
                "address": "某路 1 号",
                "leader_id": neighbour,
            },
            headers=operator.headers,
        )
        assert response.status_code == 422
        assert response.json()["error"] == "LeaderRoleMissing"
        assert "王阿姨" in response.json()["detail"]
        assert "leader role" in response.json()["detail"]
        unknown = await client.post(
            POINTS,
            json={"community_id": community.id, "name": "门岗", "address": "某路 1 号", "leader_id": 99999},
            headers=operator.headers,
        )
        assert unknown.status_code == 404
        assert unknown.json()["error"] == "LeaderNotFound"
        assert await count_rows(db, *EVERYTHING) == before

    async def test_archived_community_takes_no_new_points(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            community = await make_community(session, archived=True)
            await session.commit()
        response = await client.post(
            POINTS,
            json={"community_id": community.id, "name": "门岗", "address": "某路"},
            headers=operator.headers,
        )
        assert response.status_code == 409
        assert "archived" in response.json()["detail"]

    async def test_update_moves_leader_and_community(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        first_leader = await make_leader(db, nickname="张团长")
        second_leader = await make_leader(db, nickname="李团长")
        async with db.sessionmaker() as session:
            a = await make_community(session, name="梧桐苑")
            b = await make_community(session, name="樱花里")
            point = await make_pickup_point(session, community=a, leader_id=first_leader)
            await session.commit()
        url = f"{POINTS}/{point.id}"
        not_leader = await make_leader(db, nickname="路人", roles=(Role.host,))
        refused = await client.patch(
            url, json={"leader_id": not_leader, "name": "新名字"}, headers=operator.headers
        )
        assert refused.status_code == 422
        assert (await client.get(url, headers=operator.headers)).json()["name"] == "1 号门岗"

        moved = await client.patch(
            url, json={"leader_id": second_leader, "community_id": b.id}, headers=operator.headers
        )
        assert moved.status_code == 200, moved.text
        assert (moved.json()["leader_name"], moved.json()["community_name"]) == ("李团长", "樱花里")
        cleared = await client.patch(url, json={"leader_id": None}, headers=operator.headers)
        assert cleared.json()["leader_id"] is None
        assert cleared.json()["leader_name"] is None
        assert (await client.patch(url, json={"name": None}, headers=operator.headers)).status_code == 422
        async with db.sessionmaker() as session:
            updates = (
                await session.scalars(
                    select(Event.payload)
                    .where(Event.type == "community.pickup_point_updated")
                    .order_by(Event.id)
                )
            ).all()
        assert [u["changes"] for u in updates] == [
            {"leader_id": second_leader, "community_id": b.id},
            {"leader_id": None},
        ]

    async def test_leader_choices(self, client: httpx.AsyncClient, db: Database, operator: Caller) -> None:
        leader = await make_leader(db, nickname="张团长")
        await make_leader(db, nickname="顾客", roles=())
        listed = (await client.get("/api/v1/admin/leaders", headers=operator.headers)).json()
        assert [(row["id"], row["name"]) for row in listed] == [(leader, "张团长")]


def operator_routes() -> list[tuple[str, str]]:
    routes = []
    for route in community_api.router.routes:
        assert isinstance(route, APIRoute)
        if route.path.startswith("/api/v1/admin/"):
            path = route.path
            for name in ("{store_id}", "{community_id}", "{pickup_point_id}", "{review_id}"):
                path = path.replace(name, "1")
            routes.extend((method, path) for method in route.methods)
    return routes


class TestAccess:
    def test_every_operator_route_is_listed(self) -> None:
        assert len(operator_routes()) == 30  # 19 + the feed's reviews, mutes, tasters, WeCom robots and log

    @pytest.mark.parametrize(("method", "path"), operator_routes())
    async def test_customer_403_anonymous_401(
        self, client: httpx.AsyncClient, db: Database, customer: Caller, method: str, path: str
    ) -> None:
        async with db.sessionmaker() as session:
            community = await make_community(session)
            await make_store(session)
            await make_pickup_point(session, community=community)
            await session.commit()
        before = await count_rows(db, *EVERYTHING)
        body = {"name": "x", "address": "y", "community_id": 1}
        forbidden = await client.request(method, path, json=body, headers=customer.headers)
        assert forbidden.status_code == 403, forbidden.text
        assert forbidden.json()["detail"] == "this needs the operator role"
        anonymous = await client.request(method, path, json=body)
        assert anonymous.status_code == 401
        assert await count_rows(db, *EVERYTHING) == before
