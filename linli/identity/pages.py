"""Identity's pages: phone-code login, the neighbour's profile, logout, and the operators' user list."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import RedirectResponse, Response

from linli.core.deps import RuntimeDep, SessionDep
from linli.core.errors import LinliError, TooManyRequests
from linli.core.templating import register_admin_nav, render, translator
from linli.identity import service
from linli.identity.deps import (
    OptionalUser,
    PageOperator,
    PageUser,
    client_address,
    cookie_serializer,
    token_from_cookie,
)
from linli.identity.models import User
from linli.identity.schemas import ROLE_ORDER, sorted_roles
from linli.identity.senders import mask_phone
from linli.identity.tokens import SESSION_COOKIE

router = APIRouter(include_in_schema=False)

register_admin_nav("/admin/users", "identity.admin_users", order=90)

RESEND_SECONDS = 60


def safe_next(value: str | None) -> str:
    """Where to go after logging in: only a path on this site. Anything a browser could read as another
    host (``//evil.com``, ``/\\evil.com``, ``https://…``, tabs or newlines it would strip) becomes ``/``."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    if any(ch == "\\" or ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def error_text(request: Request, exc: LinliError) -> str:
    """The error in the page's language when we have words for it, else the API's message."""
    t = translator(request)
    key = f"identity.errors.{exc.name}"
    params: dict[str, Any] = dict(exc.context)
    if isinstance(exc, TooManyRequests):
        params["seconds"] = exc.retry_after
    try:
        text: str = t(key, **params)
    except (KeyError, IndexError):
        return exc.message
    return exc.message if text == key else text


def _login_form(
    request: Request,
    *,
    phone: str = "",
    next_path: str = "/",
    error: str | None = None,
    notice: str | None = None,
    cooldown: int = 0,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    settings = request.app.state.runtime.settings
    return render(
        request,
        "identity/login.html",
        {
            "phone": phone,
            "next": next_path,
            "error": error,
            "notice": notice,
            "cooldown": cooldown,
            "demo_sender": settings.login_code_sender in ("console", "file"),
        },
        status_code=status_code,
        headers=headers,
    )


@router.get("/login")
async def login_page(
    request: Request,
    user: OptionalUser,
    next_path: Annotated[str, Query(alias="next", max_length=2000)] = "/",
) -> Response:
    if user is not None:
        return RedirectResponse(safe_next(next_path), status_code=303)
    return _login_form(request, next_path=safe_next(next_path))


@router.post("/login")
async def login_submit(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    phone: Annotated[str, Form(max_length=32)] = "",
    code: Annotated[str, Form(max_length=16)] = "",
    next_path: Annotated[str, Form(alias="next", max_length=2000)] = "/",
    action: Annotated[str, Form(max_length=16)] = "login",
) -> Response:
    """Send a code (the no-JavaScript path of the 获取验证码 button) or log in and set the session cookie."""
    # No user lookup here: the code checks below run their own transactions first (see service).
    request.state.user = None
    target = safe_next(next_path)
    client = client_address(request)
    t = translator(request)
    try:
        normalized = service.normalize_phone(phone)
        if action == "send_code":
            await service.send_login_code(runtime, phone=normalized, client=client)
            return _login_form(
                request,
                phone=normalized,
                next_path=target,
                notice=t("login.code_sent"),
                cooldown=RESEND_SECONDS,
            )
        code_id = await service.check_code(
            runtime.db, runtime.settings, phone=normalized, code=code, client=client
        )
        result = await service.log_in(
            session,
            runtime.settings,
            phone=normalized,
            code_id=code_id,
            anonymous_id=getattr(request.state, "anonymous_id", None),
            user_agent=request.headers.get("user-agent"),
            client_ip=client,
            via="page",
        )
    except LinliError as exc:
        await session.rollback()
        headers = None
        cooldown = 0
        if isinstance(exc, TooManyRequests):
            headers = {"Retry-After": str(exc.retry_after)}
            cooldown = exc.retry_after if action == "send_code" else 0
        return _login_form(
            request,
            phone=phone,
            next_path=target,
            error=error_text(request, exc),
            cooldown=cooldown,
            status_code=exc.status_code,
            headers=headers,
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie_serializer(request).dumps(result.token),
        max_age=runtime.settings.session_ttl_days * 86400,
        path="/",
        httponly=True,
        samesite="lax",
        secure=runtime.settings.secure_cookies,
    )
    return response


@router.post("/logout")
async def logout_page(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """Revoke the cookie's session and forget the cookie; safe to repeat."""
    token = token_from_cookie(request)
    if token is not None:
        await service.log_out(session, token)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=runtime.settings.secure_cookies
    )
    return response


def _me_page(
    request: Request,
    user: User,
    *,
    nickname: str,
    error: str | None = None,
    saved: bool = False,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "identity/me.html",
        {
            "active_tab": "me",
            "masked_phone": mask_phone(user.phone),
            "roles": [r.value for r in sorted_roles(user.role_names)],
            "nickname": nickname,
            "error": error,
            "saved": saved,
        },
        status_code=status_code,
    )


@router.get("/me")
async def me_page(request: Request, user: PageUser, saved: bool = False) -> Response:
    return _me_page(request, user, nickname=user.nickname, saved=saved)


@router.post("/me")
async def me_submit(
    request: Request,
    user: PageUser,
    session: SessionDep,
    nickname: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        await service.update_profile(session, user, nickname=nickname)
    except LinliError as exc:
        return _me_page(
            request, user, nickname=nickname, error=error_text(request, exc), status_code=exc.status_code
        )
    return RedirectResponse("/me?saved=1", status_code=303)


def _users_url(q: str, page: int, **extra: Any) -> str:
    return "/admin/users?" + urlencode({"q": q, "page": page, **extra})


async def _users_page(
    request: Request,
    session: SessionDep,
    *,
    q: str,
    page: int,
    flash: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    result = await service.list_users(session, q=q, page=page)
    return render(
        request,
        "identity/admin_users.html",
        {
            "result": result,
            "q": q,
            "roles": [r.value for r in ROLE_ORDER],
            "flash": flash,
            "page_url": lambda n: _users_url(q, n),
        },
        status_code=status_code,
    )


@router.get("/admin/users")
async def admin_users(
    request: Request,
    operator: PageOperator,
    session: SessionDep,
    q: Annotated[str, Query(max_length=40)] = "",
    page: Annotated[int, Query(ge=1)] = 1,
    saved: int | None = None,
) -> Response:
    flash = None
    if saved is not None:
        flash = {"kind": "ok", "text": translator(request)("identity.admin.saved", id=saved)}
    return await _users_page(request, session, q=q, page=page, flash=flash)


@router.post("/admin/users/{user_id}/roles")
async def admin_user_roles(
    request: Request,
    user_id: int,
    operator: PageOperator,
    session: SessionDep,
    roles: Annotated[list[str] | None, Form()] = None,
    q: Annotated[str, Form(max_length=40)] = "",
    page: Annotated[int, Form(ge=1)] = 1,
) -> Response:
    try:
        await service.set_roles(session, user_id, service.parse_roles(roles or []), actor=operator)
    except LinliError as exc:
        # set_roles refuses before it changes anything, so the transaction holds nothing to undo.
        flash = {"kind": "error", "text": error_text(request, exc)}
        return await _users_page(request, session, q=q, page=page, flash=flash, status_code=exc.status_code)
    return RedirectResponse(_users_url(q, page, saved=user_id), status_code=303)
