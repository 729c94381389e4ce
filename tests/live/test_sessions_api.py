"""Operators manage live sessions through the JSON API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from linli.core.db import Database
from linli.core.events import Event
from linli.live.models import LiveSession, SessionCommunity, SessionStatus
from tests.factories import Caller, make_user
from tests.live.conftest import count_rows
from tests.live.factories import make_community, make_host, make_session

API = "/api/v1/admin/sessions"
START = "2026-12-01T10:00:00+08:00"


async def _events(db: Database, type_: str | None = None) -> list[Event]:
    async with db.sessionmaker() as session:
        query = select(Event).order_by(Event.id)
        if type_:
            query = query.where(Event.type == type_)
        return list((await session.scalars(query)).all())


async def _session_row(db: Database, session_id: int) -> LiveSession:
    async with db.sessionmaker() as session:
        row = await session.get(LiveSession, session_id)
        assert row is not None
        return row


class TestCreate:
    async def test_creates_a_draft_with_host_and_targets(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            host = await make_host(session, nickname="主播小麦")
            a, b = await make_community(session, name="春江花园"), await make_community(session)
            await session.commit()
        response = await client.post(
            API,
            json={
                "title": "  春日青团节  ",
                "description": "中央厨房现场直播",
                "host_id": host.id,
                "scheduled_start": START,
                "push_url": "rtmp://push.example.com/live/abc",
                "playback_url": "https://play.example.com/live/abc.m3u8",
                "community_ids": [b.id, a.id, b.id],
            },
            headers=operator.headers,
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["title"] == "春日青团节"
        assert body["status"] == "draft"
        assert body["host_id"] == host.id
        assert body["host_name"] == "主播小麦"
        assert body["community_ids"] == sorted([a.id, b.id])
        assert body["scheduled_start"] == "2026-12-01T02:00:00Z"
        assert body["lineup_count"] == 0

        row = await _session_row(db, body["id"])
        assert row.scheduled_start == datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
        assert row.push_url == "rtmp://push.example.com/live/abc"
        async with db.sessionmaker() as session:
            targets = (await session.scalars(select(SessionCommunity.community_id))).all()
        assert sorted(targets) == sorted([a.id, b.id])
        [event] = await _events(db, "live.session_created")
        assert event.session_id == body["id"]
        assert event.actor_id == operator.user.id

    async def test_no_targets_means_every_community(
        self, client: httpx.AsyncClient, operator: Caller
    ) -> None:
        response = await client.post(
            API, json={"title": "周末直播", "scheduled_start": START}, headers=operator.headers
        )
        assert response.status_code == 201
        assert response.json()["community_ids"] == []
        assert response.json()["host_id"] is None


class TestBadInputWritesNothing:
    @pytest.mark.parametrize(
        ("change", "status", "needle"),
        [
            ({"title": "长" * 61}, 422, "title"),
            ({"title": "   "}, 422, "title"),
            ({"scheduled_start": "2026-12-01T10:00:00"}, 422, "timezone"),
            ({"push_url": "ftp://example.com/x"}, 422, "rtmp"),
            ({"playback_url": "javascript:alert(1)"}, 422, "http"),
            ({"playback_url": "https://" + "a" * 500}, 422, "500"),
            ({"community_ids": [987654]}, 404, "no community with id 987654"),
            ({"host_id": 987654}, 422, "no active user with id 987654"),
            ({"unexpected": 1}, 422, "unexpected"),
        ],
    )
    async def test_refused_with_a_message(
        self,
        client: httpx.AsyncClient,
        db: Database,
        operator: Caller,
        change: dict[str, object],
        status: int,
        needle: str,
    ) -> None:
        before = await count_rows(db)
        response = await client.post(
            API, json={"title": "春日青团节", "scheduled_start": START} | change, headers=operator.headers
        )
        assert response.status_code == status, response.text
        assert needle in response.json()["detail"]
        assert await count_rows(db) == before

    async def test_a_user_without_the_host_role_cannot_host(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            neighbour = await make_user(session, nickname="王阿姨")
            await session.commit()
        before = await count_rows(db)
        response = await client.post(
            API,
            json={"title": "春日青团节", "scheduled_start": START, "host_id": neighbour.id},
            headers=operator.headers,
        )
        assert response.status_code == 422
        assert response.json() == {
            "error": "InvalidHost",
            "detail": "王阿姨 does not have the host role",
            "context": {"host_id": neighbour.id, "field": "host_id"},
        }
        assert await count_rows(db) == before

    async def test_an_archived_community_cannot_be_targeted(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            gone = await make_community(session, archived=True)
            await session.commit()
        before = await count_rows(db)
        response = await client.post(
            API,
            json={"title": "春日青团节", "scheduled_start": START, "community_ids": [gone.id]},
            headers=operator.headers,
        )
        assert response.status_code == 422
        assert response.json()["error"] == "CommunityArchived"
        assert await count_rows(db) == before


class TestUpdate:
    async def test_changes_only_what_is_sent(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            host = await make_host(session)
            community = await make_community(session)
            live_session = await make_session(session, title="旧标题", host=host)
            await session.commit()
        response = await client.patch(
            f"{API}/{live_session.id}",
            json={"title": "新标题", "community_ids": [community.id], "playback_url": "webrtc://x.example/y"},
            headers=operator.headers,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["title"] == "新标题"
        assert body["host_id"] == host.id
        assert body["community_ids"] == [community.id]
        assert body["playback_url"] == "webrtc://x.example/y"
        [event] = await _events(db, "live.session_updated")
        assert event.payload == {"fields": ["community_ids", "playback_url", "title"]}

        # and back to every community, the host unassigned
        response = await client.patch(
            f"{API}/{live_session.id}", json={"community_ids": [], "host_id": None}, headers=operator.headers
        )
        assert response.status_code == 200
        assert response.json()["community_ids"] == []
        assert response.json()["host_id"] is None

    async def test_null_for_a_required_field_is_refused(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            live_session = await make_session(session)
            await session.commit()
        response = await client.patch(
            f"{API}/{live_session.id}", json={"title": None}, headers=operator.headers
        )
        assert response.status_code == 422
        assert "title cannot be null" in response.json()["detail"]

    async def test_resending_the_same_values_changes_nothing(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            live_session = await make_session(session, title="春日青团节", status=SessionStatus.live)
            await session.commit()
        before = await count_rows(db)
        response = await client.patch(
            f"{API}/{live_session.id}",
            json={"title": "春日青团节", "scheduled_start": live_session.scheduled_start.isoformat()},
            headers=operator.headers,
        )
        assert response.status_code == 200
        assert await count_rows(db) == before

    @pytest.mark.parametrize("status", [SessionStatus.live, SessionStatus.ended])
    @pytest.mark.parametrize(
        "change",
        [
            {"scheduled_start": "2027-01-01T10:00:00+08:00"},
            {"push_url": "rtmp://other.example/live"},
            {"community_ids": ["COMMUNITY"]},
            {"host_id": "OTHER_HOST"},
        ],
    )
    async def test_a_live_or_ended_session_cannot_be_broken(
        self,
        client: httpx.AsyncClient,
        db: Database,
        operator: Caller,
        status: SessionStatus,
        change: dict[str, object],
    ) -> None:
        async with db.sessionmaker() as session:
            host, other = await make_host(session), await make_host(session)
            community = await make_community(session)
            live_session = await make_session(session, status=status, host=host)
            await session.commit()
        values = {"COMMUNITY": community.id, "OTHER_HOST": other.id}
        payload = {
            k: ([values[x] for x in v] if isinstance(v, list) else values.get(v, v))  # type: ignore[arg-type]
            for k, v in change.items()
        }
        before = await count_rows(db)
        response = await client.patch(f"{API}/{live_session.id}", json=payload, headers=operator.headers)
        assert response.status_code == 409, response.text
        assert response.json()["error"] == "SessionLocked"
        assert f"the session is {status.value}" in response.json()["detail"]
        assert await count_rows(db) == before
        row = await _session_row(db, live_session.id)
        assert row.scheduled_start == live_session.scheduled_start
        assert row.host_id == host.id

    async def test_a_live_session_can_still_fix_its_title_and_playback(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            live_session = await make_session(
                session, status=SessionStatus.live, host=await make_host(session)
            )
            await session.commit()
        response = await client.patch(
            f"{API}/{live_session.id}",
            json={"title": "春日青团节·加场", "playback_url": "https://cdn.example/a.m3u8"},
            headers=operator.headers,
        )
        assert response.status_code == 200
        assert response.json()["title"] == "春日青团节·加场"

    async def test_a_scheduled_session_keeps_a_host(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            live_session = await make_session(
                session, status=SessionStatus.scheduled, host=await make_host(session)
            )
            await session.commit()
        response = await client.patch(
            f"{API}/{live_session.id}", json={"host_id": None}, headers=operator.headers
        )
        assert response.status_code == 409
        assert "needs a host" in response.json()["detail"]

    async def test_unknown_session_is_404(self, client: httpx.AsyncClient, operator: Caller) -> None:
        response = await client.patch(f"{API}/424242", json={"title": "x"}, headers=operator.headers)
        assert response.status_code == 404
        assert response.json() == {
            "error": "SessionNotFound",
            "detail": "no live session with id 424242",
            "context": {"session_id": 424242},
        }


class TestListAndArchive:
    async def test_search_status_filter_and_pages(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        base = datetime(2026, 12, 1, 2, tzinfo=UTC)
        async with db.sessionmaker() as session:
            for i in range(5):
                await make_session(session, title=f"青团专场{i}", scheduled_start=base + timedelta(days=i))
            await make_session(session, title="月饼专场", status=SessionStatus.scheduled)
            await make_session(session, title="100%_青团", scheduled_start=base - timedelta(days=1))
            await make_session(session, title="青团旧场", archived=True)
            await session.commit()

        response = await client.get(API, params={"q": "青团", "per_page": 2}, headers=operator.headers)
        body = response.json()
        assert body["total"] == 6
        assert [s["title"] for s in body["items"]] == ["青团专场4", "青团专场3"]
        page3 = (
            await client.get(API, params={"q": "青团", "per_page": 2, "page": 3}, headers=operator.headers)
        ).json()
        assert [s["title"] for s in page3["items"]] == ["青团专场0", "100%_青团"]

        literal = (await client.get(API, params={"q": "%_"}, headers=operator.headers)).json()
        assert [s["title"] for s in literal["items"]] == ["100%_青团"]

        scheduled = (await client.get(API, params={"status": "scheduled"}, headers=operator.headers)).json()
        assert [s["title"] for s in scheduled["items"]] == ["月饼专场"]

        archived = (await client.get(API, params={"archived": "true"}, headers=operator.headers)).json()
        assert [s["title"] for s in archived["items"]] == ["青团旧场"]

        bad = await client.get(API, params={"status": "paused"}, headers=operator.headers)
        assert bad.status_code == 422

    async def test_archive_hides_and_unarchive_brings_back(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            live_session = await make_session(session, title="春日青团节")
            await session.commit()
        response = await client.post(f"{API}/{live_session.id}/archive", headers=operator.headers)
        assert response.status_code == 200
        assert response.json()["archived_at"] is not None
        listed = (await client.get(API, headers=operator.headers)).json()
        assert listed["total"] == 0
        # an archived session is frozen until restored
        frozen = await client.patch(f"{API}/{live_session.id}", json={"title": "x"}, headers=operator.headers)
        assert frozen.status_code == 409
        response = await client.post(f"{API}/{live_session.id}/unarchive", headers=operator.headers)
        assert response.json()["archived_at"] is None
        assert (await client.get(API, headers=operator.headers)).json()["total"] == 1
        types = [e.type for e in await _events(db)]
        assert types == ["live.session_archived", "live.session_unarchived"]

    async def test_a_live_session_cannot_be_archived(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            live_session = await make_session(session, status=SessionStatus.live)
            await session.commit()
        response = await client.post(f"{API}/{live_session.id}/archive", headers=operator.headers)
        assert response.status_code == 409
        assert "end it before archiving" in response.json()["detail"]
        assert (await _session_row(db, live_session.id)).archived_at is None


OPERATOR_ROUTES = [
    ("GET", API),
    ("POST", API),
    ("GET", f"{API}/1"),
    ("PATCH", f"{API}/1"),
    ("POST", f"{API}/1/transition"),
    ("POST", f"{API}/1/archive"),
    ("POST", f"{API}/1/unarchive"),
    ("POST", f"{API}/1/cover"),
    ("DELETE", f"{API}/1/cover"),
    ("GET", f"{API}/1/lineup"),
    ("POST", f"{API}/1/lineup"),
    ("PUT", f"{API}/1/lineup/order"),
    ("GET", f"{API}/1/lineup/1"),
    ("PATCH", f"{API}/1/lineup/1"),
    ("DELETE", f"{API}/1/lineup/1"),
]


@pytest.mark.parametrize(("method", "path"), OPERATOR_ROUTES)
async def test_operator_routes_refuse_customers_and_strangers(
    client: httpx.AsyncClient, db: Database, customer: Caller, method: str, path: str
) -> None:
    async with db.sessionmaker() as session:
        await make_session(session)
        await session.commit()
    before = await count_rows(db)
    anonymous = await client.request(method, path, json={})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "NotAuthenticated"
    refused = await client.request(method, path, json={}, headers=customer.headers)
    assert refused.status_code == 403
    assert refused.json()["error"] == "Forbidden"
    assert await count_rows(db) == before
