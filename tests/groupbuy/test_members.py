"""Operators change membership from a community's members page and the JSON API: move a neighbour to
another community or take them out, with a reason. Paid orders never move (group-order counts and pick
lists stay as they were), the neighbour is told, each change is one event; leaders and neighbours cannot
do it, and bad input is a clear 4xx that changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from linli.community import events as community_events
from linli.community import inbox
from linli.community.models import InboxItem, Membership
from linli.core.events import Event
from tests.factories import Caller
from tests.groupbuy.factories import Town
from tests.live.factories import make_community

ADMIN = "/api/v1/admin/groupbuy"


def _url(community_id: int, user_id: int, action: str) -> str:
    return f"{ADMIN}/communities/{community_id}/members/{user_id}/{action}"


async def _membership(town: Town, user_id: int) -> tuple[int, str] | None:
    async with town.db.sessionmaker() as session:
        row = await session.get(Membership, user_id)
        return (row.community_id, row.source) if row is not None else None


async def _told(town: Town, user_id: int) -> list[InboxItem]:
    async with town.db.sessionmaker() as session:
        query = select(InboxItem).where(InboxItem.user_id == user_id, InboxItem.kind == "membership")
        return list((await session.scalars(query.order_by(InboxItem.id))).all())


async def _changes(town: Town) -> list[Event]:
    async with town.db.sessionmaker() as session:
        query = select(Event).where(
            Event.type.in_((community_events.MEMBER_MOVED, community_events.MEMBER_LEFT))
        )
        return list((await session.scalars(query.order_by(Event.id))).all())


async def _fulfilment(town: Town, client: httpx.AsyncClient) -> tuple[Any, Any]:
    """The session's group counts per community and its pick list, as operators read them."""
    groups = await client.get(f"{ADMIN}/sessions/{town.session_id}/groups", headers=town.operator.headers)
    picks = await client.get(f"{ADMIN}/sessions/{town.session_id}/pick-list", headers=town.operator.headers)
    counts = sorted((g["community_id"], g["units"], g["state"]) for g in groups.json())
    return counts, picks.json()


