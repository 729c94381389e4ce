from __future__ import annotations

from dataclasses import dataclass

import pytest

from linli.core.db import Database
from linli.identity.models import Role, User
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
