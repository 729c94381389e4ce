"""The room's channel end to end: a real uvicorn server, real WebSocket clients, comments posted over HTTP
and delivered through the event log, the ``live.room`` consumer and the hub."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import pytest

from linli.core.config import Settings
from linli.core.db import Database
from linli.identity.models import Role, User
from linli.live.models import SessionStatus
from linli.live.room.messages import CLOSE_BANNED, CLOSE_NOT_FOUND
from tests.factories import bearer, make_user_with_token
from tests.live.factories import make_host, make_lineup_item, make_session
from tests.live.roomkit import ThreadServer, close_code, comments_seen, serve_in_thread, watch


@dataclass
class Room:
    session_id: int
    item_id: int
    host: User
    host_token: str
    neighbour: User
    neighbour_token: str


@pytest.fixture
async def room(db: Database) -> Room:
    async with db.sessionmaker() as session:
        host = await make_host(session, nickname="小麦主播")
        live = await make_session(session, status=SessionStatus.live, host=host, title="春日青团节")
        item = await make_lineup_item(session, live_session=live, stock=100)
        await session.commit()
        session_id, item_id = live.id, item.id
    async with db.sessionmaker() as session:
        from linli.identity.tokens import issue_session

        host = await session.get(User, host.id)
        assert host is not None
        host_token = await issue_session(session, host)
        await session.commit()
    neighbour, token = await make_user_with_token(db, nickname="李姐")
    return Room(session_id, item_id, host, host_token, neighbour, token)


async def _post(server: ThreadServer, room: Room, token: str, text: str, **extra: object) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        return await client.post(
            f"/api/v1/sessions/{room.session_id}/comments",
            json={"text": text, **extra},
            headers=bearer(token),
        )


async def test_join_order_and_resume_after_reconnect(settings: Settings, room: Room) -> None:
    with serve_in_thread(settings) as server:
        url = f"{server.ws_url}/ws/live/{room.session_id}"
        async with watch(url) as viewer:
            state = await viewer.first()
            assert state["type"] == "state"
            assert state["session"]["status"] == "live"
            assert [i["id"] for i in state["lineup"]] == [room.item_id]
            assert state["lineup"][0]["stock_left"] == 100
            assert state["comments"] == []
            for n in range(5):
                response = await _post(server, room, room.host_token, f"第{n}条")
                assert response.status_code == 201, response.text
            await viewer.read_until(lambda v: len(v.of_type("comment")) == 5)
            got = viewer.of_type("comment")
            assert [m["text"] for m in got] == [f"第{n}条" for n in range(5)]
            seqs = [m["seq"] for m in got]
            assert seqs == list(range(seqs[0], seqs[0] + 5))
            assert got[0]["user"]["name"] == "小麦主播"
            assert got[0]["staff"] is True
            last = viewer.seq

        # Away for a moment: what was said meanwhile comes back, in order, on reconnecting with since.
        for n in range(5, 8):
            assert (await _post(server, room, room.host_token, f"第{n}条")).status_code == 201
        await asyncio.sleep(0.6)  # delivered to the room while nobody watches
        async with watch(f"{url}?since={last}") as back:
            await back.read_until(lambda v: len(v.of_type("comment")) == 3)
            assert [m["text"] for m in back.of_type("comment")] == ["第5条", "第6条", "第7条"]
            assert [m["seq"] for m in back.of_type("comment")] == [last + 1, last + 2, last + 3]
            assert back.of_type("state") == []
            assert back.of_type("viewers")[0]["count"] >= 1

        # A newcomer gets the state with the latest comments, oldest first.
        async with watch(url) as newcomer:
            state = await newcomer.first()
            assert [c["text"] for c in state["comments"]] == [f"第{n}条" for n in range(8)]
            assert state["seq"] == last + 3


async def test_resume_from_too_far_back_gets_a_fresh_state(settings: Settings, room: Room) -> None:
    with serve_in_thread(settings, ring_size=3) as server:
        url = f"{server.ws_url}/ws/live/{room.session_id}"
        async with watch(url) as viewer:
            await viewer.first()
            for n in range(6):
                assert (await _post(server, room, room.host_token, f"c{n}")).status_code == 201
            await viewer.read_until(lambda v: len(v.of_type("comment")) == 6)
        async with watch(f"{url}?since=1") as back:
            state = await back.first()
            assert state["type"] == "state"
            assert state["reset"] is True
            assert [c["text"] for c in state["comments"]] == [f"c{n}" for n in range(6)]


async def test_many_comments_travel_in_few_frames(settings: Settings, room: Room) -> None:
    with serve_in_thread(settings, tick_seconds=0.2) as server:
        url = f"{server.ws_url}/ws/live/{room.session_id}"
        async with watch(url) as viewer:
            await viewer.first()
            responses = await asyncio.gather(
                *(_post(server, room, room.host_token, f"批量{n}") for n in range(30))
            )
            assert all(r.status_code == 201 for r in responses)
            await viewer.read_until(lambda v: len(v.of_type("comment")) == 30)
            frames_with_comments = [
                f for f in viewer.frames if any(m["type"] == "comment" for m in f["msgs"])
            ]
            assert len(frames_with_comments) < 15
            seqs = [m["seq"] for m in viewer.of_type("comment")]
            assert seqs == sorted(seqs)
            assert len(set(seqs)) == 30
            # Counters are coalesced: never two of a kind in one frame.
            for frame in viewer.frames:
                types = [m["type"] for m in frame["msgs"] if m["type"] in ("viewers", "like_burst", "stock")]
                assert len(types) == len(set(types))


async def test_likes_are_coalesced_into_bursts(settings: Settings, room: Room) -> None:
    with serve_in_thread(settings, housekeeping_seconds=0.3) as server:
        url = f"{server.ws_url}/ws/live/{room.session_id}"
        async with watch(url) as viewer, watch(url) as other:
            await viewer.first()
            await other.first()
            for _ in range(10):
                await other.ws.send('{"type": "like", "n": 3}')
            await viewer.read_until(lambda v: any(m["total"] == 30 for m in v.of_type("like_burst")))
            bursts = viewer.of_type("like_burst")
            assert sum(b["n"] for b in bursts) == 30
            assert len(bursts) < 10
            await viewer.read_until(lambda v: any(m["count"] == 2 for m in v.of_type("viewers")))


async def test_pin_and_status_reach_the_room(settings: Settings, room: Room) -> None:
    with serve_in_thread(settings) as server:
        url = f"{server.ws_url}/ws/live/{room.session_id}"
        async with watch(url) as viewer, httpx.AsyncClient(base_url=server.base_url) as client:
            await viewer.first()
            headers = bearer(room.host_token)
            pinned = await client.put(
                f"/api/v1/host/sessions/{room.session_id}/pin",
                json={"item_id": room.item_id},
                headers=headers,
            )
            assert pinned.status_code == 200, pinned.text
            await viewer.read_until(lambda v: bool(v.of_type("pinned_product")))
            assert viewer.of_type("pinned_product")[0]["item_id"] == room.item_id
            ended = await client.post(
                f"/api/v1/host/sessions/{room.session_id}/transition", json={"to": "ended"}, headers=headers
            )
            assert ended.status_code == 200, ended.text
            await viewer.read_until(lambda v: bool(v.of_type("session_status")))
            assert viewer.of_type("session_status")[0]["status"] == "ended"
            refused = await _post(server, room, room.neighbour_token, "还能说话吗")
            assert refused.status_code == 409


async def test_a_banned_neighbour_is_closed_and_cannot_come_back(
    settings: Settings, room: Room, db: Database
) -> None:
    device = {"Cookie": "linli_aid=device-of-li-jie-0001"}
    with serve_in_thread(settings) as server:
        url = f"{server.ws_url}/ws/live/{room.session_id}"
        async with watch(f"{url}?token={room.neighbour_token}", **device) as banned, watch(url) as bystander:
            await banned.first()
            await bystander.first()
            async with httpx.AsyncClient(base_url=server.base_url) as client:
                response = await client.post(
                    f"/api/v1/host/sessions/{room.session_id}/bans",
                    json={"user_id": room.neighbour.id, "reason": "刷屏"},
                    headers=bearer(room.host_token),
                )
                assert response.status_code == 201, response.text
            with pytest.raises(Exception):  # noqa: B017, PT011 — the server closes the socket
                await banned.read_until(lambda v: False, timeout=5)
            assert banned.ws.close_code == CLOSE_BANNED
            await bystander.read_until(lambda v: any(m["count"] == 1 for m in v.of_type("viewers")))

        # Reconnecting is refused: with the account, and from the same browser logged out.
        assert await close_code(f"{url}?token={room.neighbour_token}") == CLOSE_BANNED
        assert await close_code(url, Cookie="linli_aid=device-of-li-jie-0001") == CLOSE_BANNED
        assert await close_code(f"{server.ws_url}/ws/live/999999") == CLOSE_NOT_FOUND
        refused = await _post(server, room, room.neighbour_token, "我又回来了")
        assert refused.status_code == 403


async def test_comment_text_is_delivered_verbatim(settings: Settings, room: Room, db: Database) -> None:
    customer, token = await make_user_with_token(db, nickname="<b>张哥</b>", roles=(Role.customer,))
    with serve_in_thread(settings) as server:
        url = f"{server.ws_url}/ws/live/{room.session_id}"
        async with watch(url) as viewer:
            await viewer.first()
            text = "<script>alert(1)</script> & 青团"
            assert (await _post(server, room, token, text)).status_code == 201
            await viewer.read_until(lambda v: bool(v.of_type("comment")))
            assert comments_seen(viewer) == [text]
            assert viewer.of_type("comment")[0]["user"]["name"] == "<b>张哥</b>"
