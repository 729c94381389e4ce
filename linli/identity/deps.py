"""Who is calling: typed dependencies that resolve the user from the bearer token or the session cookie
and check roles on every route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeSerializer

from linli.core.deps import SessionDep, get_runtime
from linli.core.errors import Forbidden, NotAuthenticated
from linli.identity.models import Role, User
from linli.identity.tokens import SESSION_COOKIE, user_for_token


def cookie_serializer(request: Request) -> URLSafeSerializer:
    secret = get_runtime(request).settings.resolved_secret_key()
    return URLSafeSerializer(secret, salt="linli.session")


def token_from_request(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        value = cookie_serializer(request).loads(cookie)
    except BadSignature:
        return None
    return value if isinstance(value, str) else None


async def get_optional_user(request: Request, session: SessionDep) -> User | None:
    if hasattr(request.state, "user"):
        cached: User | None = request.state.user
        return cached
    token = token_from_request(request)
    user = await user_for_token(session, token) if token else None
    request.state.user = user
    return user


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


async def get_current_user(user: OptionalUser) -> User:
    if user is None:
        raise NotAuthenticated("please log in first")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_roles(*roles: Role) -> Callable[[User], Awaitable[User]]:
    """A dependency admitting only users holding one of ``roles``."""

    async def dependency(user: CurrentUser) -> User:
        if not user.has_role(*roles):
            raise Forbidden(f"this needs the {' or '.join(r.value for r in roles)} role")
        return user

    return dependency


OperatorUser = Annotated[User, Depends(require_roles(Role.operator))]
HostUser = Annotated[User, Depends(require_roles(Role.host, Role.operator))]
LeaderUser = Annotated[User, Depends(require_roles(Role.leader, Role.operator))]
