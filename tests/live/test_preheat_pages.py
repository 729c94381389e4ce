"""The operators' pre-heat pages: planning a campaign from the form (Shanghai wall-clock times), refusing
bad input with a message and no writes, and the campaign page with its schedule and reach."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, select

from linli.community.feed.models import FeedCampaign, FeedCampaignItem
from linli.core.clock import to_local, utcnow
from linli.core.db import Database
from linli.live.models import SessionStatus
from tests.community.feedkit import make_place
from tests.factories import Caller
from tests.live.factories import make_session

HTML = {"accept": "text/html"}


def _local(delta: timedelta) -> str:
    return to_local(utcnow() + delta).strftime("%Y-%m-%dT%H:%M")


async def test_an_operator_plans_a_campaign_from_the_form(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    place = await make_place(db)
    async with db.sessionmaker() as session:
        live_session = await make_session(
            session, status=SessionStatus.scheduled, scheduled_start=utcnow() + timedelta(days=2)
        )
        await session.commit()
    form = {
        "session_id": str(live_session.id),
        "title": "青团节预热",
        "community_ids": [str(place.community.id)],
        "teaser_at": _local(timedelta(hours=2)),
        "teaser_text": "有件春天的事…",
        "topic_at": _local(timedelta(hours=3)),
        "question": "大家猜猜我们今年的青团馅料是什么?",
        "answer": "荠菜春笋",
        "reveal_at": _local(timedelta(days=1)),
        "prize_mode": "draw",
        "winner_count": "3",
        "prize_name": "青团一盒",
        "taster_at": _local(timedelta(hours=4)),
        "taster_brief": "试吃新品",
        "taster_ids": [str(place.taster.user.id)],
    }
    page = await client.get("/admin/preheat", headers={**operator.headers, **HTML})
    assert page.status_code == 200
    assert live_session.title in page.text
    r = await client.post("/admin/preheat", data=form, headers={**operator.headers, **HTML})
    assert r.status_code == 303, r.text
    assert r.headers["location"].startswith("/admin/preheat/")
    async with db.sessionmaker() as session:
        [campaign] = (await session.scalars(select(FeedCampaign))).all()
        items = (await session.scalars(select(FeedCampaignItem).order_by(FeedCampaignItem.publish_at))).all()
    assert [i.kind for i in items] == ["teaser", "topic", "taster"]
    assert abs(items[0].publish_at - (utcnow() + timedelta(hours=2))) < timedelta(minutes=2)
    shown = await client.get(r.headers["location"], headers={**operator.headers, **HTML})
    assert shown.status_code == 200
    assert "有件春天的事…" in shown.text
    assert "荠菜春笋" not in shown.text  # the console keeps the answer secret too
    assert 'data-testid="preheat-reach"' in shown.text

    bad = {**form, "teaser_at": _local(-timedelta(hours=1))}
    refused = await client.post("/admin/preheat", data=bad, headers={**operator.headers, **HTML})
    assert refused.status_code == 303
    assert "error=" in refused.headers["location"]
    async with db.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(FeedCampaign)) == 1
    assert campaign.community_ids == [place.community.id]
    neighbour = await client.get("/admin/preheat", headers={**place.neighbours[0].headers, **HTML})
    assert neighbour.status_code == 403
