"""Identity's JSON API: login by phone code, logout, the caller's profile, and operators' role management."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from linli.core.deps import RuntimeDep, SessionDep
from linli.core.errors import NotAuthenticated
from linli.identity import service
from linli.identity.deps import CurrentUser, OperatorUser, client_address, token_from_request
from linli.identity.schemas import (
    LoginCodeCreate,
    LoginCodeRead,
    RolesUpdate,
    SessionCreate,
    SessionRead,
    UserPage,
    UserRead,
    UserUpdate,
)
from linli.identity.senders import mask_phone

router = APIRouter(prefix="/api/v1", tags=["identity"])


@router.post("/auth/codes", status_code=201)
async def request_code(body: LoginCodeCreate, request: Request, runtime: RuntimeDep) -> LoginCodeRead:
    """Send a 6-digit login code to a mainland China mobile number (rate-limited per number and client)."""
    phone = service.normalize_phone(body.phone)
    await service.send_login_code(runtime, phone=phone, client=client_address(request))
    return LoginCodeRead(
        phone=mask_phone(phone),
        expires_in_seconds=runtime.settings.login_code_ttl_seconds,
        resend_after_seconds=60,
    )


@router.post("/auth/login")
async def login(
    body: SessionCreate, request: Request, runtime: RuntimeDep, session: SessionDep
) -> SessionRead:
    """Exchange a phone and its code for a bearer token; the first login registers the neighbour."""
    phone = service.normalize_phone(body.phone)
    client = client_address(request)
    # Own committed transactions first: the wrong-try counter must survive this request failing.
    code_id = await service.check_code(
        runtime.db, runtime.settings, phone=phone, code=body.code, client=client
    )
    result = await service.log_in(
        session,
        runtime.settings,
        phone=phone,
        code_id=code_id,
        anonymous_id=body.anonymous_id or getattr(request.state, "anonymous_id", None),
        user_agent=request.headers.get("user-agent"),
        client_ip=client,
        via="api",
    )
    return SessionRead(token=result.token, user=UserRead.of(result.user))


@router.post("/auth/logout", status_code=204)
async def logout(request: Request, user: CurrentUser, session: SessionDep) -> Response:
    """Revoke the session whose token authenticated this call."""
    token = token_from_request(request)
    if token is None or await service.log_out(session, token) is None:
        raise NotAuthenticated("please log in first")
    return Response(status_code=204)


@router.get("/me")
async def read_me(user: CurrentUser) -> UserRead:
    """The caller's profile and roles."""
    return UserRead.of(user)


@router.patch("/me")
async def update_me(body: UserUpdate, user: CurrentUser, session: SessionDep) -> UserRead:
    """Change the caller's nickname (1–20 characters)."""
    await service.update_profile(session, user, nickname=body.nickname)
    return UserRead.of(user)


@router.get("/admin/users")
async def list_users(
    operator: OperatorUser,
    session: SessionDep,
    q: Annotated[str, Query(max_length=40, description="part of a phone number or nickname")] = "",
    page: Annotated[int, Query(ge=1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
) -> UserPage:
    """Users, newest first, searchable by phone or nickname (operators only)."""
    result = await service.list_users(session, q=q, page=page, per_page=per_page)
    return UserPage(
        items=[UserRead.of(u) for u in result.items],
        total=result.total,
        page=result.page,
        per_page=result.per_page,
        pages=result.pages,
    )


@router.put("/admin/users/{user_id}/roles")
async def set_user_roles(
    user_id: int, body: RolesUpdate, operator: OperatorUser, session: SessionDep
) -> UserRead:
    """Set a user's roles (operators only); customer is always kept; nobody drops their own operator role."""
    user = await service.set_roles(session, user_id, body.roles, actor=operator)
    return UserRead.of(user)
