"""Named consumers of the event log: a stored cursor each, at-least-once delivery, one transaction a batch.

A handler runs in the same transaction as the cursor move, so whatever it writes to the database happens
exactly once; anything it does outside (a publish, a webhook) may happen again after a crash, which is why
handlers must be idempotent. A handler that keeps failing is retried on later passes and, after
``max_attempts``, set aside in ``consumer_failures`` so one poisoned event cannot stop the log.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from linli.core.clock import utcnow
from linli.core.db import Base, BigId, Database
from linli.core.events import Event, Position, latest_position, read_events

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Event], Awaitable[None]]


class ConsumerCursor(Base):
    __tablename__ = "consumer_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    txid: Mapped[int] = mapped_column(BigInteger, default=0)
    event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    failing_event_id: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ConsumerFailure(Base):
    __tablename__ = "consumer_failures"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    consumer: Mapped[str] = mapped_column(String(64), index=True)
    event_id: Mapped[int] = mapped_column(BigInteger)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class Consumer:
    name: str
    handler: Handler
    types: frozenset[str] | None = None
    # A new consumer starts at the end of the log unless it must see history (BI rollups do).
    from_beginning: bool = True


@dataclass
class ConsumerRegistry:
    consumers: dict[str, Consumer] = field(default_factory=dict)

    def add(self, consumer: Consumer) -> None:
        if consumer.name in self.consumers:
            raise ValueError(f"consumer {consumer.name!r} registered twice")
        self.consumers[consumer.name] = consumer

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.consumers.values())


async def _load_cursor(session: AsyncSession, consumer: Consumer) -> ConsumerCursor | None:
    """The consumer's cursor row, locked for this transaction; None when another runner holds it.

    A missing row is created here, in this transaction: a runner racing to create it too waits on the
    primary key, fails, and backs off, so only one of them delivers the first batch."""
    postgres = session.get_bind().dialect.name == "postgresql"
    query = select(ConsumerCursor).where(ConsumerCursor.name == consumer.name)
    locked = query.with_for_update(skip_locked=True) if postgres else query
    cursor = await session.scalar(locked)
    if cursor is not None:
        return cursor
    if postgres and await session.scalar(
        select(ConsumerCursor.name).where(ConsumerCursor.name == consumer.name)
    ):
        return None  # it exists, and another runner has it locked
    start = Position() if consumer.from_beginning else await latest_position(session)
    cursor = ConsumerCursor(name=consumer.name, txid=start.txid, event_id=start.id, attempts=0)
    try:
        async with session.begin_nested():
            session.add(cursor)
    except IntegrityError:
        return None  # another runner created it first
    return cursor


async def run_consumer_once(
    db: Database, consumer: Consumer, *, batch_size: int = 200, max_attempts: int = 5
) -> int:
    """Deliver one batch of events to ``consumer``; returns how many events the cursor passed."""
    async with db.sessionmaker() as session:
        cursor = await _load_cursor(session, consumer)
        if cursor is None:
            await session.rollback()
            return 0
        events = await read_events(session, Position(cursor.txid, cursor.event_id), limit=batch_size)
        # The cursor row is written once, at the end: touching it per event would make every savepoint
        # below flush an UPDATE of it first.
        position = Position(cursor.txid, cursor.event_id)
        failing_event_id, attempts = cursor.failing_event_id, cursor.attempts
        passed = 0
        for event in events:
            if consumer.types is None or event.type in consumer.types:
                try:
                    async with session.begin_nested():
                        await consumer.handler(session, event)
                except Exception as exc:
                    attempts = attempts + 1 if failing_event_id == event.id else 1
                    log.exception(
                        "consumer %s failed on event %s (attempt %s)",
                        consumer.name,
                        event.id,
                        attempts,
                    )
                    if attempts < max_attempts:
                        failing_event_id = event.id
                        break
                    session.add(
                        ConsumerFailure(
                            consumer=consumer.name,
                            event_id=event.id,
                            error=f"{type(exc).__name__}: {exc}",
                            attempts=attempts,
                        )
                    )
            position = Position(event.txid, event.id)
            failing_event_id, attempts = None, 0
            passed += 1
        if (position.txid, position.id, failing_event_id, attempts) != (
            cursor.txid,
            cursor.event_id,
            cursor.failing_event_id,
            cursor.attempts,
        ):
            cursor.txid, cursor.event_id = position.txid, position.id
            cursor.failing_event_id, cursor.attempts = failing_event_id, attempts
        await session.commit()
        return passed


async def drain(db: Database, registry: ConsumerRegistry, *, batch_size: int = 200) -> int:
    """Run every consumer until none has anything left; for tests and the CLI."""
    total = 0
    while True:
        moved = 0
        for consumer in registry:
            moved += await run_consumer_once(db, consumer, batch_size=batch_size)
        total += moved
        if moved == 0:
            return total
