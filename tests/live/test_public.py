"""What neighbours (and the home page) read: live first, then upcoming, for their community or for all."""

from __future__ import annotations

from datetime import timedelta

import httpx

from linli.core.clock import utcnow
from linli.core.db import Database
from linli.live import service
from linli.live.models import SessionStatus
from tests.live.factories import make_community, make_host, make_lineup_item, make_product, make_session


async def test_public_list_orders_live_then_upcoming_and_honours_targets(
    client: httpx.AsyncClient, db: Database
) -> None:
    now = utcnow()
    async with db.sessionmaker() as session:
        ours, theirs = await make_community(session, name="春江花园"), await make_community(session)
        host = await make_host(session)
        s = {
            "live_old": await make_session(
                session, status=SessionStatus.live, host=host, started_at=now - timedelta(hours=2)
            ),
            "live_new_ours": await make_session(
                session,
                status=SessionStatus.live,
                host=host,
                started_at=now - timedelta(minutes=5),
                community_ids=(ours.id,),
            ),
            "soon": await make_session(
                session, status=SessionStatus.scheduled, host=host, scheduled_start=now + timedelta(hours=1)
            ),
            "later_ours": await make_session(
                session,
                status=SessionStatus.scheduled,
                host=host,
                scheduled_start=now + timedelta(days=2),
                community_ids=(ours.id, theirs.id),
            ),
            "theirs_only": await make_session(
                session,
                status=SessionStatus.scheduled,
                host=host,
                scheduled_start=now + timedelta(minutes=30),
                community_ids=(theirs.id,),
            ),
            "draft": await make_session(session, scheduled_start=now + timedelta(minutes=10)),
            "archived": await make_session(
                session,
                status=SessionStatus.scheduled,
                host=host,
                scheduled_start=now + timedelta(minutes=20),
                archived=True,
            ),
            "ended": await make_session(session, status=SessionStatus.ended, host=host),
        }
        await session.commit()
    name = {v.id: k for k, v in s.items()}

    async def titles(params: dict[str, int]) -> list[str]:
        response = await client.get("/api/v1/sessions", params=params)
        assert response.status_code == 200
        return [name[item["id"]] for item in response.json()["items"]]

    assert await titles({"community_id": ours.id}) == ["live_new_ours", "live_old", "soon", "later_ours"]
    assert await titles({"community_id": theirs.id}) == ["live_old", "theirs_only", "soon", "later_ours"]
    assert await titles({}) == ["live_old", "soon"]
    assert await titles({"community_id": ours.id, "limit": 3}) == ["live_new_ours", "live_old", "soon"]

    body = (await client.get("/api/v1/sessions", params={"community_id": ours.id})).json()["items"][0]
    assert body["status"] == "live"
    assert "push_url" not in body  # the stream key is for the host's encoder only

    async with db.sessionmaker() as session:
        home = await service.list_home_sessions(session, ours.id)
    assert [name[h.id] for h in home] == ["live_new_ours", "live_old", "soon", "later_ours"]


async def test_public_detail_shows_the_lineup_as_neighbours_see_it(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.sessionmaker() as session:
        live_session = await make_session(
            session,
            title="春日青团节",
            status=SessionStatus.live,
            host=await make_host(session, nickname="小麦"),
            playback_url="https://cdn.example/live.m3u8",
        )
        qingtuan = await make_product(session, name="春季限定青团", store_price_fen=3000, photo="p/qt.jpg")
        item = await make_lineup_item(
            session,
            live_session=live_session,
            product=qingtuan,
            live_price_fen=2500,
            stock=5000,
            reserved=13,
            sold=100,
            per_user_limit=10,
            position=1,
        )
        first = await make_lineup_item(session, live_session=live_session, position=0)
        gone = await make_lineup_item(session, live_session=live_session, position=2, sold=1)
        gone.archived_at = utcnow()
        await session.commit()

    response = await client.get(f"/api/v1/sessions/{live_session.id}")
    assert response.status_code == 200
    body = response.json()
    assert (body["title"], body["status"], body["host_name"]) == ("春日青团节", "live", "小麦")
    assert body["playback_url"] == "https://cdn.example/live.m3u8"
    assert "push_url" not in body
    assert [i["id"] for i in body["lineup"]] == [first.id, item.id]
    assert body["lineup"][1] == {
        "id": item.id,
        "product_id": qingtuan.id,
        "product_name": "春季限定青团",
        "photo_url": "/media/p/qt.jpg",
        "live_price_fen": 2500,
        "store_price_fen": 3000,
        "stock_left": 4887,
        "per_user_limit": 10,
        "sale_starts_at": None,
        "sale_ends_at": None,
        "on_sale": True,
        "position": 1,
    }


async def test_drafts_and_archived_sessions_do_not_exist_for_neighbours(
    client: httpx.AsyncClient, db: Database
) -> None:
    async with db.sessionmaker() as session:
        draft = await make_session(session)
        archived = await make_session(session, status=SessionStatus.scheduled, archived=True)
        ended = await make_session(session, status=SessionStatus.ended)
        await session.commit()
    for hidden in (draft, archived):
        response = await client.get(f"/api/v1/sessions/{hidden.id}")
        assert response.status_code == 404
        assert response.json()["error"] == "SessionNotFound"
    replay = await client.get(f"/api/v1/sessions/{ended.id}")
    assert replay.status_code == 200
    assert replay.json()["status"] == "ended"


async def test_sale_window_follows_the_live_period_unless_set(db: Database) -> None:
    now = utcnow()
    async with db.sessionmaker() as session:
        scheduled = await make_session(session, status=SessionStatus.scheduled)
        item = await make_lineup_item(session, live_session=scheduled)
        assert not service.is_on_sale(scheduled, item, now)
        item.sale_starts_at = now - timedelta(minutes=1)  # a presale before going live
        assert service.is_on_sale(scheduled, item, now)
        item.sale_ends_at = now
        assert not service.is_on_sale(scheduled, item, now)

        live = await make_session(session, status=SessionStatus.live, started_at=now - timedelta(hours=1))
        live_item = await make_lineup_item(session, live_session=live)
        assert service.is_on_sale(live, live_item, now)
        assert not service.is_on_sale(live, live_item, now - timedelta(hours=2))

        ended = await make_session(session, status=SessionStatus.ended, started_at=now - timedelta(hours=1))
        ended_item = await make_lineup_item(session, live_session=ended)
        assert not service.is_on_sale(ended, ended_item, now + timedelta(seconds=1))
        assert service.is_on_sale(ended, ended_item, now - timedelta(minutes=30))
        await session.rollback()