class TestMoving:
    async def test_a_neighbour_moves_and_their_paid_orders_stay(
        self, town: Town, client: httpx.AsyncClient
    ) -> None:
        hood, other = town.hoods[0].community, town.hoods[1].community
        buyer = await town.neighbour(0)
        paid = await town.buy(buyer, 2)
        placed = await town.order(buyer, 1)  # placed before the move, paid after it
        await town.buy(await town.neighbour(1, nickname="李叔"), 1)
        await town.drain()
        before = await _fulfilment(town, client)
        assert before[0] == [(hood.id, 2, "collecting"), (other.id, 1, "collecting")]

        moved = await client.post(
            _url(hood.id, buyer.user.id, "move"),
            json={"to_community_id": other.id, "reason": "已搬到阳光花园"},
            headers=town.operator.headers,
        )
        assert moved.status_code == 200, moved.text
        assert moved.json() == {
            "user_id": buyer.user.id,
            "community_id": other.id,
            "community_name": "阳光花园",
            "source": "assigned",
        }
        assert await _membership(town, buyer.user.id) == (other.id, "assigned")
        await town.drain()
        assert await _fulfilment(town, client) == before
        assert (await town.reload(paid)).community_id == hood.id
        [change] = await _changes(town)
        assert (change.type, change.actor_id, change.user_id, change.community_id) == (
            community_events.MEMBER_MOVED,
            town.operator.user.id,
            buyer.user.id,
            other.id,
        )
        assert change.payload == {
            "source": "assigned",
            "from_community_id": hood.id,
            "reason": "已搬到阳光花园",
        }
        [told] = await _told(town, buyer.user.id)
        assert told.title == "你的小区已调整为阳光花园"
        assert "从梧桐苑调整到阳光花园。原因:已搬到阳光花园。已支付的订单仍按原小区配送" in told.body
        english = inbox.shown(told, "en")
        assert english.title == "Your community is now 阳光花园"
        assert "An operator moved you from 梧桐苑 to 阳光花园. Reason: 已搬到阳光花园." in english.body

        # An order placed before the move stays with the community it was placed in; the next one goes
        # to the new community.
        await town.pay(placed)
        await town.buy(buyer, 3)
        await town.drain()
        counts, _ = await _fulfilment(town, client)
        assert counts == [(hood.id, 3, "collecting"), (other.id, 4, "collecting")]

        listed = await client.get(f"{ADMIN}/communities/{other.id}/members", headers=town.operator.headers)
        assert buyer.user.id in [m["user_id"] for m in listed.json()]
        left = await client.get(f"{ADMIN}/communities/{hood.id}/members", headers=town.operator.headers)
        assert buyer.user.id not in [m["user_id"] for m in left.json()]

    async def test_a_neighbour_is_removed_from_their_community(
        self, town: Town, client: httpx.AsyncClient
    ) -> None:
        hood = town.hoods[0].community
        buyer = await town.neighbour(0)
        await town.buy(buyer, 2)
        await town.drain()
        before = await _fulfilment(town, client)
        removed = await client.post(
            _url(hood.id, buyer.user.id, "remove"), json={"reason": "重复账号"}, headers=town.operator.headers
        )
        assert removed.status_code == 200, removed.text
        assert removed.json()["community_id"] is None
        assert await _membership(town, buyer.user.id) is None
        assert await _fulfilment(town, client) == before
        [change] = await _changes(town)
        assert (change.type, change.actor_id, change.community_id) == (
            community_events.MEMBER_LEFT,
            town.operator.user.id,
            hood.id,
        )
        assert change.payload == {"from_community_id": hood.id, "reason": "重复账号"}
        [told] = await _told(town, buyer.user.id)
        assert told.title == "你已被移出梧桐苑"
        assert inbox.shown(told, "en").title == "You were removed from 梧桐苑"
        mine = await client.get("/api/v1/me/community", headers=buyer.headers)
        assert mine.json()["community"] is None
        # Removing again: they are no longer a member.
        again = await client.post(
            _url(hood.id, buyer.user.id, "remove"), json={"reason": "重复账号"}, headers=town.operator.headers
        )
        assert (again.status_code, again.json()["error"]) == (404, "MemberNotFound")


