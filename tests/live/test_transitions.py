"""A session's status moves only along draft → scheduled → live → ended (and back from scheduled to draft)."""

from __future__ import annotations

import itertools

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm.attributes import set_committed_value

from linli.core.db import Database
from linli.core.events import Event
from linli.live import service
from linli.live.errors import InvalidTransition
from linli.live.models import LiveSession, SessionStatus
from tests.factories import Caller
from tests.live.conftest import count_rows
from tests.live.factories import make_host, make_session

API = "/api/v1/admin/sessions"

ALLOWED = {
    (SessionStatus.draft, SessionStatus.scheduled): "live.session_scheduled",
    (SessionStatus.scheduled, SessionStatus.draft): "live.session_unscheduled",
    (SessionStatus.scheduled, SessionStatus.live): "live.session_started",
    (SessionStatus.live, SessionStatus.ended): "live.session_ended",
}
FORBIDDEN = [pair for pair in itertools.product(SessionStatus, SessionStatus) if pair not in ALLOWED]


def test_the_table_is_the_one_we_promise() -> None:
    assert service.TRANSITIONS == ALLOWED
    assert len(FORBIDDEN) == 12


async def _row(db: Database, session_id: int) -> LiveSession:
    async with db.sessionmaker() as session:
        row = await session.get(LiveSession, session_id)
        assert row is not None
        return row


@pytest.mark.parametrize(("frm", "to"), list(ALLOWED), ids=lambda s: s.value)
async def test_every_allowed_transition(
    client: httpx.AsyncClient, db: Database, operator: Caller, frm: SessionStatus, to: SessionStatus
) -> None:
    async with db.sessionmaker() as session:
        live_session = await make_session(session, status=frm, host=await make_host(session))
        await session.commit()
    before = await _row(db, live_session.id)
    response = await client.post(
        f"{API}/{live_session.id}/transition", json={"to": to.value}, headers=operator.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == to.value

    after = await _row(db, live_session.id)
    assert after.status == to.value
    if to is SessionStatus.live:
        assert after.started_at is not None
        assert response.json()["started_at"] is not None
    else:
        assert after.started_at == before.started_at
    if to is SessionStatus.ended:
        assert after.ended_at is not None
        assert after.ended_at >= after.started_at
    else:
        assert after.ended_at is None
    async with db.sessionmaker() as session:
        events = (await session.scalars(select(Event))).all()
    assert [(e.type, e.session_id, e.actor_id, e.payload) for e in events] == [
        (ALLOWED[(frm, to)], live_session.id, operator.user.id, {"from": frm.value, "to": to.value})
    ]


@pytest.mark.parametrize(("frm", "to"), FORBIDDEN, ids=lambda s: s.value)
async def test_every_forbidden_transition(
    client: httpx.AsyncClient, db: Database, operator: Caller, frm: SessionStatus, to: SessionStatus
) -> None:
    async with db.sessionmaker() as session:
        live_session = await make_session(session, status=frm, host=await make_host(session))
        await session.commit()
    before = await count_rows(db)
    response = await client.post(
        f"{API}/{live_session.id}/transition", json={"to": to.value}, headers=operator.headers
    )
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "InvalidTransition"
    assert body["detail"].startswith(f"a {frm.value} session cannot become {to.value}")
    assert body["context"]["allowed"] == [b.value for (a, b) in ALLOWED if a is frm]
    assert (await _row(db, live_session.id)).status == frm.value
    assert await count_rows(db) == before


async def test_unknown_status_is_a_validation_error(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    async with db.sessionmaker() as session:
        live_session = await make_session(session)
        await session.commit()
    response = await client.post(
        f"{API}/{live_session.id}/transition", json={"to": "paused"}, headers=operator.headers
    )
    assert response.status_code == 422


@pytest.mark.parametrize("to", [SessionStatus.scheduled])
async def test_no_schedule_without_a_host(
    client: httpx.AsyncClient, db: Database, operator: Caller, to: SessionStatus
) -> None:
    async with db.sessionmaker() as session:
        live_session = await make_session(session)
        await session.commit()
    response = await client.post(
        f"{API}/{live_session.id}/transition", json={"to": to.value}, headers=operator.headers
    )
    assert response.status_code == 409
    assert response.json()["detail"] == "assign a host first"


async def test_an_archived_session_does_not_move(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    async with db.sessionmaker() as session:
        live_session = await make_session(session, host=await make_host(session), archived=True)
        await session.commit()
    response = await client.post(
        f"{API}/{live_session.id}/transition", json={"to": "scheduled"}, headers=operator.headers
    )
    assert response.status_code == 409
    assert "archived" in response.json()["detail"]


async def test_a_stale_copy_loses_to_the_move_already_made(db: Database) -> None:
    """Two operators press "go live" and "back to draft" on the same scheduled session: one wins, the
    other's conditional update finds the status changed and refuses, writing nothing."""
    async with db.sessionmaker() as session:
        live_session = await make_session(
            session, status=SessionStatus.scheduled, host=await make_host(session)
        )
        await session.commit()
    async with db.sessionmaker() as first:
        winner = await service.get_session(first, live_session.id)
        await service.transition_session(first, winner, SessionStatus.live, None)
        await first.commit()
    async with db.sessionmaker() as second:
        stale = await service.get_session(second, live_session.id)
        # what the second operator's page had loaded before the first one pressed
        set_committed_value(stale, "status", SessionStatus.scheduled.value)
        with pytest.raises(InvalidTransition, match="changed meanwhile"):
            await service.transition_session(second, stale, SessionStatus.draft, None)
        await second.rollback()
    row = await _row(db, live_session.id)
    assert row.status == SessionStatus.live.value
