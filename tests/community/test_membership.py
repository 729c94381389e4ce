"""A neighbour belongs to one community at a time: join, move, and the /me/community API."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from linli.community import service
from linli.community.models import Membership
from linli.community.schemas import MembershipSource
from linli.core.db import Database
from linli.core.events import Event
from tests.catalog.factories import count_rows
from tests.community.factories import make_community, make_pickup_point
from tests.factories import Caller, make_user


async def membership_events(db: Database) -> list[Event]:
    async with db.sessionmaker() as session:
        return list(
            (
                await session.scalars(
                    select(Event).where(Event.type.like("community.member_%")).order_by(Event.id)
                )
            ).all()
        )


class TestJoinCommunity:
    async def test_join_move_and_stay(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            user = await make_user(session)
            a = await make_community(session, name="梧桐苑")
            b = await make_community(session, name="樱花里")
            assert await service.community_of(session, user.id) is None

            joined = await service.join_community(session, user.id, a.id, MembershipSource.invited)
            assert (joined.community_id, joined.source) == (a.id, "invited")
            again = await service.join_community(session, user.id, a.id, "chosen")
            assert again.source == "invited"  # already there: nothing changes
            await service.join_community(session, user.id, b.id, "chosen")
            community = await service.community_of(session, user.id)
            assert community is not None
            assert community.name == "樱花里"
            await session.commit()

        async with db.sessionmaker() as session:
            assert (await session.scalars(select(Membership))).all()[0].community_id == b.id
        joined_event, moved_event = await membership_events(db)
        assert (joined_event.type, joined_event.user_id, joined_event.community_id) == (
            "community.member_joined",
            user.id,
            a.id,
        )
        assert joined_event.payload == {"source": "invited"}
        assert moved_event.type == "community.member_moved"
        assert moved_event.community_id == b.id
        assert moved_event.payload == {"source": "chosen", "from_community_id": a.id}

    async def test_archived_or_unknown_community_is_refused(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            user = await make_user(session)
            closed = await make_community(session, archived=True)
            await session.commit()
            for community_id in (closed.id, 999):
                with pytest.raises(service.CommunityNotFound):
                    await service.join_community(session, user.id, community_id, "chosen")
            with pytest.raises(ValueError, match="bribed"):
                await service.join_community(session, user.id, closed.id, "bribed")
            await session.rollback()
        assert await count_rows(db, Membership, Event) == {"memberships": 0, "events": 0}


class TestMyCommunityApi:
    async def test_choose_and_read(self, client: httpx.AsyncClient, db: Database, customer: Caller) -> None:
        async with db.sessionmaker() as session:
            community = await make_community(session, name="梧桐苑")
            await make_pickup_point(session, community=community, name="1 号门岗")
            other = await make_community(session, name="樱花里")
            await session.commit()
        empty = await client.get("/api/v1/me/community", headers=customer.headers)
        assert empty.status_code == 200
        assert empty.json() == {"community": None, "source": None, "joined_at": None}

        chosen = await client.put(
            "/api/v1/me/community", json={"community_id": community.id}, headers=customer.headers
        )
        assert chosen.status_code == 200, chosen.text
        assert chosen.json()["community"]["name"] == "梧桐苑"
        assert chosen.json()["community"]["pickup_points"][0]["name"] == "1 号门岗"
        assert chosen.json()["source"] == "chosen"
        assert (await client.get("/api/v1/me/community", headers=customer.headers)).json() == chosen.json()

        moved = await client.put(
            "/api/v1/me/community", json={"community_id": other.id}, headers=customer.headers
        )
        assert moved.json()["community"]["name"] == "樱花里"
        assert [e.type for e in await membership_events(db)] == [
            "community.member_joined",
            "community.member_moved",
        ]

    async def test_bad_choices(self, client: httpx.AsyncClient, db: Database, customer: Caller) -> None:
        async with db.sessionmaker() as session:
            closed = await make_community(session, archived=True)
            await session.commit()
        for body, status in (
            ({"community_id": 999}, 404),
            ({"community_id": closed.id}, 404),
            ({"community_id": "梧桐苑"}, 422),
            ({}, 422),
        ):
            response = await client.put("/api/v1/me/community", json=body, headers=customer.headers)
            assert response.status_code == status, body
            assert response.json()["detail"]
        assert await count_rows(db, Membership, Event) == {"memberships": 0, "events": 0}

    async def test_needs_login(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/api/v1/me/community")).status_code == 401
        assert (await client.put("/api/v1/me/community", json={"community_id": 1})).status_code == 401
