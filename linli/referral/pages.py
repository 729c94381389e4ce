"""The referral domain's pages: the share link ``/s/{code}``, the share sheet on the room and order pages,
the neighbours' 分享达人榜 (mobile) and the operators' settings page (desktop)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.deps import SessionDep
from linli.core.errors import LinliError, NotFound
from linli.core.templating import register_admin_nav, render
from linli.identity.deps import OptionalUser, PageOperator, PageUser
from linli.identity.models import User
from linli.live import room_pages
from linli.live.models import LineupItem, LiveSession, SessionStatus
from linli.orders import pages as order_pages
from linli.orders.models import Order
from linli.referral import api, leaderboard, service, shares

router = APIRouter(include_in_schema=False)

PUBLIC = (SessionStatus.live.value, SessionStatus.scheduled.value, SessionStatus.ended.value)


async def _landing(session: AsyncSession, session_id: int | None, product_id: int | None) -> str:
    """Where a share link leads: its session's room, else a room selling its product (live first)."""
    if session_id is not None:
        live_session = await session.get(LiveSession, session_id)
        if live_session is not None and live_session.status in PUBLIC and live_session.archived_at is None:
            return f"/live/{live_session.id}"
    if product_id is not None:
        found = (
            await session.execute(
                select(LiveSession.id, LiveSession.status)
                .join(LineupItem, LineupItem.session_id == LiveSession.id)
                .where(
                    LineupItem.product_id == product_id,
                    LiveSession.status.in_(PUBLIC),
                    LiveSession.archived_at.is_(None),
                )
                .order_by(LiveSession.id.desc())
            )
        ).all()
        for wanted in PUBLIC:
            for found_id, status in found:
                if status == wanted:
                    return f"/live/{found_id}"
    return "/"


@router.get("/s/{code}")
async def share_link(
    request: Request,
    code: str,
    session: SessionDep,
    user: OptionalUser,
    session_id: Annotated[int | None, Query(alias="session", ge=1, le=2**62)] = None,
    product_id: Annotated[int | None, Query(alias="product", ge=1, le=2**62)] = None,
) -> RedirectResponse:
    """A neighbour's share link: bind the visitor to its sharer, then land in the room (or product)."""
    result = await service.record_visit(
        session,
        code=code[:12],
        anonymous_id=getattr(request.state, "anonymous_id", None),
        user=user,
        session_id=session_id,
        product_id=product_id,
    )
    target = await _landing(session, session_id, product_id)
    separator = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{separator}ref={result.code}", status_code=303)


def _fragment(request: Request, name: str, context: dict[str, object]) -> Markup:
    return Markup(bytes(render(request, name, context).body).decode())


async def room_share_sheet(
    request: Request, session: AsyncSession, live_session: LiveSession, user: User | None
) -> Markup | None:
    """The share sheet, hidden until the payment succeeds in the room (logged-in neighbours only)."""
    if user is None:
        return None
    return _fragment(request, "referral/_share_sheet.html", {"inline": False, "order_id": None})


async def order_share_panel(request: Request, session: AsyncSession, order: Order) -> Markup | None:
    """The poster and share actions on a paid order's page."""
    if order.status not in shares.SHAREABLE:
        return None
    return _fragment(request, "referral/_share_sheet.html", {"inline": True, "order_id": order.id})


room_pages.register_room_section("footer", room_share_sheet, position=20)
order_pages.register_order_panel(order_share_panel, position=30)
register_admin_nav("/admin/referral", "referral.admin_title", order=70)


@router.get("/referral/leaderboard", response_class=HTMLResponse)
async def leaderboard_page(
    request: Request,
    session: SessionDep,
    user: PageUser,
    month: api.MonthQuery = None,
) -> HTMLResponse:
    """The monthly 分享达人榜 of the neighbour's community."""
    code = await service.invite_code_of(session, user.id)
    try:
        board = await api.board(session, user, None, month)
    except NotFound:
        board = None
    return render(
        request,
        "referral/leaderboard.html",
        {"board": board, "code": code, "active_tab": "me"},
    )


async def _admin(
    request: Request, session: AsyncSession, *, saved: bool = False, error: str | None = None
) -> HTMLResponse:
    config = await service.get_referral_settings(session)
    timings = await shares.share_timings(session)
    return render(
        request,
        "referral/admin.html",
        {
            "config": config,
            "timing": shares.summarise(list(timings.values())),
            "ledger": await leaderboard.ledger(session, limit=100),
            "saved": saved,
            "error": error,
        },
        status_code=422 if error else 200,
    )


@router.get("/admin/referral", response_class=HTMLResponse)
async def admin_page(request: Request, session: SessionDep, user: PageOperator) -> HTMLResponse:
    """Operators: the attribution window, first/last touch, leaderboard rewards, pay→share and the ledger."""
    return await _admin(request, session, saved=request.query_params.get("saved") == "1")


@router.post("/admin/referral", response_model=None)
async def admin_save(
    request: Request,
    session: SessionDep,
    user: PageOperator,
    window_days: Annotated[int, Form(ge=1, le=90)],
    top_n: Annotated[int, Form(ge=0, le=50)],
    rewards: Annotated[str, Form(max_length=500)] = "",
    last_touch: Annotated[str | None, Form()] = None,
) -> HTMLResponse | RedirectResponse:
    try:
        ids = [int(part) for part in rewards.replace(",", ",").split(",") if part.strip()]
    except ValueError:
        return await _admin(request, session, error="reward_template_ids: numbers separated by commas")
    try:
        async with session.begin_nested():
            await service.update_referral_settings(
                session,
                actor=user,
                window_days=window_days,
                last_touch=last_touch is not None,
                top_n=top_n,
                reward_template_ids=ids,
            )
    except LinliError as exc:
        return await _admin(request, session, error=exc.message)
    return RedirectResponse("/admin/referral?saved=1", status_code=303)
