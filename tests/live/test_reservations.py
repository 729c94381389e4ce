"""Reservations (预约): reserving an upcoming session, the durable reminder 10 minutes before its start
(which follows a reschedule and survives a restart), and the inbox message when the host goes live."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from linli import live
from linli.community import inbox
from linli.community.models import InboxItem
from linli.core.clock import utcnow
from linli.core.config import Settings
from linli.core.consumers import ConsumerRegistry, drain
from linli.core.db import Database
from linli.core.events import Event
from linli.core.hub import LocalHub
from linli.core.jobs import CANCELLED, DONE, PENDING, Job, run_due_jobs
from linli.core.runtime import Runtime
from linli.identity.models import User
from linli.live import reservations, service
from linli.live.models import LiveSession, Reservation, SessionStatus
from linli.live.schemas import LiveSessionUpdate
from tests.factories import Caller, make_user, make_user_with_token
from tests.live.factories import make_host, make_session


async def _scheduled(
    db: Database, *, start: datetime | None = None, status: SessionStatus = SessionStatus.scheduled
) -> LiveSession:
    async with db.sessionmaker() as session:
        host = await make_host(session)
        live_session = await make_session(
            session, status=status, host=host, scheduled_start=start or utcnow() + timedelta(hours=2)
        )
        await session.commit()
        return live_session


async def _users(db: Database, n: int) -> list[User]:
    async with db.sessionmaker() as session:
        users = [await make_user(session) for _ in range(n)]
        await session.commit()
        return users


async def _reserve(db: Database, live_session_id: int, *users: User) -> None:
    async with db.sessionmaker() as session:
        live_session = await service.get_session(session, live_session_id)
        for user in users:
            await reservations.reserve(session, live_session, user)
        await session.commit()


async def _jobs(db: Database, session_id: int) -> list[Job]:
    async with db.sessionmaker() as session:
        rows = await session.scalars(
            select(Job).where(Job.key.like(f"{reservations.REMIND}:{session_id}:%")).order_by(Job.id)
        )
        return list(rows.all())


async def _inbox(db: Database, user_id: int, kind: str | None = None) -> list[InboxItem]:
    async with db.sessionmaker() as session:
        query = select(InboxItem).where(InboxItem.user_id == user_id)
        if kind is not None:
            query = query.where(InboxItem.kind == kind)
        return list((await session.scalars(query.order_by(InboxItem.id))).all())


async def _event_count(db: Database, type_: str) -> int:
    async with db.sessionmaker() as session:
        return int(
            await session.scalar(select(func.count()).select_from(Event).where(Event.type == type_)) or 0
        )


def _consumers() -> ConsumerRegistry:
    registry = ConsumerRegistry()
    registry.add(reservations.reservations_consumer())
    return registry


class TestReserve:
    async def test_reserving_counts_once_and_schedules_the_reminder(self, db: Database) -> None:
        live_session = await _scheduled(db)
        [user] = await _users(db, 1)
        await _reserve(db, live_session.id, user)
        await _reserve(db, live_session.id, user)  # a double tap
        async with db.sessionmaker() as session:
            assert await reservations.count(session, live_session.id) == 1
            assert await reservations.has_reserved(session, live_session.id, user.id)
        assert await _event_count(db, reservations.RESERVED) == 1
        [job] = await _jobs(db, live_session.id)
        assert job.status == PENDING
        assert job.run_at == live_session.scheduled_start - timedelta(minutes=10)

    @pytest.mark.parametrize("status", [SessionStatus.draft, SessionStatus.live, SessionStatus.ended])
    async def test_only_an_upcoming_session_takes_reservations(
        self, db: Database, status: SessionStatus
    ) -> None:
        live_session = await _scheduled(db, status=status)
        [user] = await _users(db, 1)
        with pytest.raises(reservations.SessionNotReservable):
            await _reserve(db, live_session.id, user)
        assert await _event_count(db, reservations.RESERVED) == 0
        assert await _jobs(db, live_session.id) == []

    async def test_cancel_then_reserve_again(self, db: Database) -> None:
        live_session = await _scheduled(db)
        [user] = await _users(db, 1)
        await _reserve(db, live_session.id, user)
        async with db.sessionmaker() as session:
            loaded = await service.get_session(session, live_session.id)
            assert await reservations.cancel(session, loaded, user)
            assert not await reservations.cancel(session, loaded, user)
            assert await reservations.count(session, live_session.id) == 0
            await session.commit()
        # Nobody left to remind: the timer is off.
        assert [j.status for j in await _jobs(db, live_session.id)] == [CANCELLED]
        await _reserve(db, live_session.id, user)
        assert [j.status for j in await _jobs(db, live_session.id)] == [PENDING]
        async with db.sessionmaker() as session:
            rows = await session.scalar(select(func.count()).select_from(Reservation))
        assert rows == 1
        assert (
            await _event_count(db, reservations.RESERVED),
            await _event_count(db, reservations.UNRESERVED),
        ) == (2, 1)

    async def test_concurrent_reserves_of_one_neighbour_keep_one_row(self, db: Database) -> None:
        live_session = await _scheduled(db)
        [user] = await _users(db, 1)
        await asyncio.gather(*(_reserve(db, live_session.id, user) for _ in range(4)))
        async with db.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(Reservation)) == 1
            assert await reservations.count(session, live_session.id) == 1


class TestReminder:
    async def test_fires_ten_minutes_before_after_a_restart(self, settings: Settings, db: Database) -> None:
        live_session = await _scheduled(db)
        alice, bob, carol = await _users(db, 3)
        await _reserve(db, live_session.id, alice, bob, carol)
        async with db.sessionmaker() as session:
            await reservations.cancel(session, await service.get_session(session, live_session.id), carol)
            await session.commit()
        await db.dispose()  # the process that took the reservations is gone

        restarted = Runtime(settings=settings, db=Database(settings.database_url), hub=LocalHub())
        live.register_background(restarted)
        try:
            due = live_session.scheduled_start - timedelta(minutes=10)
            assert await run_due_jobs(restarted.db, restarted.jobs, now=due - timedelta(seconds=1)) == 0
            assert await _inbox(restarted.db, alice.id) == []
            assert await run_due_jobs(restarted.db, restarted.jobs, now=due) == 1
            for user in (alice, bob):
                [item] = await _inbox(restarted.db, user.id)
                assert item.kind == reservations.KIND_REMINDER
                assert item.link == f"/live/{live_session.id}"
                assert live_session.title in item.title
            assert await _inbox(restarted.db, carol.id) == []  # cancelled: not reminded
            [job] = await _jobs(restarted.db, live_session.id)
            assert (job.status, job.last_error) == (DONE, None)

            # A runner that died after notifying runs the job again: nobody gets it twice.
            async with restarted.db.sessionmaker() as session:
                again = await session.get(Job, job.id)
                assert again is not None
                await reservations.remind_job(session, again)
                await session.commit()
            assert len(await _inbox(restarted.db, alice.id)) == 1
        finally:
            await restarted.db.dispose()

    async def test_a_rescheduled_session_moves_its_reminder(self, runtime: Runtime, db: Database) -> None:
        live.register_background(runtime)
        live_session = await _scheduled(db)
        [user] = await _users(db, 1)
        await _reserve(db, live_session.id, user)
        old_due = live_session.scheduled_start - timedelta(minutes=10)
        new_start = live_session.scheduled_start + timedelta(hours=3)
        async with db.sessionmaker() as session:
            loaded = await service.get_session(session, live_session.id)
            await service.update_session(
                session, loaded, LiveSessionUpdate(scheduled_start=new_start), actor=None
            )
            await session.commit()
        await drain(db, _consumers())

        jobs = await _jobs(db, live_session.id)
        assert [j.status for j in jobs] == [CANCELLED, PENDING]
        assert jobs[1].run_at == new_start - timedelta(minutes=10)
        assert await run_due_jobs(db, runtime.jobs, now=old_due + timedelta(minutes=1)) == 0
        assert await _inbox(db, user.id) == []
        assert await run_due_jobs(db, runtime.jobs, now=new_start - timedelta(minutes=10)) == 1
        [item] = await _inbox(db, user.id)
        assert item.kind == reservations.KIND_REMINDER

    async def test_a_stale_timer_reminds_no_one_even_before_the_consumer_caught_up(
        self, runtime: Runtime, db: Database
    ) -> None:
        live.register_background(runtime)
        live_session = await _scheduled(db)
        [user] = await _users(db, 1)
        await _reserve(db, live_session.id, user)
        async with db.sessionmaker() as session:
            loaded = await service.get_session(session, live_session.id)
            new_start = live_session.scheduled_start + timedelta(days=1)
            await service.update_session(
                session, loaded, LiveSessionUpdate(scheduled_start=new_start), actor=None
            )
            await session.commit()
        # No drain: the old job is still pending and comes due.
        assert await run_due_jobs(db, runtime.jobs, now=live_session.scheduled_start) == 1
        assert await _inbox(db, user.id) == []

    async def test_unscheduled_or_archived_sessions_are_not_reminded(
        self, runtime: Runtime, db: Database
    ) -> None:
        live.register_background(runtime)
        first, second = await _scheduled(db), await _scheduled(db)
        [user] = await _users(db, 1)
        await _reserve(db, first.id, user)
        await _reserve(db, second.id, user)
        async with db.sessionmaker() as session:
            await service.transition_session(
                session, await service.get_session(session, first.id), SessionStatus.draft, None
            )
            await service.archive_session(session, await service.get_session(session, second.id), actor=None)
            await session.commit()
        await drain(db, _consumers())
        assert [j.status for j in await _jobs(db, first.id)] == [CANCELLED]
        assert [j.status for j in await _jobs(db, second.id)] == [CANCELLED]
        assert await run_due_jobs(db, runtime.jobs, now=utcnow() + timedelta(days=2)) == 0
        assert await _inbox(db, user.id) == []


class TestGoingLive:
    async def test_every_reserver_hears_once_and_the_reminder_is_dropped(self, db: Database) -> None:
        live_session = await _scheduled(db)
        alice, bob, carol = await _users(db, 3)
        await _reserve(db, live_session.id, alice, bob)
        async with db.sessionmaker() as session:
            await service.transition_session(
                session, await service.get_session(session, live_session.id), SessionStatus.live, None
            )
            await session.commit()
        await drain(db, _consumers())
        for user in (alice, bob):
            [item] = await _inbox(db, user.id, reservations.KIND_LIVE)
            assert item.link == f"/live/{live_session.id}"
            assert "正在直播" in item.title
        assert await _inbox(db, carol.id) == []
        assert [j.status for j in await _jobs(db, live_session.id)] == [CANCELLED]

        # The consumer delivers at least once: a second delivery adds nothing.
        async with db.sessionmaker() as session:
            assert (
                await reservations.notify_started(
                    session, await service.get_session(session, live_session.id)
                )
                == 0
            )
            await session.commit()
        assert len(await _inbox(db, alice.id)) == 1
        assert await _event_count(db, inbox.INBOX_NOTIFIED) == 2


class TestApi:
    async def test_reserve_count_and_cancel(
        self, client: httpx.AsyncClient, db: Database, customer: Caller
    ) -> None:
        live_session = await _scheduled(db)
        url = f"/api/v1/sessions/{live_session.id}/reservation"
        assert (await client.get(url)).json() == {
            "session_id": live_session.id,
            "count": 0,
            "reserved": False,
            "open": True,
        }
        assert (await client.put(url)).status_code == 401
        first = await client.put(url, headers=customer.headers)
        assert first.status_code == 200
        assert first.json()["count"] == 1
        assert first.json()["reserved"] is True
        assert (await client.put(url, headers=customer.headers)).json()["count"] == 1
        other = Caller(*await make_user_with_token(db))
        seen = (await client.get(url, headers=other.headers)).json()
        assert (seen["count"], seen["reserved"]) == (1, False)
        assert (await client.delete(url, headers=customer.headers)).json()["count"] == 0
        assert (await client.delete(url, headers=customer.headers)).status_code == 200

    async def test_refusals(self, client: httpx.AsyncClient, db: Database, customer: Caller) -> None:
        live_now = await _scheduled(db, status=SessionStatus.live)
        draft = await _scheduled(db, status=SessionStatus.draft)
        refused = await client.put(f"/api/v1/sessions/{live_now.id}/reservation", headers=customer.headers)
        assert refused.status_code == 409
        assert refused.json()["error"] == "SessionNotReservable"
        assert (
            await client.put(f"/api/v1/sessions/{draft.id}/reservation", headers=customer.headers)
        ).status_code == 404
        assert (
            await client.put(f"/api/v1/sessions/{2**63}/reservation", headers=customer.headers)
        ).status_code == 422

    async def test_the_room_page_offers_reserving_only_before_the_start(
        self, client: httpx.AsyncClient, db: Database
    ) -> None:
        upcoming = await _scheduled(db)
        live_now = await _scheduled(db, status=SessionStatus.live)
        page = await client.get(f"/live/{upcoming.id}")
        assert 'data-testid="reserve"' in page.text
        assert 'data-testid="reserve-login"' in page.text
        assert 'data-testid="reserve"' not in (await client.get(f"/live/{live_now.id}")).text
