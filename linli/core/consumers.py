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
BatchHandler = Callable[[AsyncSession, list[Event]], Awaitable[None]]


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
    # Consumers in the same lane run one after another; each lane runs on its own. A consumer someone
    # is watching the clock for (the live room's) gets a lane of its own, so its latency is its own pass
    # and not the sum of every other consumer's.
    lane: str = "default"
    # Work nobody is watching the clock for (a group's count, a poster drawn ahead): during a rush it
    # waits for a quiet moment, up to ``consumer_yield_seconds`` a batch, so the requests go first — and
    # then takes what piled up in one batch.
    yields_to_requests: bool = False
    # Set-based handling of a straight run: all of the batch's events of its types at once, in log
    # order, with the same effect as ``handler`` on each in turn — 200 paid orders in a few statements
    # instead of a few each (``batching`` builds one). Should it raise, the batch runs again event by
    # event with ``handler``, as after any failure.
    batch_handler: BatchHandler | None = None


def batching(kind: str, run: BatchHandler, handler: Handler) -> BatchHandler:
    """A ``batch_handler`` that hands each run of consecutive ``kind`` events to ``run`` at once and
    every other event to ``handler``, keeping log order between them (a refund after a payment in the
    same batch is handled after that payment's run)."""

    async def handle(session: AsyncSession, events: list[Event]) -> None:
        pending: list[Event] = []
        for event in events:
            if event.type == kind:
                pending.append(event)
                continue
            if pending:
                await run(session, pending)
                pending = []
            await handler(session, event)
        if pending:
            await run(session, pending)

    return handle


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


@dataclass(frozen=True, slots=True)
class Pass:
    """What one pass of a consumer did: events its cursor passed, and how many of them were its types
    (the others it only stepped over)."""

    passed: int = 0
    handled: int = 0
    # Another runner (another process) held the consumer's cursor: it is busy there right now.
    elsewhere: bool = False


async def run_consumer_once(
    db: Database, consumer: Consumer, *, batch_size: int = 200, max_attempts: int = 5
) -> int:
    """Deliver one batch of events to ``consumer``; returns how many events the cursor passed."""
    return (await consume(db, consumer, batch_size=batch_size, max_attempts=max_attempts)).passed


async def consume(db: Database, consumer: Consumer, *, batch_size: int = 200, max_attempts: int = 5) -> Pass:
    """One batch of events to ``consumer`` (``run_consumer_once``), saying how many were its own.

    The batch first runs straight through, without a savepoint per event: two round trips fewer per
    event, which is what a busy process pays most for (each waits its turn on the event loop). Should a
    handler raise, the whole transaction is rolled back and the batch runs again event by event, each in
    its own savepoint, up to the event that failed, whose failure is counted (it is not run a third
    time). Handlers are idempotent: the events before it being handled twice is what at-least-once
    delivery allows. A consumer with a ``batch_handler`` takes its straight run in one call; when that
    raises, the careful run goes through every event with ``handler`` (the failing one runs a second
    time, and is counted then)."""
    async with db.sessionmaker() as session:
        failed: list[tuple[int | None, Exception]] = []
        result = await _deliver(session, consumer, batch_size, max_attempts, failed=failed)
        if failed:
            await session.rollback()
            result = await _deliver(session, consumer, batch_size, max_attempts, failed=failed)
        await session.commit()
        return result


async def _deliver(
    session: AsyncSession,
    consumer: Consumer,
    batch_size: int,
    max_attempts: int,
    *,
    failed: list[tuple[int | None, Exception]],
) -> Pass:
    """Hand a batch to the consumer's handler and move its cursor (not committed yet).

    With ``failed`` empty, a straight run: the first handler to raise ends it, its event id and error put
    in ``failed``. Otherwise a careful run, one savepoint per event, where that failure is counted without
    running the event again."""
    careful = bool(failed)
    cursor = await _load_cursor(session, consumer)
    if cursor is None:
        await session.rollback()
        return Pass(elsewhere=True)
    events = await read_events(session, Position(cursor.txid, cursor.event_id), limit=batch_size)
    # The cursor row is written once, at the end: touching it per event would make every savepoint
    # below flush an UPDATE of it first.
    position = Position(cursor.txid, cursor.event_id)
    failing_event_id, attempts = cursor.failing_event_id, cursor.attempts
    if consumer.batch_handler is not None and not careful:
        return await _deliver_at_once(session, consumer, consumer.batch_handler, cursor, events, failed)
    passed = handled = 0
    for event in events:
        if consumer.types is None or event.type in consumer.types:
            handled += 1
            try:
                if not careful:
                    try:
                        await consumer.handler(session, event)
                    except Exception as exc:
                        failed.append((event.id, exc))
                        return Pass()
                elif event.id == failed[0][0]:  # None after a batch handler: run them all again
                    raise failed[0][1]
                else:
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
    _move_cursor(cursor, position, failing_event_id, attempts)
    return Pass(passed, handled)


async def _deliver_at_once(
    session: AsyncSession,
    consumer: Consumer,
    batch_handler: BatchHandler,
    cursor: ConsumerCursor,
    events: list[Event],
    failed: list[tuple[int | None, Exception]],
) -> Pass:
    """A straight run through the consumer's ``batch_handler``: its events in one call, the cursor past
    the whole batch. A failure cannot be pinned on one event here: it is put in ``failed`` without an
    id, and the careful run that follows handles every event again, one by one."""
    mine = [e for e in events if consumer.types is None or e.type in consumer.types]
    if mine:
        try:
            await batch_handler(session, mine)
        except Exception as exc:
            log.warning(
                "consumer %s: a batch of %s events failed; handling them one by one",
                consumer.name,
                len(mine),
                exc_info=True,
            )
            failed.append((None, exc))
            return Pass()
    if events:
        _move_cursor(cursor, Position(events[-1].txid, events[-1].id), None, 0)
    return Pass(len(events), len(mine))


def _move_cursor(
    cursor: ConsumerCursor, position: Position, failing_event_id: int | None, attempts: int
) -> None:
    """Write the cursor row only when something changed (an unchanged one costs no UPDATE)."""
    if (position.txid, position.id, failing_event_id, attempts) != (
        cursor.txid,
        cursor.event_id,
        cursor.failing_event_id,
        cursor.attempts,
    ):
        cursor.txid, cursor.event_id = position.txid, position.id
        cursor.failing_event_id, cursor.attempts = failing_event_id, attempts


async def ensure_cursors(db: Database, registry: ConsumerRegistry) -> None:
    """Give every consumer its cursor now. A consumer that starts at the end of the log starts where its
    cursor is first made: made lazily by the first pass, which may come after requests already committed
    events (a pin, a comment), it would never see them. So the app makes them before serving."""
    for consumer in registry:
        async with db.sessionmaker() as session:
            await _load_cursor(session, consumer)
            await session.commit()


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
