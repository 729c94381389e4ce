"""Comments and their moderation through the API: length, text kept as typed, the sensitive-word filter,
the rate limit (hosts exempt), mute, ban by account and device, delete, the host's reply, events."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from linli.core.db import Database
from linli.core.events import Event
from linli.identity.models import Device, Role, User
from linli.live.models import Comment, SessionStatus
from tests.factories import Caller, bearer, make_user_with_token
from tests.live.factories import make_host, make_session


@dataclass
class Setup:
    session_id: int
    host: Caller
    neighbour: Caller


@pytest.fixture
async def room(db: Database) -> Setup:
    async with db.sessionmaker() as session:
        host = await make_host(session, nickname="小麦主播")
        live = await make_session(session, status=SessionStatus.live, host=host)
        await session.commit()
        session_id, host_id = live.id, host.id
    async with db.sessionmaker() as session:
        from linli.identity.tokens import issue_session

        host_user = await session.get(User, host_id)
        assert host_user is not None
        host_token = await issue_session(session, host_user)
        await session.commit()
    neighbour, token = await make_user_with_token(db, nickname="李姐")
    return Setup(session_id, Caller(host_user, host_token), Caller(neighbour, token))


def _comments(room: Setup) -> str:
    return f"/api/v1/sessions/{room.session_id}/comments"


def _host(room: Setup, what: str) -> str:
    return f"/api/v1/host/sessions/{room.session_id}/{what}"


async def _events(db: Database, type_: str) -> list[Event]:
    async with db.sessionmaker() as session:
        return list((await session.scalars(select(Event).where(Event.type == type_))).all())


async def test_post_list_and_event(client: httpx.AsyncClient, db: Database, room: Setup) -> None:
    text = "  <script>alert('x')</script>\n 青团  还有吗?  "
    response = await client.post(_comments(room), json={"text": text}, headers=room.neighbour.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["text"] == "<script>alert('x')</script> 青团 还有吗?"
    assert body["user"] == {"id": room.neighbour.user.id, "name": "李姐"}
    assert body["staff"] is False
    assert body["reply_to"] is None
    listed = (await client.get(_comments(room))).json()["items"]
    assert [c["text"] for c in listed] == [body["text"]]
    (event,) = await _events(db, "comment.posted")
    assert event.session_id == room.session_id
    assert event.user_id == room.neighbour.user.id
    assert event.payload["text"] == body["text"]


@pytest.mark.parametrize("text", ["", "   ", "字" * 201, "bad\x00byte"])
async def test_invalid_text_is_refused(client: httpx.AsyncClient, room: Setup, text: str) -> None:
    response = await client.post(_comments(room), json={"text": text}, headers=room.neighbour.headers)
    assert response.status_code == 422
    assert response.json()["error"] == "InvalidComment"


async def test_anonymous_cannot_post(client: httpx.AsyncClient, room: Setup) -> None:
    assert (await client.post(_comments(room), json={"text": "你好"})).status_code == 401


async def test_sensitive_words_are_refused_after_normalising(
    client: httpx.AsyncClient, db: Database, room: Setup, operator: Caller
) -> None:
    words = "/api/v1/admin/sensitive-words"
    assert (
        await client.post(words, json={"word": "骗子"}, headers=room.neighbour.headers)
    ).status_code == 403
    added = await client.post(words, json={"word": "骗子"}, headers=operator.headers)
    assert added.status_code == 201, added.text
    assert (await client.post(words, json={"word": "骗子"}, headers=operator.headers)).status_code == 409
    await client.post(words, json={"word": "Spam"}, headers=operator.headers)
    for text in ("你是骗 子吧", "SPAM!!", "ｓｐａｍ"):
        refused = await client.post(_comments(room), json={"text": text}, headers=room.neighbour.headers)
        assert refused.status_code == 422, text
        assert refused.json()["error"] == "CommentRefused"
    ok = await client.post(_comments(room), json={"text": "青团真香"}, headers=room.neighbour.headers)
    assert ok.status_code == 201
    word_id = added.json()["id"]
    assert (await client.delete(f"{words}/{word_id}", headers=operator.headers)).status_code == 204
    again = await client.post(_comments(room), json={"text": "不是骗子"}, headers=room.neighbour.headers)
    assert again.status_code == 201
    listed = (await client.get(words, headers=operator.headers)).json()
    assert [w["word"] for w in listed] == ["Spam"]


async def test_rate_limit_with_hosts_exempt(client: httpx.AsyncClient, room: Setup) -> None:
    # A fixed 10-second window: posts straddling its edge may see two windows, never more than 2 × 5.
    statuses = []
    for n in range(11):
        response = await client.post(_comments(room), json={"text": f"{n}"}, headers=room.neighbour.headers)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert "Retry-After" in response.headers
            break
    assert statuses[-1] == 429
    assert statuses[:5] == [201] * 5 or statuses.count(201) >= 5
    for n in range(12):
        ok = await client.post(_comments(room), json={"text": f"主播{n}"}, headers=room.host.headers)
        assert ok.status_code == 201


async def test_mute_stops_posting_not_watching(client: httpx.AsyncClient, db: Database, room: Setup) -> None:
    muted = await client.post(
        _host(room, "mutes"),
        json={"user_id": room.neighbour.user.id, "minutes": 5},
        headers=room.host.headers,
    )
    assert muted.status_code == 201, muted.text
    refused = await client.post(_comments(room), json={"text": "嗨"}, headers=room.neighbour.headers)
    assert refused.status_code == 403
    assert refused.json()["error"] == "UserMuted"
    assert "until" in refused.json()["context"]
    assert len(await _events(db, "user.muted")) == 1
    lifted = await client.delete(_host(room, f"mutes/{room.neighbour.user.id}"), headers=room.host.headers)
    assert lifted.json() == {"lifted": 1}
    assert (
        await client.post(_comments(room), json={"text": "嗨"}, headers=room.neighbour.headers)
    ).status_code == 201


async def test_ban_covers_account_and_device(client: httpx.AsyncClient, db: Database, room: Setup) -> None:
    # 李姐 comments from her phone (anonymous id cookie), which is also linked to her account.
    client.cookies.set("linli_aid", "li-jie-phone-0001")
    first = await client.post(_comments(room), json={"text": "我先说"}, headers=room.neighbour.headers)
    assert first.status_code == 201
    async with db.sessionmaker() as session:
        session.add(Device(anonymous_id="li-jie-tablet-002", user_id=room.neighbour.user.id))
        await session.commit()
    banned = await client.post(
        _host(room, "bans"),
        json={"user_id": room.neighbour.user.id, "reason": "广告"},
        headers=room.host.headers,
    )
    assert banned.status_code == 201, banned.text
    assert banned.json()["devices"] == 2
    (event,) = await _events(db, "user.banned")
    assert sorted(event.payload["anonymous_ids"]) == ["li-jie-phone-0001", "li-jie-tablet-002"]
    refused = await client.post(_comments(room), json={"text": "我又来了"}, headers=room.neighbour.headers)
    assert refused.status_code == 403
    assert refused.json()["error"] == "UserBanned"
    # Another account on the same phone is still kept out.
    _other, token = await make_user_with_token(db, nickname="小号")
    sock = await client.post(_comments(room), json={"text": "换个号"}, headers=bearer(token))
    assert sock.status_code == 403
    client.cookies.set("linli_aid", "someone-elses-phone")
    assert (
        await client.post(_comments(room), json={"text": "正常人"}, headers=bearer(token))
    ).status_code == 201


async def test_staff_cannot_be_muted_and_neighbours_cannot_moderate(
    client: httpx.AsyncClient, db: Database, room: Setup
) -> None:
    refused = await client.post(
        _host(room, "bans"), json={"user_id": room.host.user.id}, headers=room.host.headers
    )
    assert refused.status_code == 403
    assert refused.json()["error"] == "CannotModerateStaff"
    posted = await client.post(_comments(room), json={"text": "hi"}, headers=room.neighbour.headers)
    comment_id = posted.json()["id"]
    forbidden = await client.delete(_host(room, f"comments/{comment_id}"), headers=room.neighbour.headers)
    assert forbidden.status_code == 403
    # A host of another session is not this room's moderator.
    async with db.sessionmaker() as session:
        await make_host(session, nickname="别的主播")
        await session.commit()
    other_host, token = await make_user_with_token(db, roles=(Role.host,), nickname="别的主播2")
    not_theirs = await client.delete(_host(room, f"comments/{comment_id}"), headers=bearer(token))
    assert not_theirs.status_code == 403
    assert not_theirs.json()["error"] == "NotModerator"


async def test_delete_and_reply(client: httpx.AsyncClient, db: Database, room: Setup) -> None:
    question = await client.post(
        _comments(room), json={"text": "青团是今天做的吗?"}, headers=room.neighbour.headers
    )
    spam = await client.post(_comments(room), json={"text": "加我微信"}, headers=room.neighbour.headers)
    # Neighbours do not reply with a quote; the host does.
    no = await client.post(
        _comments(room),
        json={"text": "我也想知道", "reply_to_id": question.json()["id"]},
        headers=room.neighbour.headers,
    )
    assert no.status_code == 403
    reply = await client.post(
        _comments(room),
        json={"text": "今天凌晨现做的!", "reply_to_id": question.json()["id"]},
        headers=room.host.headers,
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["reply_to"] == {
        "id": question.json()["id"],
        "user": {"id": room.neighbour.user.id, "name": "李姐"},
        "text": "青团是今天做的吗?",
    }
    deleted = await client.delete(_host(room, f"comments/{spam.json()['id']}"), headers=room.host.headers)
    assert deleted.status_code == 204
    again = await client.delete(_host(room, f"comments/{spam.json()['id']}"), headers=room.host.headers)
    assert again.status_code == 204
    assert len(await _events(db, "comment.deleted")) == 1
    listed = [c["text"] for c in (await client.get(_comments(room))).json()["items"]]
    assert listed == ["青团是今天做的吗?", "今天凌晨现做的!"]
    async with db.sessionmaker() as session:
        stored = await session.get(Comment, spam.json()["id"])
        assert stored is not None
        assert stored.deleted_at is not None
    missing = await client.post(
        _comments(room), json={"text": "回复", "reply_to_id": spam.json()["id"]}, headers=room.host.headers
    )
    assert missing.status_code == 404


async def test_closed_rooms_refuse_comments(client: httpx.AsyncClient, db: Database, room: Setup) -> None:
    async with db.sessionmaker() as session:
        draft = await make_session(session)
        ended = await make_session(session, status=SessionStatus.ended, host=await make_host(session))
        await session.commit()
    draft_post = await client.post(
        f"/api/v1/sessions/{draft.id}/comments", json={"text": "hi"}, headers=room.neighbour.headers
    )
    assert draft_post.status_code == 404
    ended_post = await client.post(
        f"/api/v1/sessions/{ended.id}/comments", json={"text": "hi"}, headers=room.neighbour.headers
    )
    assert ended_post.status_code == 409
