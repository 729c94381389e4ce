"""The room's pages: the neighbours' live room ``/live/{id}`` (mobile) and the host console
``/host/{id}`` (desktop, beside the stream). Both render the room as it is now; ``static/js/live/``
then keeps it current over the room's WebSocket."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.deps import SessionDep
from linli.core.templating import render
from linli.identity.deps import OptionalUser, PageHost
from linli.live import comments, service
from linli.live.models import LiveSession, RoomState
from linli.live.room import service as room_service

router = APIRouter(include_in_schema=False)

# "仅剩最后N份" from this many units down.
LOW_STOCK = 100


async def _room(session: AsyncSession, live_session: LiveSession) -> dict[str, Any]:
    row = await session.get(RoomState, live_session.id)
    lineup = room_service.lineup_view(live_session)
    pinned = row.pinned_item_id if row is not None else None
    lineup.sort(key=lambda item: item["id"] != pinned)
    return {
        "s": live_session,
        "lineup": lineup,
        "pinned_item_id": pinned,
        "likes": row.like_count if row is not None else 0,
        "low_stock": LOW_STOCK,
    }


@router.get("/live/{session_id}", response_class=HTMLResponse)
async def room_page(
    request: Request, session_id: int, session: SessionDep, user: OptionalUser
) -> HTMLResponse:
    """The live room; ``?ref=`` (a share link's invite code) is kept on the page for later issues."""
    live_session = await service.get_public_session(session, session_id)
    context = await _room(session, live_session)
    ref = request.query_params.get("ref", "")[:64]
    return render(request, "live/room.html", {**context, "ref": ref, "active_tab": "home"})


@router.get("/host/{session_id}", response_class=HTMLResponse)
async def host_console(
    request: Request, session_id: int, session: SessionDep, user: PageHost
) -> HTMLResponse:
    """The host console: the session's host or an operator."""
    live_session = await service.get_session(session, session_id)
    comments.require_moderator(live_session, user)
    return render(request, "live/host.html", await _room(session, live_session))
