"""Session tokens: one random secret per login, stored only as its hash.

The same token is the page cookie's value (signed, httpOnly, SameSite=Lax) and the API's bearer token."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from linli.core.clock import utcnow
from linli.identity.models import AuthSession, User

SESSION_COOKIE = "linli_session"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_session(
    session: AsyncSession,
    user: User,
    *,
    ttl_days: int = 30,
    anonymous_id: str | None = None,
    user_agent: str | None = None,
    client_ip: str | None = None,
) -> str:
    """Create a login for ``user`` and return its token (shown once, never stored in clear)."""
    token = secrets.token_urlsafe(32)
    session.add(
        AuthSession(
            token_hash=hash_token(token),
            user_id=user.id,
            expires_at=utcnow() + timedelta(days=ttl_days),
            anonymous_id=anonymous_id,
            user_agent=(user_agent or "")[:255] or None,
            client_ip=client_ip,
        )
    )
    await session.flush()
    return token


async def user_for_token(session: AsyncSession, token: str) -> User | None:
    """The active user behind a live, unrevoked token, or None (one query in ``session``)."""
    # Roles in the same query: one round trip, not two.
    row = await session.execute(
        select(User)
        .options(joinedload(User.roles))
        .join(AuthSession, AuthSession.user_id == User.id)
        .where(
            AuthSession.token_hash == hash_token(token),
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > utcnow(),
            User.is_active.is_(True),
        )
    )
    return row.unique().scalar_one_or_none()
