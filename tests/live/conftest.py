from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from linli.core.db import Database
from linli.core.events import Event
from linli.live.models import LineupItem, LiveSession, SessionCommunity


@dataclass(frozen=True)
class Counts:
    sessions: int
    targets: int
    lineup: int
    events: int


async def count_rows(db: Database) -> Counts:
    """What exists, to prove a refused request wrote nothing."""
    async with db.sessionmaker() as session:
        values = [
            await session.scalar(select(func.count()).select_from(model))
            for model in (LiveSession, SessionCommunity, LineupItem, Event)
        ]
    return Counts(*(v or 0 for v in values))
