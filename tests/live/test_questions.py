"""The host console's most-asked questions and figures: what counts as a question, grouping of the same
question in other words, ranking by distinct askers (not by how often one neighbour repeats himself),
answered questions sinking, the host's own words left out, and only the session's host or an operator
allowed to read them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linli.core.clock import utcnow
from linli.core.db import Database
from linli.identity.models import User
from linli.identity.tokens import issue_session
from linli.live.models import Comment, SessionStatus
from linli.live.questions import Asked, group_questions, is_question, question_key, similarity
from tests.factories import Caller, make_user_with_token
from tests.live.factories import make_host, make_lineup_item, make_session

T0 = utcnow()


def _asked(comment_id: int, user_id: int, text: str, seconds: int = 0) -> Asked:
    return Asked(
        comment_id=comment_id,
        user_id=user_id,
        user_name=f"邻居{user_id}",
        text=text,
        at=T0 + timedelta(seconds=seconds if seconds else comment_id),
    )


class TestIsQuestion:
    @pytest.mark.parametrize(
        "text",
        [
            "青团还有吗",
            "青团还有货吗？",
            "这个多少钱",
            "几点发货",
            "怎么自提",
            "什么时候到",
            "能不能送到梧桐苑",
            "有没有豆沙馅的",
            "豆沙的呢",
            "保质期?",
            "How much is it",
        ],
    )
    def test_questions(self, text: str) -> None:
        assert is_question(text)

    @pytest.mark.parametrize(
        "text", ["今天好开心", "哈哈哈哈", "买了买了", "几乎抢光了", "主播好美", "666", ""]
    )
    def test_not_questions(self, text: str) -> None:
        assert not is_question(text)


class TestGrouping:
    def test_same_question_in_other_words_is_one_group(self) -> None:
        groups = group_questions(
            [
                _asked(1, 10, "青团还有吗"),
                _asked(2, 11, "请问青团还有货吗？"),
                _asked(3, 12, "主播，青团还有吗～"),
                _asked(4, 13, "艾草团还有吗"),
                _asked(5, 14, "几点发货"),
            ]
        )
        by_first = {g.representative.comment_id: g for g in groups}
        assert sorted(by_first[1].comment_ids) == [1, 2, 3]
        assert by_first[1].askers == 3
        assert by_first[1].representative.text == "青团还有吗"
        assert by_first[1].samples == ["青团还有吗", "请问青团还有货吗？", "主播，青团还有吗～"]
        assert by_first[4].comment_ids == [4]
        assert by_first[5].comment_ids == [5]
        assert [g.representative.comment_id for g in groups][0] == 1

    def test_ranked_by_distinct_askers_not_by_repeats(self) -> None:
        repeated = [_asked(i, 10, "几点发货") for i in range(1, 6)]  # one neighbour, five times
        many = [_asked(10 + i, 20 + i, "能送到梧桐苑吗") for i in range(3)]  # three neighbours
        two = [_asked(30, 40, "保质期多久"), _asked(31, 41, "保质期多久？")]
        groups = group_questions([*repeated, *many, *two])
        assert [(g.key, g.askers, g.count) for g in groups] == [
            (question_key("能送到梧桐苑吗"), 3, 3),
            (question_key("保质期多久"), 2, 2),
            (question_key("几点发货"), 1, 5),
        ]

    def test_answered_groups_sink(self) -> None:
        asked = [_asked(1, 10, "几点发货"), _asked(2, 11, "几点发货呀"), _asked(3, 12, "保质期多久")]
        groups = group_questions(asked, answered_ids=[2])
        assert [(g.representative.comment_id, g.answered) for g in groups] == [(3, False), (1, True)]

    def test_similarity_is_symmetric_and_bounded(self) -> None:
        a, b = question_key("青团还有吗"), question_key("青团还有货吗")
        assert similarity(a, b) == similarity(b, a)
        assert 0 <= similarity(a, "") <= similarity(a, a) == 100

    @settings(max_examples=60, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.integers(min_value=1, max_value=6),
                st.sampled_from(
                    ["青团还有吗", "青团还有货吗", "几点发货", "几点到货", "多少钱", "能送吗", "啥馅"]
                ),
            ),
            max_size=30,
        )
    )
    def test_every_question_in_exactly_one_ranked_group(self, rows: list[tuple[int, str]]) -> None:
        asked = [_asked(i + 1, user, text) for i, (user, text) in enumerate(rows)]
        groups = group_questions(asked)
        ids = [i for g in groups for i in g.comment_ids]
        assert sorted(ids) == [a.comment_id for a in asked]
        for group in groups:
            assert 1 <= group.askers <= group.count
            assert group.representative.comment_id == min(group.comment_ids)
            assert group.asker_ids == {a.user_id for a in asked if a.comment_id in group.comment_ids}
        order = [(g.answered, -g.askers, -g.count) for g in groups]
        assert order == sorted(order)


@dataclass
class Room:
    session_id: int
    item_id: int
    host: Caller
    neighbours: list[Caller]


async def _caller(db: Database, user_id: int) -> Caller:
    async with db.sessionmaker() as session:
        user = await session.get(User, user_id)
        assert user is not None
        token = await issue_session(session, user)
        await session.commit()
    return Caller(user, token)


@pytest.fixture
async def room(db: Database) -> Room:
    async with db.sessionmaker() as session:
        host = await make_host(session, nickname="小麦主播")
        live = await make_session(session, status=SessionStatus.live, host=host)
        item = await make_lineup_item(session, live_session=live, stock=50, reserved=3, sold=7)
        await session.commit()
        ids = live.id, host.id, item.id
    neighbours = [Caller(*await make_user_with_token(db, nickname=n)) for n in ("李姐", "张哥", "王阿姨")]
    return Room(ids[0], ids[2], await _caller(db, ids[1]), neighbours)


async def _say(
    client: httpx.AsyncClient, room: Room, who: Caller, text: str, reply_to: int | None = None
) -> int:
    body: dict[str, object] = {"text": text}
    if reply_to is not None:
        body["reply_to_id"] = reply_to
    response = await client.post(
        f"/api/v1/sessions/{room.session_id}/comments", json=body, headers=who.headers
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


class TestApi:
    async def test_host_sees_most_asked_and_answers(self, client: httpx.AsyncClient, room: Room) -> None:
        li, zhang, wang = room.neighbours
        first = await _say(client, room, li, "青团还有吗？")
        await _say(client, room, li, "青团还有吗？？")
        await _say(client, room, zhang, "请问青团还有货吗")
        await _say(client, room, wang, "青团还有吗")
        await _say(client, room, zhang, "几点发货")
        await _say(client, room, zhang, "几点发货呀")
        await _say(client, room, wang, "主播今天好美")  # not a question
        await _say(client, room, room.host, "大家有什么问题吗？")  # the host's own

        url = f"/api/v1/host/sessions/{room.session_id}/questions"
        response = await client.get(url, headers=room.host.headers)
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert [(q["text"], q["askers"], q["count"]) for q in items] == [
            ("青团还有吗？", 3, 4),
            ("几点发货", 1, 2),
        ]
        top = items[0]
        assert top["comment_id"] == first
        assert top["user"]["name"] == "李姐"
        assert len(top["comment_ids"]) == 4
        assert top["answered"] is False

        await _say(client, room, room.host, "还有两百份，放心拍！", reply_to=top["comment_id"])
        after = (await client.get(url, headers=room.host.headers)).json()["items"]
        assert [(q["text"], q["answered"]) for q in after] == [("几点发货", False), ("青团还有吗？", True)]

        room_comments = (await client.get(f"/api/v1/sessions/{room.session_id}/comments")).json()["items"]
        reply = room_comments[-1]
        assert reply["reply_to"]["id"] == first

    async def test_only_the_host_or_an_operator(
        self, client: httpx.AsyncClient, db: Database, room: Room, operator: Caller
    ) -> None:
        await _say(client, room, room.neighbours[0], "几点发货？")
        async with db.sessionmaker() as session:
            other_host = await make_host(session, nickname="别的主播")
            await session.commit()
            other_id = other_host.id
        other = await _caller(db, other_id)
        for path in ("questions", "stats"):
            url = f"/api/v1/host/sessions/{room.session_id}/{path}"
            assert (await client.get(url, headers=room.neighbours[0].headers)).status_code == 403
            assert (await client.get(url, headers=other.headers)).status_code == 403
            assert (await client.get(url)).status_code == 401
            assert (await client.get(url, headers=operator.headers)).status_code == 200
        missing = await client.get("/api/v1/host/sessions/999999/questions", headers=operator.headers)
        assert missing.status_code == 404

    async def test_stats(self, client: httpx.AsyncClient, room: Room) -> None:
        for text in ("第一", "第二", "第三"):
            await _say(client, room, room.neighbours[0], text)
        await _say(client, room, room.neighbours[1], "几点发货？")
        response = await client.get(
            f"/api/v1/host/sessions/{room.session_id}/stats", headers=room.host.headers
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["window_minutes"] == 5
        assert body["comments_in_window"] == 4
        assert body["comments_per_minute"] == 0.8
        assert body["items"] == [
            {"item_id": room.item_id, "name": body["items"][0]["name"], "stock_left": 40}
        ]
        assert body["viewers"] is None  # nobody opened the room in this process

    async def test_only_recent_questions_count(
        self, client: httpx.AsyncClient, db: Database, room: Room
    ) -> None:
        async with db.sessionmaker() as session:
            session.add(
                Comment(
                    session_id=room.session_id,
                    user_id=room.neighbours[0].user.id,
                    text="昨天的青团还有吗？",
                    created_at=utcnow() - timedelta(hours=2),
                )
            )
            await session.commit()
        await _say(client, room, room.neighbours[1], "几点发货？")
        url = f"/api/v1/host/sessions/{room.session_id}/questions"
        recent = (await client.get(url, headers=room.host.headers)).json()["items"]
        assert [q["text"] for q in recent] == ["几点发货？"]
        wider = (await client.get(url, params={"minutes": 180}, headers=room.host.headers)).json()
        assert {q["text"] for q in wider["items"]} == {"几点发货？", "昨天的青团还有吗？"}
        assert (await client.get(url, params={"minutes": 0}, headers=room.host.headers)).status_code == 422
