"""Pre-heat campaigns: timers that publish at their times after a restart in between, a guessing topic
whose answer never leaks before its reveal (API, page, event log), fair drawing of its winners, taster
tasks, and the campaign's reach."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from linli import community
from linli.community.feed import preheat
from linli.community.feed.models import FeedGuess, FeedPost, TasterTask
from linli.community.models import InboxItem
from linli.core import draw
from linli.core.clock import utcnow
from linli.core.config import Settings
from linli.core.db import Database
from linli.core.events import Event
from linli.core.hub import LocalHub
from linli.core.jobs import run_due_jobs
from linli.core.runtime import Runtime
from linli.identity.models import User
from linli.live import preheat as live_preheat
from linli.live.models import LiveSession, SessionStatus
from tests.community.feedkit import Place, make_place
from tests.factories import Caller
from tests.live.factories import make_session

ANSWER = "荠菜春笋"


async def _session(db: Database, start: datetime, community_ids: tuple[int, ...] = ()) -> LiveSession:
    async with db.sessionmaker() as session:
        row = await make_session(
            session,
            title="春日青团节",
            status=SessionStatus.scheduled,
            scheduled_start=start,
            community_ids=community_ids,
        )
        await session.commit()
        return row


async def _plan(
    db: Database,
    operator: User,
    live_session: LiveSession,
    items: list[preheat.ItemPlan],
    places: list[Place],
) -> int:
    async with db.sessionmaker() as session:
        row = await session.get(LiveSession, live_session.id)
        assert row is not None
        campaign = await live_preheat.plan(
            session,
            row,
            operator,
            title="青团节预热",
            community_ids=[p.community.id for p in places],
            items=items,
        )
        await session.commit()
        return campaign.id


async def _posts(db: Database, **where: object) -> list[FeedPost]:
    async with db.sessionmaker() as session:
        query = select(FeedPost).order_by(FeedPost.id)
        for key, value in where.items():
            query = query.where(getattr(FeedPost, key) == value)
        return list((await session.scalars(query)).all())


def _topic(publish_at: datetime, reveal_at: datetime, **extra: object) -> preheat.ItemPlan:
    return preheat.ItemPlan(
        kind="topic",
        publish_at=publish_at,
        question="大家猜猜我们今年的青团馅料是什么?",
        answer=f"{ANSWER}|春笋荠菜",
        reveal_at=reveal_at,
        prize_name="青团券",
        coupon_template_id=5,
        **extra,  # type: ignore[arg-type]
    )


class TestTimers:
    async def test_items_publish_at_their_times_after_a_restart(
        self, settings: Settings, db: Database, operator: Caller
    ) -> None:
        wutong, xz = await make_place(db, name="梧桐苑"), await make_place(db, name="香樟花园")
        now = utcnow()
        start = now + timedelta(days=2)
        live_session = await _session(db, start)
        teaser_at, topic_at, taster_at = (
            now + timedelta(hours=1),
            now + timedelta(hours=3),
            now + timedelta(hours=5),
        )
        await _plan(
            db,
            operator.user,
            live_session,
            [
                preheat.ItemPlan(
                    kind="teaser",
                    publish_at=teaser_at,
                    text="有件春天的事…明天揭晓",
                    video_url="https://cdn.example/teaser.mp4",
                ),
                _topic(topic_at, now + timedelta(days=1)),
                preheat.ItemPlan(
                    kind="taster",
                    publish_at=taster_at,
                    text="试吃新品青团",
                    taster_ids=[wutong.taster.user.id],
                ),
            ],
            [wutong, xz],
        )
        await db.dispose()  # the process that planned it is gone

        restarted = Runtime(settings=settings, db=Database(settings.database_url), hub=LocalHub())
        community.register_background(restarted)
        try:
            assert await run_due_jobs(restarted.db, restarted.jobs, now=teaser_at - timedelta(seconds=1)) == 0
            assert await _posts(restarted.db) == []
            assert await run_due_jobs(restarted.db, restarted.jobs, now=teaser_at) == 1
            teasers = await _posts(restarted.db, kind="teaser")
            assert sorted(p.community_id for p in teasers) == sorted([wutong.community.id, xz.community.id])
            assert {(p.session_id, p.session_title, p.video_url, p.label) for p in teasers} == {
                (live_session.id, "春日青团节", "https://cdn.example/teaser.mp4", "preheat")
            }
            assert await run_due_jobs(restarted.db, restarted.jobs, now=topic_at - timedelta(seconds=1)) == 0
            assert await run_due_jobs(restarted.db, restarted.jobs, now=topic_at) == 1
            topics = await _posts(restarted.db, kind="topic")
            assert len(topics) == 2
            assert all(ANSWER not in p.text for p in topics)
            assert await run_due_jobs(restarted.db, restarted.jobs, now=taster_at) == 1
            async with restarted.db.sessionmaker() as session:
                tasks = list((await session.scalars(select(TasterTask))).all())
                invites = list(
                    (
                        await session.scalars(select(InboxItem).where(InboxItem.kind == "feed_taster_task"))
                    ).all()
                )
            assert [(t.user_id, t.community_id) for t in tasks] == [
                (wutong.taster.user.id, wutong.community.id)
            ]
            assert [i.user_id for i in invites] == [wutong.taster.user.id]
            # A runner that fires an item again publishes nothing twice.
            async with restarted.db.sessionmaker() as session:
                for item in await preheat.items_of(session, teasers[0].campaign_id or 0):
                    assert await preheat.publish_item(session, item.id) == 0
                await session.commit()
            assert len(await _posts(restarted.db)) == 4
        finally:
            await restarted.db.dispose()

    async def test_times_must_lie_between_now_and_the_start(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        place = await make_place(db)
        now = utcnow()
        live_session = await _session(db, now + timedelta(days=1), (place.community.id,))
        url = f"/api/v1/admin/sessions/{live_session.id}/preheat"
        for items in (
            [{"kind": "teaser", "publish_at": (now - timedelta(hours=1)).isoformat(), "text": "迟了"}],
            [{"kind": "teaser", "publish_at": (now + timedelta(days=2)).isoformat(), "text": "开播后"}],
            [
                {
                    "kind": "topic",
                    "publish_at": (now + timedelta(hours=2)).isoformat(),
                    "question": "猜?",
                    "answer": "x",
                    "reveal_at": (now + timedelta(hours=1)).isoformat(),
                }
            ],
            [
                {
                    "kind": "taster",
                    "publish_at": (now + timedelta(hours=2)).isoformat(),
                    "taster_ids": [place.neighbours[0].user.id],
                }
            ],
        ):
            r = await client.post(url, json={"title": "预热", "items": items}, headers=operator.headers)
            assert r.status_code == 422, (items, r.text)
        assert await _posts(db) == []
        ok = await client.post(
            url,
            json={
                "title": "预热",
                "items": [
                    {"kind": "teaser", "publish_at": (now + timedelta(hours=1)).isoformat(), "text": "明天见"}
                ],
            },
            headers=operator.headers,
        )
        assert ok.status_code == 201, ok.text
        assert ok.json()["community_ids"] == [place.community.id]  # the session's communities by default
        neighbour = await client.post(
            url, json={"title": "x", "items": []}, headers=place.neighbours[0].headers
        )
        assert neighbour.status_code == 403


class TestGuessing:
    async def test_the_answer_never_leaks_before_its_reveal(
        self, client: httpx.AsyncClient, db: Database, runtime: Runtime, operator: Caller
    ) -> None:
        place = await make_place(db, nicknames=("张哥", "李姐", "王阿姨"))
        zhang, li, wang = place.neighbours
        now = utcnow()
        live_session = await _session(db, now + timedelta(days=2))
        reveal_at = now + timedelta(days=1)
        publish_at = now + timedelta(minutes=5)
        campaign_id = await _plan(db, operator.user, live_session, [_topic(publish_at, reveal_at)], [place])
        community.register_background(runtime)
        assert await run_due_jobs(db, runtime.jobs, now=publish_at) == 1  # its timer publishes it
        async with db.sessionmaker() as session:
            [item] = await preheat.items_of(session, campaign_id)
        topic_id = item.topic_id

        for caller, text in ((zhang, "荠菜 春笋"), (li, "豆沙"), (wang, "春笋荠菜!")):
            r = await client.put(
                f"/api/v1/feed/topics/{topic_id}/guess", json={"text": text}, headers=caller.headers
            )
            assert r.status_code == 200, r.text
            assert r.json()["answer"] is None
            assert r.json()["my_guess"] == text
        # Before the reveal: not in the topic, the feed, the page, the campaign console, or the event log.
        topic = (await client.get(f"/api/v1/feed/topics/{topic_id}", headers=li.headers)).json()
        assert (topic["answer"], topic["seed"], topic["revealed"], topic["guess_count"]) == (
            None,
            None,
            False,
            3,
        )
        feed = await client.get(f"/api/v1/c/{place.community.id}/posts", headers=li.headers)
        page = await client.get(f"/c/{place.community.id}", headers={**li.headers, "accept": "text/html"})
        console = await client.get(f"/api/v1/admin/preheat/{campaign_id}", headers=operator.headers)
        async with db.sessionmaker() as session:
            payloads = [str(e.payload) for e in (await session.scalars(select(Event))).all()]
        for leak in (feed.text, page.text, console.text, *payloads):
            assert ANSWER not in leak
        assert 'data-revealed="false"' in page.text
        # Its timer is not due a second early, and a reveal asked for too early reveals nothing.
        assert await run_due_jobs(db, runtime.jobs, now=reveal_at - timedelta(seconds=1)) == 0
        async with db.sessionmaker() as session:
            await preheat.reveal_topic(session, topic_id or 0, now=reveal_at - timedelta(seconds=1))
            await session.commit()
        assert (await client.get(f"/api/v1/feed/topics/{topic_id}", headers=li.headers)).json()[
            "answer"
        ] is None

        assert await run_due_jobs(db, runtime.jobs, now=reveal_at) == 1
        revealed = (await client.get(f"/api/v1/feed/topics/{topic_id}", headers=zhang.headers)).json()
        assert (revealed["answer"], revealed["correct_count"], revealed["i_won"]) == (ANSWER, 2, True)
        page = await client.get(f"/c/{place.community.id}", headers={**li.headers, "accept": "text/html"})
        assert ANSWER in page.text
        late = await client.put(
            f"/api/v1/feed/topics/{topic_id}/guess", json={"text": "晚了"}, headers=li.headers
        )
        assert late.status_code == 409
        [reveal] = await _posts(db, kind="reveal")
        assert reveal.text.startswith(f"【揭晓】答案是:{ANSWER}!")
        assert "恭喜@张哥 @王阿姨 获得青团券!" in reveal.text
        async with db.sessionmaker() as session:
            won = list((await session.scalars(select(Event).where(Event.type == preheat.GUESS_WON))).all())
            wins = list((await session.scalars(select(InboxItem).where(InboxItem.kind == "guess_won"))).all())
        assert sorted(
            (e.payload["user_id"], e.payload["coupon_template_id"], e.payload["topic_id"]) for e in won
        ) == sorted([(zhang.user.id, 5, topic_id), (wang.user.id, 5, topic_id)])
        assert sorted(i.user_id for i in wins) == sorted([zhang.user.id, wang.user.id])

    async def test_n_winners_are_drawn_fairly_and_verifiably_from_the_correct_guessers(
        self, db: Database, operator: Caller
    ) -> None:
        place = await make_place(db, neighbours=8)
        now = utcnow()
        live_session = await _session(db, now + timedelta(days=2))
        reveal_at = now + timedelta(hours=6)
        campaign_id = await _plan(
            db,
            operator.user,
            live_session,
            [_topic(now + timedelta(hours=1), reveal_at, prize_mode="draw", winner_count=3)],
            [place],
        )
        async with db.sessionmaker() as session:
            [item] = await preheat.items_of(session, campaign_id)
            await preheat.publish_item(session, item.id)
            for i, caller in enumerate(place.neighbours):
                user = await session.get(User, caller.user.id)
                assert user is not None
                await preheat.submit_guess(
                    session, None, user, item.topic_id or 0, ANSWER if i % 4 else "豆沙", now=now
                )
            await session.commit()
        async with db.sessionmaker() as session:
            topic = await preheat.reveal_topic(session, item.topic_id or 0, now=reveal_at)
            await session.commit()
            assert topic is not None
            guesses = list(
                (await session.scalars(select(FeedGuess).where(FeedGuess.topic_id == topic.id))).all()
            )
            [event] = (await session.scalars(select(Event).where(Event.type == preheat.TOPIC_REVEALED))).all()
        correct = sorted(g.user_id for g in guesses if g.correct)
        assert len(correct) == 6
        winners = topic.winner_ids
        assert len(winners) == 3
        assert set(winners) <= set(correct)
        # Anyone can recompute the draw from what the reveal publishes: the seed (its hash was public from
        # the start), the sorted entries and N.
        payload = event.payload
        assert payload["entries"] == correct
        assert draw.commitment(payload["seed"]) == topic.seed_hash
        assert draw.verify(
            payload["seed"], topic.seed_hash, payload["entries"], 3, payload["winner_user_ids"]
        )
        assert sorted(g.user_id for g in guesses if g.won_rank) == sorted(winners)
        # Revealing again changes nothing.
        async with db.sessionmaker() as session:
            again = await preheat.reveal_topic(session, topic.id, now=reveal_at + timedelta(hours=1))
            await session.commit()
        assert again is not None
        assert again.winner_ids == winners

    @given(
        entries=st.lists(st.integers(1, 10_000), max_size=60),
        n=st.integers(0, 70),
        seed=st.binary(min_size=32, max_size=32),
    )
    def test_a_draw_is_n_distinct_entries(self, entries: list[int], n: int, seed: bytes) -> None:
        winners = draw.draw(seed.hex(), entries, n)
        assert len(winners) == min(n, len(set(entries)))
        assert len(set(winners)) == len(winners)
        assert set(winners) <= set(entries)
        assert draw.draw(seed.hex(), list(reversed(entries)), n) == winners


class TestReach:
    async def test_views_viewers_guesses_reservations_and_the_share_of_active_neighbours(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        place = await make_place(db, neighbours=4)
        now = utcnow()
        live_session = await _session(db, now + timedelta(days=2))
        campaign_id = await _plan(
            db,
            operator.user,
            live_session,
            [
                preheat.ItemPlan(kind="teaser", publish_at=now + timedelta(hours=1), text="明天见"),
                _topic(now + timedelta(hours=1), now + timedelta(hours=5)),
            ],
            [place],
        )
        async with db.sessionmaker() as session:
            for item in await preheat.items_of(session, campaign_id):
                await preheat.publish_item(session, item.id)
            await session.commit()
        a, b, c, _d = place.neighbours
        for caller in (a, b, a):  # a views twice: two views, one viewer
            assert (
                await client.get(
                    f"/c/{place.community.id}", headers={**caller.headers, "accept": "text/html"}
                )
            ).status_code == 200
        [topic_post] = await _posts(db, kind="topic")
        assert (
            await client.put(
                f"/api/v1/feed/topics/{topic_post.topic_id}/guess", json={"text": "豆沙"}, headers=c.headers
            )
        ).status_code == 200
        r = await client.put(f"/api/v1/sessions/{live_session.id}/reservation", headers=a.headers)
        assert r.status_code == 200
        assert r.json()["reserved"] is True
        reach = (await client.get(f"/api/v1/admin/preheat/{campaign_id}", headers=operator.headers)).json()[
            "reach"
        ]
        # Active: a, b (viewed), c (guessed); d and the taster did nothing yet but joined within 30 days.
        assert reach == [
            {
                "community_id": place.community.id,
                "community_name": place.community.name,
                "posts": 2,
                "views": 6,
                "viewers": 2,
                "guesses": 1,
                "reservations": 1,
                "active": 5,
                "active_reached": 2,
                "reached_share": 0.4,
            }
        ]
        page = await client.get(
            f"/admin/preheat/{campaign_id}", headers={**operator.headers, "accept": "text/html"}
        )
        assert "40%(2/5)" in page.text
