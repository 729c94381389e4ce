"""The shell's own pages: the neighbour home and the admin console's front page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from linli.community import service as community_service
from linli.core.deps import SessionDep
from linli.core.templating import register_admin_nav, render
from linli.identity.deps import OptionalUser, PageOperator
from linli.live import service as live_service

router = APIRouter(include_in_schema=False)
register_admin_nav("/admin", "admin.dashboard", order=0)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, session: SessionDep, user: OptionalUser) -> HTMLResponse:
    """Live and upcoming sessions for the neighbour's community (every session for visitors)."""
    community = None
    if user is not None:
        community = await community_service.community_of(session, user.id)
    sessions = await live_service.list_home_sessions(session, community.id if community is not None else None)
    live_now = [s for s in sessions if s.status == "live"]
    upcoming = [s for s in sessions if s.status != "live"]
    return render(
        request,
        "web/home.html",
        {"community": community, "live_now": live_now, "upcoming": upcoming, "active_tab": "home"},
    )


@router.get("/admin", response_class=HTMLResponse)
async def admin_home(request: Request, session: SessionDep, user: PageOperator) -> HTMLResponse:
    sessions = await live_service.list_home_sessions(session, None)
    return render(request, "web/admin_home.html", {"sessions": sessions})
