"""The event log (transactional outbox): every state change others care about, in its own transaction.

Ordering on PostgreSQL: sequence values are taken before commit, so a reader that went by id alone could
pass over a slow transaction's event with a lower id. Each event therefore also carries the id of the
transaction that wrote it (``txid``) and readers go by ``(txid, id)``, reading only transactions older
than the oldest one of this database still running (``_HORIZON``): nothing can later appear behind the
cursor. The price is latency, not loss: a long write transaction holds every consumer at its start.
On SQLite writers are serialised, so ``txid`` is always 0 and ids alone are in commit order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import JSON, BigInteger, Index, String, Table, func, insert, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from linli.core.clock import utcnow
from linli.core.db import Base, BigId, note_appended_events

PG_TXID = "(pg_current_xact_id()::text::bigint)"

# The read horizon on PostgreSQL: every transaction of this database with a lower id has ended, and every
# one still to write will get a higher id. It is the least of
# - the statement snapshot's xmax (ids from there on are not yet handed out, or not yet visible);
# - the reader's own id, if it has one (it locked its cursor row): it must not pass events it appends;
# - the ids the snapshot sees in progress, except those known to belong to another database, whose
#   transactions cannot write our tables. ``pg_snapshot_xmin`` alone would count them too, and let one
#   long transaction anywhere on the server stall every consumer. An id whose backend cannot be seen
#   (ended since, a prepared transaction, no privilege) counts, so the horizon only ever errs by waiting.
_HORIZON = text(
    """(
    SELECT LEAST(
        pg_snapshot_xmax(snap)::text::bigint,
        pg_current_xact_id_if_assigned()::text::bigint,
        (SELECT min(running::text::bigint)
           FROM pg_snapshot_xip(snap) AS running
          WHERE NOT EXISTS (
                SELECT 1 FROM pg_stat_activity AS backend
                 WHERE backend.backend_xid::text::bigint = mod(running::text::bigint, 4294967296)
                   AND backend.datid <> (SELECT oid FROM pg_database WHERE datname = current_database())
          ))
    ) FROM pg_current_snapshot() AS snap
)"""
)


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


def event_row(
    type: str,
    *,
    actor_id: int | None = None,
    subjects: Subjects | None = None,
    payload: dict[str, Any] | None = None,
    occurred_at: datetime,
) -> dict[str, Any]:
    """The columns of one event, for ``append_events``."""
    s = subjects or Subjects()
    return {
        "type": type,
        "actor_id": actor_id,
        "user_id": s.user_id,
        "anonymous_id": s.anonymous_id,
        "session_id": s.session_id,
        "community_id": s.community_id,
        "order_id": s.order_id,
        "product_id": s.product_id,
        "payload": payload or {},
        "occurred_at": occurred_at,
    }


async def append_events(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Append many events at once (``event_row``s, one statement) inside the caller's transaction: for a
    verb that changes many rows in one go. Like ``record_event``, they exist only if that commits."""
    if not rows:
        return
    await session.execute(insert(cast(Table, Event.__table__)), rows)
    note_appended_events(session, [(row["type"], row["user_id"]) for row in rows])


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
    if _is_postgres(session):
        query = query.where(Event.txid < _HORIZON)
    if types is not None:
        query = query.where(Event.type.in_(sorted(types)))
    query = query.order_by(Event.txid, Event.id).limit(limit)
    return list((await session.scalars(query)).all())


async def latest_position(session: AsyncSession) -> Position:
    """The end of the log for a reader starting now: behind it only events already committed.

    On PostgreSQL that is the read horizon, not the highest ``(txid, id)``: a transaction still running
    may yet commit an event with a lower ``txid``, and a reader starting at the highest would pass it.
    Events committed by transactions newer than the horizon are ahead of it (delivered, not lost)."""
    if _is_postgres(session):
        horizon = await session.scalar(select(_HORIZON))
        return Position(txid=int(horizon or 0), id=0)
    row = (await session.execute(select(func.max(Event.txid), func.max(Event.id)))).one()
    return Position(txid=row[0] or 0, id=row[1] or 0)


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"
