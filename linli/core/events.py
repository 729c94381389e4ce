"""The event log (transactional outbox): every state change others care about, in its own transaction.

Ordering on PostgreSQL: sequence values are taken before commit, so a reader that went by id alone could
pass over a slow transaction's event with a lower id. Each event therefore also carries the id of the
transaction that wrote it (``txid``) and readers go by ``(txid, id)``, reading only transactions older
than the oldest one still running (``pg_snapshot_xmin``): nothing can later appear behind the cursor.
On SQLite writers are serialised, so ``txid`` is always 0 and ids alone are in commit order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String, func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from linli.core.clock import utcnow
from linli.core.db import Base, BigId

PG_TXID = "(pg_current_xact_id()::text::bigint)"


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    txid: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    type: Mapped[str] = mapped_column(String(64), index=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    anonymous_id: Mapped[str | None] = mapped_column(String(64))
    session_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    community_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    product_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_events_txid_id", "txid", "id"),)


@dataclass(frozen=True, slots=True)
class Subjects:
    """The ids an event is about; any may be absent."""

    user_id: int | None = None
    anonymous_id: str | None = None
    session_id: int | None = None
    community_id: int | None = None
    order_id: int | None = None
    product_id: int | None = None


def record_event(
    session: AsyncSession,
    type: str,
    *,
    actor_id: int | None = None,
    subjects: Subjects | None = None,
    payload: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> Event:
    """Append an event to the log inside the caller's transaction; it exists only if that commits."""
    s = subjects or Subjects()
    event = Event(
        type=type,
        actor_id=actor_id,
        user_id=s.user_id,
        anonymous_id=s.anonymous_id,
        session_id=s.session_id,
        community_id=s.community_id,
        order_id=s.order_id,
        product_id=s.product_id,
        payload=payload or {},
        occurred_at=occurred_at or utcnow(),
    )
    session.add(event)
    return event


@dataclass(frozen=True, slots=True)
class Position:
    """A reader's place in the log: the last ``(txid, id)`` it has seen."""

    txid: int = 0
    id: int = 0


async def read_events(
    session: AsyncSession,
    after: Position,
    *,
    limit: int = 200,
    types: frozenset[str] | None = None,
) -> list[Event]:
    """Committed events after ``after`` in log order, never one that a running transaction may still add
    behind them."""
    query = select(Event).where(tuple_(Event.txid, Event.id) > tuple_(after.txid, after.id))
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        horizon = text("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        query = query.where(Event.txid < horizon)
    if types is not None:
        query = query.where(Event.type.in_(sorted(types)))
    query = query.order_by(Event.txid, Event.id).limit(limit)
    return list((await session.scalars(query)).all())


async def latest_position(session: AsyncSession) -> Position:
    row = (await session.execute(select(func.max(Event.txid), func.max(Event.id)))).one()
    return Position(txid=row[0] or 0, id=row[1] or 0)
