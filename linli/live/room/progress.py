"""What the room shows of community group orders: each community's paid units against its threshold
("阳光花园 已集42份,还差8份"), pushed on every ``group_order.progressed``.

Live sits below groupbuy, so it reacts to the event by type name only and reads nothing but the event.
Progress is a latest value per community, so it travels as a hub envelope, not a sequenced message: each
room keeps the newest value per community (by event id, so a value delivered late from another process
never overwrites a newer one) and sends what changed in at most one ``progress`` message per frame, however
many payments a flash sale commits in that time. A room opening reads the latest value of every community
from the event log (``latest``), so a joining viewer's ``state`` has the board.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.events import Event

PROGRESSED = "group_order.progressed"


def entry(event: Event) -> dict[str, Any] | None:
    """A community's counter from a progress event (``e``: the event id, newest wins)."""
    payload = event.payload or {}
    if event.community_id is None or "units" not in payload:
        return None
    return {
        "e": event.id,
        "community_id": event.community_id,
        "community_name": payload.get("community_name", ""),
        "units": int(payload["units"]),
        "threshold": int(payload.get("threshold", 0)),
        "reached": bool(payload.get("reached", False)),
    }


def envelopes_for(event: Event) -> list[dict[str, Any]]:
    if event.type != PROGRESSED:
        return []
    found = entry(event)
    return [{"k": "progress", **found}] if found is not None else []


async def latest(session: AsyncSession, session_id: int) -> dict[str, dict[str, Any]]:
    """The newest progress of every community of the session, keyed by community id (as a string)."""
    newest = (
        select(func.max(Event.id))
        .where(Event.type == PROGRESSED, Event.session_id == session_id)
        .group_by(Event.community_id)
    )
    rows = await session.scalars(select(Event).where(Event.id.in_(newest)))
    found = (entry(event) for event in rows.all())
    return {str(e["community_id"]): e for e in found if e is not None}