class TestRefusals:
    async def test_bad_input_is_a_clear_4xx_and_changes_nothing(
        self, town: Town, client: httpx.AsyncClient
    ) -> None:
        hood, other = town.hoods[0].community, town.hoods[1].community
        buyer = await town.neighbour(0)
        stranger = await town.neighbour(1, nickname="李叔")
        async with town.db.sessionmaker() as session:
            archived = await make_community(session, name="旧小区", archived=True)
            await session.commit()
        cases: list[tuple[str, dict[str, Any], int, str]] = [
            (
                _url(hood.id, 999_999, "move"),
                {"to_community_id": other.id, "reason": "x"},
                404,
                "UserNotFound",
            ),
            (
                _url(hood.id, stranger.user.id, "move"),
                {"to_community_id": other.id, "reason": "x"},
                404,
                "MemberNotFound",
            ),
            (
                _url(999_999, buyer.user.id, "move"),
                {"to_community_id": other.id, "reason": "x"},
                404,
                "CommunityNotFound",
            ),
            (
                _url(hood.id, buyer.user.id, "move"),
                {"to_community_id": 999_999, "reason": "x"},
                404,
                "CommunityNotFound",
            ),
            (
                _url(hood.id, buyer.user.id, "move"),
                {"to_community_id": archived.id, "reason": "x"},
                409,
                "CommunityArchived",
            ),
            (
                _url(hood.id, buyer.user.id, "move"),
                {"to_community_id": hood.id, "reason": "x"},
                409,
                "AlreadyInCommunity",
            ),
            (_url(hood.id, buyer.user.id, "move"), {"to_community_id": other.id, "reason": "  "}, 422, ""),
            (_url(hood.id, buyer.user.id, "move"), {"to_community_id": other.id}, 422, ""),
            (_url(hood.id, buyer.user.id, "move"), {"to_community_id": "x", "reason": "x"}, 422, ""),
            (_url(hood.id, buyer.user.id, "remove"), {"reason": ""}, 422, ""),
            (_url(hood.id, stranger.user.id, "remove"), {"reason": "x"}, 404, "MemberNotFound"),
            (_url(hood.id, 999_999, "remove"), {"reason": "x"}, 404, "UserNotFound"),
        ]
        for url, body, status, error in cases:
            response = await client.post(url, json=body, headers=town.operator.headers)
            assert response.status_code == status, (url, body, response.text)
            assert response.json()["detail"], response.text
            if error:
                assert response.json()["error"] == error
        assert await _membership(town, buyer.user.id) == (hood.id, "chosen")
        assert await _membership(town, stranger.user.id) == (other.id, "chosen")
        assert await _changes(town) == []
        async with town.db.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(InboxItem)) == 0

    @pytest.mark.parametrize("who", ["leader", "neighbour"])
    async def test_leaders_and_neighbours_cannot_change_membership(
        self, town: Town, client: httpx.AsyncClient, who: str
    ) -> None:
        hood, other = town.hoods[0].community, town.hoods[1].community
        buyer = await town.neighbour(0)
        caller: Caller = town.hoods[0].leader if who == "leader" else await town.neighbour(0, nickname="李叔")
        move = await client.post(
            _url(hood.id, buyer.user.id, "move"),
            json={"to_community_id": other.id, "reason": "x"},
            headers=caller.headers,
        )
        remove = await client.post(
            _url(hood.id, buyer.user.id, "remove"), json={"reason": "x"}, headers=caller.headers
        )
        page = await client.post(
            f"/admin/groupbuy/communities/{hood.id}/members/{buyer.user.id}",
            data={"action": "remove", "reason": "x"},
            headers={**caller.headers, "Accept": "text/html"},
        )
        listing = await client.get(
            f"/admin/groupbuy/communities/{hood.id}/members",
            headers={**caller.headers, "Accept": "text/html"},
        )
        assert [move.status_code, remove.status_code, page.status_code, listing.status_code] == [403] * 4
        assert await _membership(town, buyer.user.id) == (hood.id, "chosen")
        assert await _changes(town) == []


class TestMembersPage:
    async def test_the_operator_moves_and_removes_from_the_members_page(
        self, town: Town, client: httpx.AsyncClient
    ) -> None:
        hood, other = town.hoods[0].community, town.hoods[1].community
        a, b = await town.neighbour(0), await town.neighbour(0, nickname="李叔")
        html = {**town.operator.headers, "Accept": "text/html"}
        page = await client.get(f"/admin/groupbuy/communities/{hood.id}/members", headers=html)
        assert page.status_code == 200
        assert f'<option value="{other.id}">阳光花园</option>' in page.text
        assert f'<option value="{hood.id}">' not in page.text  # not to the community they are in
        form = f"/admin/groupbuy/communities/{hood.id}/members"

        missing = await client.post(
            f"{form}/{a.user.id}", data={"action": "move", "reason": "搬家"}, headers=html
        )
        assert missing.status_code == 303
        shown = await client.get(missing.headers["location"], headers=html)
        assert "选择要移至的小区" in shown.text
        assert await _membership(town, a.user.id) == (hood.id, "chosen")

        moved = await client.post(
            f"{form}/{a.user.id}",
            data={"action": "move", "to_community_id": str(other.id), "reason": "搬家"},
            headers=html,
        )
        assert moved.status_code == 303
        assert "已移至 阳光花园" in (await client.get(moved.headers["location"], headers=html)).text
        assert await _membership(town, a.user.id) == (other.id, "assigned")
        removed = await client.post(
            f"{form}/{b.user.id}", data={"action": "remove", "reason": "测试账号"}, headers=html
        )
        assert removed.status_code == 303
        assert await _membership(town, b.user.id) is None
        after = await client.get(f"/admin/groupbuy/communities/{hood.id}/members", headers=html)
        assert "已移出本小区" in after.text
        assert f'data-user-id="{a.user.id}"' not in after.text
        assert f'data-user-id="{b.user.id}"' not in after.text
        assert [e.type for e in await _changes(town)] == [
            community_events.MEMBER_MOVED,
            community_events.MEMBER_LEFT,
        ]
