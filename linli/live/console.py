"""What the host console shows beside the stream, read in one go: viewers, the comment rate over the last
few minutes, and the units left of each item. The console keeps these live from the room's socket; this is
the poll that corrects them (a console opened mid-session knows no comment history, and a console whose
socket dropped has stale stock)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.clock import utcnow
from linli.core.runtime import Runtime
from linli.live.models import Comment, LiveSession
from linli.live.room import service as room_service
from linli.live.room.fanout import RoomRegistry

RATE_WINDOW_MINUTES = 5


@dataclass(frozen=True)
class ConsoleStats:
    viewers: int | None
    comments_in_window: int
    window_minutes: int
    items: list[dict[str, Any]]

    @property
    def comments_per_minute(self) -> float:
        return round(self.comments_in_window / self.window_minutes, 1)


def viewers_now(runtime: Runtime | None, session_id: int) -> int | None:
    """Viewers of the room as this process's open room counts them (its own sockets plus the other
    processes' presence); None when no room is open here, rather than a misleading 0."""
    registry = runtime.extras.get("live.rooms") if runtime is not None else None
    if not isinstance(registry, RoomRegistry):
        return None
    room = registry.rooms.get(session_id)
    if room is None or room.closed:
        return None
    return room.viewer_count()


async def console_stats(
    session: AsyncSession,
    live_session: LiveSession,
    *,
    runtime: Runtime | None = None,
    now: datetime | None = None,
) -> ConsoleStats:
    """Read only; the caller checks that the user may moderate the room."""
    now = now or utcnow()
    since = now - timedelta(minutes=RATE_WINDOW_MINUTES)
    count = await session.scalar(
        select(func.count())
        .select_from(Comment)
        .where(
            Comment.session_id == live_session.id,
            Comment.deleted_at.is_(None),
            Comment.created_at >= since,
        )
    )
    left = await room_service.stock_left(session, live_session.id)
    items = [
        {"item_id": item.id, "name": item.product.name, "stock_left": left.get(item.id, 0)}
        for item in live_session.current_lineup
    ]
    return ConsoleStats(
        viewers=viewers_now(runtime, live_session.id),
        comments_in_window=int(count or 0),
        window_minutes=RATE_WINDOW_MINUTES,
        items=items,
    )
