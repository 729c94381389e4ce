"""The community feed: who reads and posts where, @mentions that notify once, likes, comments under the
live room's moderation, pins, deletion, and the system posts published from other domains' events."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from linli import community
from linli.community.feed import posts, system
from linli.community.feed.models import FeedComment, FeedLike, FeedPost
from linli.community.models import InboxItem
from linli.core.consumers import ConsumerRegistry, drain, run_consumer_once
from linli.core.db import Database
from linli.core.errors import TooManyRequests
from linli.core.events import Subjects, record_event
from linli.core.runtime import Runtime
from linli.identity.models import User
from linli.live.models import SensitiveWord
from tests.community.feedkit import make_place
from tests.factories import Caller


async def _inbox(db: Database, user_id: int, kind: str | None = None) -> list[InboxItem]:
    async with db.sessionmaker() as session:
        query = select(InboxItem).where(InboxItem.user_id == user_id)
        if kind:
            query = query.where(InboxItem.kind == kind)
        return list((await session.scalars(query.order_by(InboxItem.id))).all())


async def _post(
    client: httpx.AsyncClient, caller: Caller, community_id: int, text: str, **extra
) -> httpx.Response:
    return await client.post(
        f"/api/v1/c/{community_id}/posts", json={"text": text, **extra}, headers=caller.headers
    )


class TestWhoReadsAndPosts:
    async def test_a_neighbour_reads_only_their_own_communitys_feed(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        wutong = await make_place(db, name="梧桐苑")
        xiangzhang = await make_place(db, name="香樟花园")
        created = await _post(client, wutong.leader, wutong.community.id, "明早 8 点到货")
        assert created.status_code == 201, created.text
        post_id = created.json()["id"]

        mine = await client.get(
            f"/api/v1/c/{wutong.community.id}/posts", headers=wutong.neighbours[0].headers
        )
        assert mine.status_code == 200
        assert [p["text"] for p in mine.json()["posts"]] == ["明早 8 点到货"]
        assert mine.json()["can_post"] is False

        outsider = xiangzhang.neighbours[0]
        other = await client.get(f"/api/v1/c/{wutong.community.id}/posts", headers=outsider.headers)
        assert other.status_code == 403
        assert other.json()["error"] == "FeedNotVisible"
        # Nor through the post's id: another community's post does not exist for them.
        for method, url in (
            ("GET", f"/api/v1/feed/posts/{post_id}"),
            ("PUT", f"/api/v1/feed/posts/{post_id}/like"),
            ("POST", f"/api/v1/feed/posts/{post_id}/comments"),
        ):
            r = await client.request(method, url, json={"text": "hi"}, headers=outsider.headers)
            assert r.status_code == 404, (method, url, r.text)
        page = await client.get(
            f"/c/{wutong.community.id}", headers={**outsider.headers, "accept": "text/html"}
        )
        assert page.status_code == 403
        assert "明早 8 点到货" not in page.text
        # Operators read every feed.
        assert (
            await client.get(f"/api/v1/c/{wutong.community.id}/posts", headers=operator.headers)
        ).status_code == 200

    async def test_only_brand_leader_and_tasters_post_and_never_in_another_community(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        wutong = await make_place(db, name="梧桐苑")
        xiangzhang = await make_place(db, name="香樟花园")
        neighbour = await _post(client, wutong.neighbours[0], wutong.community.id, "我也想发")
        assert neighbour.status_code == 403
        assert neighbour.json()["error"] == "NotAllowedToPost"
        foreign = await _post(client, xiangzhang.leader, wutong.community.id, "串门")
        assert foreign.status_code == 403
        assert foreign.json()["error"] == "FeedNotVisible"
        labels = []
        for caller in (operator, wutong.leader, wutong.taster):
            r = await _post(client, caller, wutong.community.id, "好消息")
            assert r.status_code == 201, r.text
            labels.append(r.json()["label"])
        assert labels == ["brand", "leader", "taster"]
        async with db.sessionmaker() as session:
            total = await session.scalar(select(func.count()).select_from(FeedPost))
        assert total == 3

    async def test_bad_input_is_a_clear_4xx_and_text_is_never_markup(
        self, client: httpx.AsyncClient, db: Database
    ) -> None:
        place = await make_place(db)
        for body in ({"text": ""}, {"text": "x" * 1001}, {"text": "ok", "video_url": "javascript:alert(1)"}):
            r = await client.post(
                f"/api/v1/c/{place.community.id}/posts", json=body, headers=place.leader.headers
            )
            assert r.status_code == 422, body
            assert set(r.json()) >= {"error", "detail"}
        r = await _post(client, place.leader, place.community.id, "<script>alert(1)</script> 青团")
        assert r.status_code == 201
        page = await client.get(
            f"/c/{place.community.id}", headers={**place.neighbours[0].headers, "accept": "text/html"}
        )
        assert "<script>alert(1)</script>" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt; 青团" in page.text


class TestMentions:
    async def test_a_mention_links_to_the_person_and_notifies_them_once(
        self, client: httpx.AsyncClient, db: Database
    ) -> None:
        place = await make_place(db, nicknames=("张哥", "李姐"))
        zhang, li = place.neighbours
        r = await _post(
            client,
            place.leader,
            place.community.id,
            "谢谢@张哥 帮大家拿货",
            mention_user_ids=[zhang.user.id, zhang.user.id],
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["segments"] == [
            {"text": "谢谢", "user_id": None},
            {"text": "@张哥", "user_id": zhang.user.id},
            {"text": " 帮大家拿货", "user_id": None},
        ]
        [item] = await _inbox(db, zhang.user.id, posts.KIND_MENTION)
        assert item.link == f"/c/{place.community.id}#post-{body['id']}"
        assert await _inbox(db, li.user.id) == []
        # A mention of someone outside the community is refused, and nothing is posted.
        other = await make_place(db, name="香樟花园")
        refused = await _post(
            client, place.leader, place.community.id, "@外人", mention_user_ids=[other.neighbours[0].user.id]
        )
        assert refused.status_code == 422
        page = await client.get(f"/c/{place.community.id}", headers={**li.headers, "accept": "text/html"})
        assert f'href="/c/{place.community.id}?person={zhang.user.id}"' in page.text
        person = await client.get(
            f"/api/v1/c/{place.community.id}/posts", params={"person_id": zhang.user.id}, headers=li.headers
        )
        assert [p["id"] for p in person.json()["posts"]] == [body["id"]]

    async def test_a_system_post_from_a_repeated_event_appears_and_notifies_once(
        self, db: Database, runtime: Runtime
    ) -> None:
        place = await make_place(db, nicknames=("张哥",))
        zhang = place.neighbours[0]
        community.register_background(runtime)
        consumer = runtime.consumers.consumers[system.CONSUMER]
        await run_consumer_once(db, consumer)  # the cursor starts at the end of the log
        payload = {
            "referrer_id": zhang.user.id,
            "referrer_name": "张哥",
            "community_id": place.community.id,
            "community_name": place.community.name,
            "week": "2026-W49",
            "conversions": 3,
            "text": "恭喜@张哥成为本周的'社区美食推荐官'!",
        }
        async with db.sessionmaker() as session:
            for _ in range(2):  # at least once: the same honour delivered twice
                record_event(
                    session,
                    system.HONOURED,
                    subjects=Subjects(user_id=zhang.user.id, community_id=place.community.id),
                    payload=payload,
                )
            await session.commit()
        await drain(db, ConsumerRegistry({consumer.name: consumer}))
        async with db.sessionmaker() as session:
            rows = list((await session.scalars(select(FeedPost).where(FeedPost.kind == "system"))).all())
            mentions = await posts.mentions_of(session, [p.id for p in rows])
        assert [(p.community_id, p.label, p.text) for p in rows] == [
            (place.community.id, "honour", "【荣誉】恭喜@张哥成为本周的'社区美食推荐官'!")
        ]
        assert mentions == {rows[0].id: [zhang.user.id]}
        assert len(await _inbox(db, zhang.user.id, posts.KIND_MENTION)) == 1


class TestSystemPosts:
    @pytest.fixture
    async def consumer(self, db: Database, runtime: Runtime):
        community.register_background(runtime)
        c = runtime.consumers.consumers[system.CONSUMER]
        await run_consumer_once(db, c)
        return ConsumerRegistry({c.name: c})

    async def test_group_progress_reached_and_lottery_winners(
        self, db: Database, consumer: ConsumerRegistry
    ) -> None:
        wutong = await make_place(db, name="梧桐苑", nicknames=("王阿姨",))
        xz = await make_place(db, name="香樟花园", nicknames=("赵叔",))
        subjects = Subjects(session_id=7, community_id=wutong.community.id)
        async with db.sessionmaker() as session:
            for units in (10, 26, 27, 41, 45):
                record_event(
                    session,
                    system.GROUP_PROGRESSED,
                    subjects=subjects,
                    payload={
                        "group_order_id": 3,
                        "community_name": "梧桐苑",
                        "units": units,
                        "threshold": 50,
                        "reached": False,
                    },
                )
            for _ in range(2):
                record_event(
                    session,
                    system.GROUP_REACHED,
                    subjects=subjects,
                    payload={
                        "group_order_id": 3,
                        "community_name": "梧桐苑",
                        "units": 50,
                        "threshold": 50,
                        "deliver_by": "2026-12-05T02:00:00+00:00",
                        "promise_text": "明天上午10点前免费配送到小区自提点",
                    },
                )
            record_event(
                session,
                system.LOTTERY_DRAWN,
                subjects=Subjects(session_id=7),
                payload={
                    "lottery_id": 9,
                    "prize_name": "青团一盒",
                    "winner_user_ids": [wutong.neighbours[0].user.id, xz.neighbours[0].user.id],
                    "winners": [],
                },
            )
            await session.commit()
        await drain(db, consumer)
        async with db.sessionmaker() as session:
            rows = list((await session.scalars(select(FeedPost).order_by(FeedPost.id))).all())
        texts = [(p.community_id, p.label, p.text) for p in rows]
        assert texts[:3] == [
            (
                wutong.community.id,
                "group",
                "【拼团进度】梧桐苑拼团进度 26/50 份,已过50%,还差 24 份就能免费送到小区自提点!",
            ),
            (
                wutong.community.id,
                "group",
                "【拼团进度】梧桐苑拼团进度 41/50 份,已过80%,还差 9 份就能免费送到小区自提点!",
            ),
            (
                wutong.community.id,
                "group",
                "【成团】梧桐苑拼团成团啦!已拼 50 份(满 50 份)。\n明天上午10点前免费配送到小区自提点",
            ),
        ]
        assert texts[3:] == [
            (wutong.community.id, "lottery", "【开奖】直播间抽奖:恭喜@王阿姨 抽中青团一盒!"),
            (xz.community.id, "lottery", "【开奖】直播间抽奖:恭喜@赵叔 抽中青团一盒!"),
        ]
        assert len(await _inbox(db, xz.neighbours[0].user.id, posts.KIND_MENTION)) == 1


class TestModeration:
    async def test_comments_refuse_sensitive_words_rate_limit_and_mutes(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        place = await make_place(db)
        async with db.sessionmaker() as session:
            session.add(SensitiveWord(word="骗子"))
            await session.commit()
        post_id = (await _post(client, place.leader, place.community.id, "开团了")).json()["id"]
        neighbour = place.neighbours[0]
        url = f"/api/v1/feed/posts/{post_id}/comments"
        refused = await client.post(url, json={"text": "骗 子!"}, headers=neighbour.headers)
        assert refused.status_code == 422
        assert refused.json()["error"] == "TextRefused"
        for i in range(posts.COMMENT_RATE_LIMIT):
            assert (
                await client.post(url, json={"text": f"好 {i}"}, headers=neighbour.headers)
            ).status_code == 201
        assert (await client.post(url, json={"text": "太快"}, headers=neighbour.headers)).status_code == 429
        # Staff mute a neighbour: their comments are refused until the mute ends.
        other = place.neighbours[1]
        muted = await client.post(
            "/api/v1/admin/feed/mutes",
            json={"user_id": other.user.id, "minutes": 30},
            headers=operator.headers,
        )
        assert muted.status_code == 201
        r = await client.post(url, json={"text": "我来了"}, headers=other.headers)
        assert r.status_code == 403
        assert r.json()["error"] == "MutedInFeed"
        listed = await client.get(url, headers=other.headers)
        assert [c["text"] for c in listed.json()] == [f"好 {i}" for i in range(posts.COMMENT_RATE_LIMIT)]
        # The leader removes a comment; a neighbour cannot remove someone else's.
        first = listed.json()[0]["id"]
        assert (
            await client.delete(f"/api/v1/feed/comments/{first}", headers=other.headers)
        ).status_code == 403
        assert (
            await client.delete(f"/api/v1/feed/comments/{first}", headers=place.leader.headers)
        ).status_code == 204
        read = await client.get(f"/api/v1/feed/posts/{post_id}", headers=other.headers)
        assert read.json()["comment_count"] == posts.COMMENT_RATE_LIMIT - 1

    async def test_likes_are_idempotent_and_pins_come_first(
        self, client: httpx.AsyncClient, db: Database
    ) -> None:
        place = await make_place(db)
        first = (await _post(client, place.leader, place.community.id, "第一条")).json()["id"]
        second = (await _post(client, place.leader, place.community.id, "第二条")).json()["id"]
        n = place.neighbours[0]
        for _ in range(2):
            r = await client.put(f"/api/v1/feed/posts/{first}/like", headers=n.headers)
            assert r.json() == {"post_id": first, "liked": True, "like_count": 1}
        r = await client.delete(f"/api/v1/feed/posts/{first}/like", headers=n.headers)
        assert r.json()["like_count"] == 0
        assert (await client.put(f"/api/v1/feed/posts/{first}/pin", headers=n.headers)).status_code == 403
        assert (
            await client.put(f"/api/v1/feed/posts/{first}/pin", headers=place.leader.headers)
        ).status_code == 200
        feed = await client.get(f"/api/v1/c/{place.community.id}/posts", headers=n.headers)
        assert [(p["id"], p["pinned"]) for p in feed.json()["posts"]] == [(first, True), (second, False)]
        assert (await client.delete(f"/api/v1/feed/posts/{second}", headers=n.headers)).status_code == 403
        assert (
            await client.delete(f"/api/v1/feed/posts/{second}", headers=place.leader.headers)
        ).status_code == 204
        feed = await client.get(f"/api/v1/c/{place.community.id}/posts", headers=n.headers)
        assert [p["id"] for p in feed.json()["posts"]] == [first]


class TestSessionStarted:
    async def test_going_live_is_posted_in_the_campaigns_communities(
        self, db: Database, runtime: Runtime, operator: Caller
    ) -> None:
        from datetime import timedelta

        from linli.community.feed import preheat
        from linli.core.clock import utcnow

        wutong, xz = await make_place(db, name="梧桐苑"), await make_place(db, name="香樟花园")
        community.register_background(runtime)
        c = runtime.consumers.consumers[system.CONSUMER]
        await run_consumer_once(db, c)
        async with db.sessionmaker() as session:
            user = await session.get(type(operator.user), operator.user.id)
            await preheat.plan_campaign(
                session,
                actor=user,
                session_id=77,
                session_title="春日青团节",
                session_start=utcnow() + timedelta(days=1),
                title="预热",
                community_ids=[wutong.community.id],
                items=[
                    preheat.ItemPlan(kind="teaser", publish_at=utcnow() + timedelta(hours=1), text="明天见")
                ],
            )
            for _ in range(2):
                record_event(
                    session,
                    system.SESSION_STARTED,
                    subjects=Subjects(session_id=77),
                    payload={"from": "scheduled", "to": "live"},
                )
            record_event(
                session,
                system.SESSION_STARTED,
                subjects=Subjects(session_id=78),
                payload={"from": "scheduled", "to": "live"},
            )
            await session.commit()
        await drain(db, ConsumerRegistry({c.name: c}))
        async with db.sessionmaker() as session:
            rows = list((await session.scalars(select(FeedPost).order_by(FeedPost.id))).all())
        assert [(p.community_id, p.session_id, p.label, p.text) for p in rows] == [
            (wutong.community.id, 77, "live", "【直播中】春日青团节,点击进入直播间,边看边买!")
        ]
        del xz


class TestOperatorPages:
    async def test_tasters_are_invited_by_phone_and_may_post_and_c_finds_each_ones_feed(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        place = await make_place(db)
        html = {"accept": "text/html"}
        neighbour = place.neighbours[0]
        r = await client.post(
            "/admin/feed/tasters",
            data={"community_id": str(place.community.id), "phone": neighbour.user.phone},
            headers={**operator.headers, **html},
        )
        assert r.status_code == 303
        assert "done=" in r.headers["location"]
        again = await client.post(
            "/admin/feed/tasters",
            data={"community_id": str(place.community.id), "phone": neighbour.user.phone},
            headers={**operator.headers, **html},
        )
        assert "error=" in again.headers["location"]
        assert (await _post(client, neighbour, place.community.id, "试吃官来报到")).status_code == 201
        [invite] = await _inbox(db, neighbour.user.id, "feed_taster")
        assert invite.link == f"/c/{place.community.id}"
        page = await client.get("/admin/feed", headers={**operator.headers, **html})
        assert neighbour.user.display_name in page.text
        assert (await client.get("/admin/feed", headers={**neighbour.headers, **html})).status_code == 403
        for caller in (neighbour, place.leader):
            r = await client.get("/c", headers={**caller.headers, **html})
            assert r.headers["location"] == f"/c/{place.community.id}"
        assert (await client.get("/c", headers={**operator.headers, **html})).headers[
            "location"
        ] == "/admin/feed"


# --- property: likes and comments, in any order and repetition, keep the counts equal to the rows ------

feed_steps = st.lists(
    st.tuples(
        st.sampled_from(["like", "unlike", "comment", "uncomment"]), st.integers(0, 2), st.integers(0, 5)
    ),
    max_size=14,
)


async def _check_counts(url: str, ops: list[tuple[str, int, int]]) -> None:
    db = Database(url, pool=False)
    try:
        place = await make_place(db, name=f"性质{len(ops)}", neighbours=3)
        async with db.sessionmaker() as session:
            post = await posts.publish_post(session, community_id=place.community.id, text="计数")
            await session.commit()
        likers: set[int] = set()
        comment_ids: list[int] = []
        for op, who, pick in ops:
            async with db.sessionmaker() as session:
                user = await session.get(User, place.neighbours[who].user.id)
                assert user is not None
                if op in ("like", "unlike"):
                    row = await posts.like(session, user, post.id, op == "like")
                    (likers.add if op == "like" else likers.discard)(user.id)
                    assert row.like_count == len(likers)
                elif op == "comment":
                    try:
                        comment = await posts.add_comment(session, None, user, post.id, f"第{pick}条")
                    except TooManyRequests:  # over 5 in 10 s: refused, and nothing written
                        await session.rollback()
                        continue
                    comment_ids.append(comment.id)
                elif comment_ids:
                    staff = await session.get(User, place.leader.user.id)
                    assert staff is not None
                    await posts.delete_comment(session, staff, comment_ids.pop(pick % len(comment_ids)))
                await session.commit()
        async with db.sessionmaker() as session:
            row = await session.get(FeedPost, post.id)
            assert row is not None
            likes = await session.scalar(
                select(func.count()).select_from(FeedLike).where(FeedLike.post_id == post.id)
            )
            comments = await session.scalar(
                select(func.count())
                .select_from(FeedComment)
                .where(FeedComment.post_id == post.id, FeedComment.deleted_at.is_(None))
            )
        assert (row.like_count, row.comment_count) == (likes, comments) == (len(likers), len(comment_ids))
    finally:
        await db.dispose()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=feed_steps)
def test_like_and_comment_counts_match_their_rows(database_url: str, ops: list[tuple[str, int, int]]) -> None:
    asyncio.run(_check_counts(database_url, ops))
