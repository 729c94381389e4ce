from __future__ import annotations

from dataclasses import dataclass

import pytest

from linli.core.db import Database
from linli.identity.models import Role, User
from linli.identity.tokens import issue_session
from tests.factories import bearer, make_user_with_token
from tests.orders.factories import Sale, make_buyer, make_sale


@dataclass
class Caller:
    user: User
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


@pytest.fixture
async def sale(db: Database) -> Sale:
    async with db.sessionmaker() as session:
        result = await make_sale(session, stock=10, per_user_limit=5)
        await session.commit()
    return result


async def _buyer(db: Database, sale: Sale, nickname: str) -> Caller:
    async with db.sessionmaker() as session:
        user = await make_buyer(session, sale.community, nickname=nickname)
        token = await issue_session(session, user)
        await session.commit()
    return Caller(user, token)


@pytest.fixture
async def buyer(db: Database, sale: Sale) -> Caller:
    return await _buyer(db, sale, "王阿姨")


@pytest.fixture
async def other_buyer(db: Database, sale: Sale) -> Caller:
    return await _buyer(db, sale, "李叔")


@pytest.fixture
async def operator(db: Database) -> Caller:
    user, token = await make_user_with_token(db, roles=(Role.operator,), nickname="运营小王")
    return Caller(user, token)
