"""Plain keyword-only factories for tests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.db import Database
from linli.identity.models import Role, User, UserRole
from linli.identity.tokens import issue_session

_phones = itertools.count(13800000000)


async def make_user(
    session: AsyncSession, *, phone: str | None = None, nickname: str = "", roles: tuple[Role, ...] = ()
) -> User:
    user = User(phone=phone or str(next(_phones)), nickname=nickname, is_active=True)
    user.roles = [UserRole(role=r.value) for r in {Role.customer, *roles}]
    session.add(user)
    await session.flush()
    return user


async def make_user_with_token(
    db: Database, *, roles: tuple[Role, ...] = (), nickname: str = ""
) -> tuple[User, str]:
    """A committed user and a bearer token for them."""
    async with db.sessionmaker() as session:
        user = await make_user(session, roles=roles, nickname=nickname)
        token = await issue_session(session, user)
        await session.commit()
        return user, token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Caller:
    """A committed user and the headers that act as them on the API."""

    user: User
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)
