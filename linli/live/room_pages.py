"""The room's pages: the neighbours' live room ``/live/{id}`` (mobile) and the host console
``/host/{id}`` (desktop, beside the stream). Both render the room as it is now; ``static/js/live/``
then keeps it current over the room's WebSocket."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.deps import SessionDep
from linli.core.templating import render
from linli.identity.deps import OptionalUser, PageHost
from linli.identity.models import User
from linli.live import comments, service
from linli.live.models import LiveSession, RoomState
from linli.live.room import service as room_service

router = APIRouter(include_in_schema=False)

# "仅剩最后N份" from this many units down.
LOW_STOCK = 100

# What higher domains add to the room page (the community progress bar, share tools, testimonials): each
# section gets the request, the session, the live session and the viewer (None when logged out) and
# returns rendered HTML (its own markup and ``<script type="module">``) or None. Live sits below those
# domains, so they register here (``register_room_section``) instead of being imported.
RoomSection = Callable[[Request, AsyncSession, LiveSession, User | None], Awaitable[Markup | None]]
ROOM_SECTIONS: dict[str, list[tuple[int, RoomSection]]] = {}
# Where a section can go: above the comment bar (``ticker``), above the lineup (``progress``), at the
# end of the page (``footer``).
ROOM_PLACES = frozenset({"ticker", "progress", "footer"})


def register_room_section(place: str, section: RoomSection, *, position: int = 50) -> None:
    """Add a section to the neighbours' room page at ``place``; lower ``position`` comes first."""
    if place not in ROOM_PLACES:
        raise ValueError(f"unknown room place {place!r}")
    entries = ROOM_SECTIONS.setdefault(place, [])
    if all(existing is not section for _, existing in entries):
        entries.append((position, section))
        entries.sort(key=lambda entry: entry[0])


async def _sections(
    request: Request, session: AsyncSession, live_session: LiveSession, user: User | None
) -> dict[str, Markup]:
    placed: dict[str, Markup] = {}
    for place in ROOM_PLACES:
        rendered = [
            await section(request, session, live_session, user) for _, section in ROOM_SECTIONS.get(place, [])
        ]
        placed[place] = Markup("").join(html for html in rendered if html)
    return placed


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
    sections = await _sections(request, session, live_session, user)
    return render(
        request, "live/room.html", {**context, "ref": ref, "sections": sections, "active_tab": "home"}
    )


@router.get("/host/{session_id}", response_class=HTMLResponse)
async def host_console(
    request: Request, session_id: int, session: SessionDep, user: PageHost
) -> HTMLResponse:
    """The host console: the session's host or an operator."""
    live_session = await service.get_session(session, session_id)
    comments.require_moderator(live_session, user)
    return render(request, "live/host.html", await _room(session, live_session))
