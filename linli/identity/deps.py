"""Who is calling: typed dependencies that resolve the user from the bearer token or the session cookie
and check roles on every route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from itsdangerous import BadData, URLSafeSerializer

from linli.core.deps import SessionDep, runtime_of
from linli.core.errors import Forbidden, NotAuthenticated, Redirect
from linli.identity.logins import logins_of, user_in
from linli.identity.models import Role, User
from linli.identity.tokens import SESSION_COOKIE, hash_token, user_for_token


def cookie_serializer(request: Request) -> URLSafeSerializer:
    secret = runtime_of(request).settings.resolved_secret_key()
    return URLSafeSerializer(secret, salt="linli.session")


def token_from_request(request: Request) -> str | None:
    """The bearer token, else the session cookie's token; a cookie whose signature fails counts as none."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return token_from_cookie(request)


def token_from_cookie(request: Request) -> str | None:
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        value = cookie_serializer(request).loads(cookie)
    except BadData:
        return None
    return value if isinstance(value, str) else None


async def get_optional_user(request: Request, session: SessionDep) -> User | None:
    if hasattr(request.state, "user"):
        cached: User | None = request.state.user
        return cached
    token = token_from_request(request)
    user = None
    if token:
        runtime = runtime_of(request)
        cache = logins_of(runtime)
        if cache.enabled:
            # Remembered, or looked up with the other requests' tokens of the moment (``identity.logins``):
            # the request's own transaction is not opened for it.
            cache.listen(runtime.hub)
            template = await cache.look_up(runtime.db, hash_token(token))
            user = await user_in(session, template) if template is not None else None
        else:
            user = await user_for_token(session, token)
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


def client_address(request: Request) -> str:
    """The caller's address, as the rate limits key it (uvicorn's --proxy-headers sets it behind a proxy)."""
    return request.client.host if request.client else "unknown"


def login_url(request: Request) -> str:
    """The login page, coming back to where the browser is now."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login?next={quote(here, safe='')}"


async def get_page_user(request: Request, user: OptionalUser) -> User:
    if user is None:
        raise Redirect(login_url(request))
    return user


PageUser = Annotated[User, Depends(get_page_user)]


def require_page_roles(*roles: Role) -> Callable[[User], Awaitable[User]]:
    """Like ``require_roles`` for pages: anonymous visitors go to the login page, others get a 403 page."""

    async def dependency(user: PageUser) -> User:
        if not user.has_role(*roles):
            raise Forbidden(f"this page needs the {' or '.join(r.value for r in roles)} role")
        return user

    return dependency


PageOperator = Annotated[User, Depends(require_page_roles(Role.operator))]
PageHost = Annotated[User, Depends(require_page_roles(Role.host, Role.operator))]
PageLeader = Annotated[User, Depends(require_page_roles(Role.leader, Role.operator))]
