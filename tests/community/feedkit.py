"""Shared rows for the feed's tests: communities with members, a leader, tasters; committed."""

from __future__ import annotations

from dataclasses import dataclass

from linli.community.feed.models import FeedTaster
from linli.community.models import Community, Membership
from linli.core.db import Database
from linli.identity.models import Role, User
from linli.identity.tokens import issue_session
from tests.community.factories import make_community, make_pickup_point
from tests.factories import Caller, make_user


@dataclass
class Place:
    community: Community
    leader: Caller
    neighbours: list[Caller]
    taster: Caller


async def _caller(session, user: User) -> Caller:  # type: ignore[no-untyped-def]
    return Caller(user, await issue_session(session, user))


async def make_place(
    db: Database, *, name: str = "梧桐苑", neighbours: int | None = None, nicknames: tuple[str, ...] = ()
) -> Place:
    """A community with a pickup point and its leader, ``neighbours`` members and one invited taster."""
    async with db.sessionmaker() as session:
        community = await make_community(session, name=name)
        leader = await make_user(session, roles=(Role.leader,), nickname=f"{name}团长")
        await make_pickup_point(session, community=community, leader_id=leader.id)
        members = []
        for i in range(neighbours if neighbours is not None else max(len(nicknames), 2)):
            nick = nicknames[i] if i < len(nicknames) else f"{name}邻居{i + 1}"
            user = await make_user(session, nickname=nick)
            session.add(Membership(user_id=user.id, community_id=community.id, source="chosen"))
            members.append(user)
        taster = await make_user(session, nickname=f"{name}试吃官")
        session.add(Membership(user_id=taster.id, community_id=community.id, source="chosen"))
        session.add(FeedTaster(community_id=community.id, user_id=taster.id))
        await session.flush()
        place = Place(
            community=community,
            leader=await _caller(session, leader),
            neighbours=[await _caller(session, u) for u in members],
            taster=await _caller(session, taster),
        )
        await session.commit()
        return place
