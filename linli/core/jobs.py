"""Durable timers: jobs stored with their run-at time, claimed with a lease, fired after any restart.

A job is scheduled inside the caller's transaction (it exists only if that commits). Runners claim due
jobs with a lease, so a crashed runner's job is taken again once its lease lapses; handlers must therefore
be idempotent. A keyed job is unique: scheduling the same key twice returns the first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from linli.core.clock import utcnow
from linli.core.db import Base, BigId, Database, insert_unless_taken

log = logging.getLogger(__name__)

PENDING, RUNNING, DONE, FAILED, CANCELLED = "pending", "running", "done", "failed", "cancelled"


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    key: Mapped[str | None] = mapped_column(String(191), unique=True)
    run_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_jobs_status_run_at", "status", "run_at"),)


JobHandler = Callable[[AsyncSession, Job], Awaitable[None]]


@dataclass
class JobRegistry:
    handlers: dict[str, JobHandler] = field(default_factory=dict)
    # Kinds whose due jobs run one after another, in order (a WeCom robot's messages keep their order
    # and its per-minute window is counted one send at a time); other kinds run side by side.
    serial: set[str] = field(default_factory=set)

    def add(self, kind: str, handler: JobHandler, *, serial: bool = False) -> None:
        if kind in self.handlers:
            raise ValueError(f"job kind {kind!r} registered twice")
        self.handlers[kind] = handler
        if serial:
            self.serial.add(kind)


async def schedule_job(
    session: AsyncSession,
    kind: str,
    run_at: datetime,
    payload: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    max_attempts: int = 8,
) -> Job:
    """Schedule ``kind`` to run at ``run_at`` in the caller's transaction.

    A known ``key`` returns the existing job unchanged (also when a concurrent transaction scheduled it
    first), unless that job was cancelled: then it is scheduled again with the new time and payload."""
    values: dict[str, Any] = {
        "kind": kind,
        "key": key,
        "run_at": run_at,
        "payload": payload or {},
        "status": PENDING,
        "attempts": 0,
        "max_attempts": max_attempts,
        "created_at": utcnow(),
    }
    if key is None:
        job = Job(**values)
        session.add(job)
        await session.flush()
        return job
    # One statement in the usual case (a new key); the unique key decides a race with another
    # transaction scheduling it too.
    new = await insert_unless_taken(session, Job, values, key=["key"])
    if new is not None:
        return new
    found = select(Job).where(Job.key == key).execution_options(populate_existing=True)
    existing = await session.scalar(found)
    if existing is None:
        raise RuntimeError(f"job key {key!r} conflicted but no job holds it")
    if existing.status == CANCELLED:
        existing.kind, existing.run_at, existing.payload = kind, run_at, payload or {}
        existing.status, existing.attempts, existing.max_attempts = PENDING, 0, max_attempts
        existing.locked_until = existing.last_error = existing.finished_at = None
        await session.flush()
    return existing


# Built once: every paid order cancels its expiry timer, and building it cost as much as running it.
_CANCEL = (
    update(Job)
    .where(Job.key == bindparam("job_key"), Job.status == PENDING)
    .values(status=CANCELLED, finished_at=bindparam("cancelled_at"))
)


async def cancel_job(session: AsyncSession, key: str) -> bool:
    """Cancel a pending keyed job; returns whether one was cancelled."""
    result = await session.execute(_CANCEL, {"job_key": key, "cancelled_at": utcnow()})
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def _claim(db: Database, now: datetime, lease: timedelta, limit: int) -> list[Job]:
    async with db.sessionmaker() as session:
        due = or_(
            Job.status == PENDING,
            # A runner that died mid-job: its lease has lapsed.
            (Job.status == RUNNING) & (Job.locked_until < now),
        )
        query = select(Job).where(due, Job.run_at <= now).order_by(Job.run_at, Job.id).limit(limit)
        if db.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claimed = []
        for job in (await session.scalars(query)).all():
            if job.status == RUNNING and job.attempts >= job.max_attempts:
                # Its runners keep dying on it (a poison job): stop taking them down with it.
                log.error("job %s (%s) lost its runner %s time(s); giving up", job.id, job.kind, job.attempts)
                job.status = FAILED
                job.finished_at = now
                job.locked_until = None
                job.last_error = f"runner lost {job.attempts} time(s): lease lapsed while running"
                continue
            job.status = RUNNING
            job.locked_until = now + lease
            job.attempts += 1
            claimed.append(job)
        await session.commit()
        return claimed


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(2**attempts, 3600))


async def run_due_jobs(
    db: Database,
    registry: JobRegistry,
    *,
    now: datetime | None = None,
    lease_seconds: int = 60,
    limit: int = 50,
    concurrency: int = 8,
) -> int:
    """Fire every job due by ``now`` (up to ``limit``); each runs in its own transaction with its
    completion, up to ``concurrency`` at a time — jobs are independent, and many wait on another party
    (a notification's receiver, a provider), so running them one after another made the slowest answer
    everyone's pace. A serial kind's jobs form one line, run in the order they were due."""
    now = now or utcnow()
    jobs = await _claim(db, now, timedelta(seconds=lease_seconds), limit)
    lines: dict[str | int, list[Job]] = {}
    for claimed in jobs:
        lines.setdefault(claimed.kind if claimed.kind in registry.serial else claimed.id, []).append(claimed)
    gate = asyncio.Semaphore(max(1, concurrency))

    async def run(line: list[Job]) -> None:
        for claimed in line:
            async with gate:
                await _run_claimed(db, registry, claimed, now)

    if len(lines) == 1 or concurrency <= 1:
        for line in lines.values():
            await run(line)
    else:
        await asyncio.gather(*(run(line) for line in lines.values()))
    return len(jobs)


async def _run_claimed(db: Database, registry: JobRegistry, claimed: Job, now: datetime) -> None:
    handler = registry.handlers.get(claimed.kind)
    async with db.sessionmaker() as session:
        # The row as the claim left it, without reading it again: no statement before the handler's own
        # (a delivery holds no transaction while it waits on the network), one UPDATE to complete it.
        job = await session.merge(claimed, load=False)
        try:
            if handler is None:
                raise LookupError(f"no handler for job kind {job.kind!r}")
            await handler(session, job)
            job.status = DONE
            job.finished_at = utcnow()
            job.locked_until = None
            await session.commit()
            return
        except Exception as exc:
            log.exception("job %s (%s) failed, attempt %s", job.id, job.kind, job.attempts)
            await session.rollback()
            error = f"{type(exc).__name__}: {exc}"
    async with db.sessionmaker() as session:
        again = await session.get(Job, claimed.id)
        assert again is not None
        again.last_error = error
        again.locked_until = None
        if again.attempts >= again.max_attempts:
            again.status = FAILED
            again.finished_at = utcnow()
        else:
            again.status = PENDING
            again.run_at = now + _backoff(again.attempts)
        await session.commit()


async def next_run_at(db: Database) -> datetime | None:
    async with db.sessionmaker() as session:
        return await session.scalar(
            select(Job.run_at).where(Job.status == PENDING).order_by(Job.run_at).limit(1)
        )
