from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from linli.core.db import Database
from linli.core.events import Event
from linli.identity.models import Role, User
from linli.live.models import LineupItem, LiveSession, SessionCommunity
from tests.factories import bearer, make_user_with_token


@dataclass
class Caller:
    user: User
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


@pytest.fixture
async def operator(db: Database) -> Caller:
    user, token = await make_user_with_token(db, roles=(Role.operator,), nickname="运营小王")
    return Caller(user, token)


@pytest.fixture
async def customer(db: Database) -> Caller:
    user, token = await make_user_with_token(db, nickname="李姐")
    return Caller(user, token)


@dataclass(frozen=True)
class Counts:
    sessions: int
    targets: int
    lineup: int
    events: int


async def count_rows(db: Database) -> Counts:
    """What exists, to prove a refused request wrote nothing."""
    async with db.sessionmaker() as session:
        values = [
            await session.scalar(select(func.count()).select_from(model))
            for model in (LiveSession, SessionCommunity, LineupItem, Event)
        ]
    return Counts(*(v or 0 for v in values))
