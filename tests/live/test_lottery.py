"""Keyword lotteries: the verifiable draw (property tests against an independent re-implementation of the
documented algorithm), who enters (one entry each; muted, banned, staff, deleted and out-of-window
comments left out), the host's API and who may use it, the timer-driven draw, idempotence, events, the
winners' inbox and the room's messages."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from linli import live
from linli.community.models import InboxItem
from linli.core.clock import utcnow
from linli.core.db import Database
from linli.core.events import Event
from linli.core.jobs import CANCELLED, DONE, Job, run_due_jobs
from linli.core.runtime import Runtime
from linli.identity.models import Role, User
from linli.identity.tokens import issue_session
from linli.live import comments, lottery
from linli.live.models import Comment, LiveSession, Lottery, LotteryStatus, ModerationKind, SessionStatus
from linli.live.room.publisher import ROOM_EVENTS, messages_for
from tests.factories import Caller, make_user, make_user_with_token
from tests.live.factories import make_host, make_session

# --- the draw, pure -------------------------------------------------------------------------------


def reference_draw(seed: str, entries: list[int], n: int) -> list[int]:
    """The algorithm as the module docstring publishes it, written again from the text alone."""
    pool = sorted(set(entries))
    counter = 0

    def number() -> int:
        nonlocal counter
        mac = hmac.new(seed.encode(), counter.to_bytes(8, "big"), "sha256").digest()
        counter += 1
        return int.from_bytes(mac[:8], "big")

    for i in range(min(n, len(pool))):
        m = len(pool) - i
        x = number()
        while x >= 2**64 - 2**64 % m:
            x = number()
        j = i + x % m
        pool[i], pool[j] = pool[j], pool[i]
    return pool[: min(n, len(pool))]


seeds = st.binary(min_size=32, max_size=32).map(bytes.hex)
entry_lists = st.lists(st.integers(min_value=1, max_value=10_000), max_size=60)


@settings(max_examples=300, deadline=None)
@given(seed=seeds, entries=entry_lists, n=st.integers(min_value=1, max_value=80))
def test_the_draw_is_uniform_without_replacement_and_recomputes(
    seed: str, entries: list[int], n: int
) -> None:
    winners = lottery.draw(seed, entries, n)
    assert len(winners) == min(n, len(set(entries)))
    assert len(set(winners)) == len(winners)  # none twice
    assert set(winners) <= set(entries)  # only entrants
    # Anyone recomputes it from the revealed seed and the published (sorted, distinct) entry list ...
    assert winners == reference_draw(seed, sorted(set(entries)), n)
    assert lottery.verify(seed, hashlib.sha256(seed.encode()).hexdigest(), sorted(set(entries)), n, winners)
    # ... and the order entries were gathered in changes nothing.
    assert winners == lottery.draw(seed, list(reversed(entries)), n)


@settings(max_examples=60, deadline=None)
@given(
    entries=st.lists(st.integers(min_value=1, max_value=10**12), min_size=1, max_size=12, unique=True),
    data=st.data(),
)
def test_every_eligible_entrant_can_win(entries: list[int], data: st.DataObject) -> None:
    target = data.draw(st.sampled_from(entries))
    n = data.draw(st.integers(min_value=1, max_value=len(entries)))
    # With a chance of at least 1/12 per seed, 400 seeds all missing the target is < 1e-15.
    assert any(
        target in lottery.draw(hashlib.sha256(str(i).encode()).hexdigest(), entries, n) for i in range(400)
    )


def test_the_draw_is_even_handed() -> None:
    entries = [3, 14, 15, 92, 65, 35]
    wins: Counter[int] = Counter()
    firsts: Counter[int] = Counter()
    for i in range(3000):
        winners = lottery.draw(hashlib.sha256(f"even-{i}".encode()).hexdigest(), entries, 2)
        wins.update(winners)
        firsts[winners[0]] += 1
    # Each entrant wins 1/3 of draws (1000 ± 26 sd) and is drawn first 1/6 of them (500 ± 20 sd).
    assert all(850 < wins[e] < 1150 for e in entries), wins
    assert all(380 < firsts[e] < 620 for e in entries), firsts


def test_a_wrong_seed_or_list_does_not_verify() -> None:
    seed, entries = lottery.new_seed(), [1, 2, 3, 4, 5, 6, 7, 8]
    winners = lottery.draw(seed, entries, 3)
    assert lottery.verify(seed, lottery.commitment(seed), entries, 3, winners)
    assert not lottery.verify(lottery.new_seed(), lottery.commitment(seed), entries, 3, winners)
    assert not lottery.verify(seed, lottery.commitment(seed), entries, 3, list(reversed(winners)))


def test_names_are_masked_and_keywords_fold() -> None:
    assert [lottery.mask_name(n) for n in ["李", "李华", "李小华", "邻居1234"]] == [
        "李*",
        "李*",
        "李*华",
        "邻****4",
    ]
    assert lottery.matches("麦香青团", "我要 麦香青团!!")
    assert lottery.matches("Qingtuan", "QINGTUAN please")
    assert not lottery.matches("麦香青团", "麦香 青团")


# --- in a room ------------------------------------------------------------------------------------


@dataclass
class Room:
    session_id: int
    host: Caller
    neighbours: list[Caller]


@pytest.fixture
async def room(db: Database) -> Room:
    async with db.sessionmaker() as session:
        host = await make_host(session, nickname="小麦主播")
        live_session = await make_session(session, status=SessionStatus.live, host=host)
        token = await issue_session(session, host)
        await session.commit()
        session_id = live_session.id
    neighbours = []
    for name in ("李小华", "王芳", "张伟", "赵敏"):
        user, user_token = await make_user_with_token(db, nickname=name)
        neighbours.append(Caller(user, user_token))
    return Room(session_id, Caller(host, token), neighbours)


def _host(room: Room, what: str = "") -> str:
    return f"/api/v1/host/sessions/{room.session_id}/lotteries{what}"


def _public(room: Room, what: str) -> str:
    return f"/api/v1/sessions/{room.session_id}/lotteries{what}"


async def _start(client: httpx.AsyncClient, room: Room, **overrides: object) -> dict[str, object]:
    body = {"keyword": "麦香青团", "prize_name": "青团礼盒", "duration_seconds": 60, "winner_count": 2}
    response = await client.post(_host(room), json={**body, **overrides}, headers=room.host.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _comment(client: httpx.AsyncClient, room: Room, who: Caller, text: str) -> None:
    response = await client.post(
        f"/api/v1/sessions/{room.session_id}/comments", json={"text": text}, headers=who.headers
    )
    assert response.status_code == 201, response.text


async def _add_comment(
    db: Database, room: Room, user_id: int, text: str, *, at: datetime, deleted: bool = False
) -> None:
    async with db.sessionmaker() as session:
        session.add(
            Comment(
                session_id=room.session_id,
                user_id=user_id,
                text=text,
                created_at=at,
                deleted_at=at if deleted else None,
            )
        )
        await session.commit()


async def _room_and_host(session: AsyncSession, room: Room) -> tuple[LiveSession, User]:
    live_session = await session.get(LiveSession, room.session_id)
    host = await session.get(User, room.host.user.id)
    assert live_session is not None
    assert host is not None
    return live_session, host


async def _start_direct(
    db: Database, room: Room, *, duration_seconds: int = 60, winner_count: int = 2
) -> Lottery:
    """A keyword lottery ("青团", prize 礼盒) started by the host through the service."""
    async with db.sessionmaker() as session:
        live_session, host = await _room_and_host(session, room)
        lot = await lottery.start_lottery(
            session,
            live_session,
            actor=host,
            keyword="青团",
            prize_name="礼盒",
            duration_seconds=duration_seconds,
            winner_count=winner_count,
        )
        await session.commit()
        return lot


async def _events(db: Database, type_: str) -> list[Event]:
    async with db.sessionmaker() as session:
        return list((await session.scalars(select(Event).where(Event.type == type_))).all())


async def test_start_comment_draw_and_verify(client: httpx.AsyncClient, db: Database, room: Room) -> None:
    started = await _start(client, room, prize_coupon_template_id=7)
    assert started["status"] == "running"
    assert started["seed"] is None
    assert started["entries"] is None
    assert started["winners"] == []
    seed_hash = str(started["seed_hash"])
    assert len(seed_hash) == 64
    a, b, c, d = room.neighbours
    await _comment(client, room, a, "麦香青团")
    await _comment(client, room, a, "麦香青团 麦香青团")  # one entry however often they post
    await _comment(client, room, b, "我要麦香青团!")
    await _comment(client, room, c, "好吃吗?")  # no keyword
    await _comment(client, room, d, "麦香青团")
    await _comment(client, room, room.host, "麦香青团")  # staff never enter

    public = (await client.get(_public(room, f"/{started['id']}"))).json()
    assert public["seed"] is None
    assert public["entries"] is None

    response = await client.post(_host(room, f"/{started['id']}/draw"), headers=room.host.headers)
    assert response.status_code == 200, response.text
    drawn = (await client.get(_public(room, f"/{started['id']}"))).json()  # anyone, without a login
    assert drawn["status"] == "drawn"
    expected = sorted([a.user.id, b.user.id, d.user.id])
    assert drawn["entries"] == expected
    assert drawn["entry_count"] == 3
    seed = drawn["seed"]
    assert hashlib.sha256(seed.encode()).hexdigest() == seed_hash == drawn["seed_hash"]
    winner_ids = [w["user_id"] for w in drawn["winners"]]
    assert winner_ids == reference_draw(seed, drawn["entries"], 2)
    assert [w["rank"] for w in drawn["winners"]] == [1, 2]
    names = {a.user.id: "李*华", b.user.id: "王*", d.user.id: "赵*"}
    assert [w["name"] for w in drawn["winners"]] == [names[u] for u in winner_ids]

    (start_event,) = await _events(db, "lottery.started")
    assert start_event.session_id == room.session_id
    assert start_event.payload["seed_hash"] == seed_hash
    assert "seed" not in start_event.payload
    (event,) = await _events(db, "lottery.drawn")
    assert event.payload["winner_user_ids"] == winner_ids
    assert event.payload["prize_coupon_template_id"] == 7
    assert event.payload["seed"] == seed
    async with db.sessionmaker() as session:
        items = (await session.scalars(select(InboxItem).where(InboxItem.kind == "lottery_won"))).all()
    assert sorted(i.user_id for i in items) == sorted(winner_ids)
    assert all("青团礼盒" in i.title for i in items)

    # Drawing again changes nothing: same winners, one event, one inbox item each.
    again = await client.post(_host(room, f"/{started['id']}/draw"), headers=room.host.headers)
    assert [w["user_id"] for w in again.json()["winners"]] == winner_ids
    assert len(await _events(db, "lottery.drawn")) == 1
    listed = (await client.get(_host(room), headers=room.host.headers)).json()["items"]
    assert [x["id"] for x in listed] == [started["id"]]
    current = (await client.get(_public(room, "/current"))).json()["lottery"]
    assert current["id"] == started["id"]
    assert current["status"] == "drawn"


async def test_muted_banned_deleted_and_out_of_window_do_not_enter(
    client: httpx.AsyncClient, db: Database, room: Room
) -> None:
    started = await _start(client, room, winner_count=10)
    a, b, c, d = room.neighbours
    async with db.sessionmaker() as session:
        lot = await session.get(Lottery, started["id"])
        assert lot is not None
        window = (lot.started_at, lot.ends_at)
    await _add_comment(db, room, a.user.id, "麦香青团", at=window[0] + timedelta(seconds=1))
    await _add_comment(db, room, b.user.id, "麦香青团", at=window[0] + timedelta(seconds=2))
    await _add_comment(db, room, c.user.id, "麦香青团", at=window[0] + timedelta(seconds=3))
    await _add_comment(db, room, d.user.id, "麦香青团", at=window[0] - timedelta(seconds=1))  # before
    await _add_comment(db, room, d.user.id, "麦香青团", at=window[1] + timedelta(seconds=1))  # after
    await _add_comment(db, room, d.user.id, "麦香青团", at=window[0] + timedelta(seconds=4), deleted=True)
    async with db.sessionmaker() as session:
        live_session, host = await _room_and_host(session, room)
        await comments.mute_user(session, live_session, a.user.id, 5, actor=host)
        await comments.ban_user(session, live_session, b.user.id, actor=host)
        await session.commit()
    async with db.sessionmaker() as session:
        drawn = await lottery.draw_lottery(session, started["id"], now=window[1] + timedelta(seconds=5))
        await session.commit()
        assert drawn.entry_count == 1
        assert await lottery.entries_of(session, drawn.id) == [c.user.id]
        assert [w.user_id for w in await lottery.winners_of(session, drawn.id)] == [c.user.id]


async def test_a_lifted_mute_lets_them_back_in(client: httpx.AsyncClient, db: Database, room: Room) -> None:
    started = await _start(client, room)
    a = room.neighbours[0]
    await _comment(client, room, a, "麦香青团")
    async with db.sessionmaker() as session:
        live_session, host = await _room_and_host(session, room)
        await comments.mute_user(session, live_session, a.user.id, 5, actor=host)
        await comments.lift(session, live_session, a.user.id, ModerationKind.mute, actor=host)
        drawn = await lottery.draw_lottery(session, started["id"], actor=host)
        await session.commit()
        assert await lottery.entries_of(session, drawn.id) == [a.user.id]


async def test_who_may_run_a_lottery(client: httpx.AsyncClient, db: Database, room: Room) -> None:
    body = {"keyword": "青团", "prize_name": "礼盒", "duration_seconds": 60, "winner_count": 1}
    neighbour = room.neighbours[0]
    assert (await client.post(_host(room), json=body)).status_code == 401
    assert (await client.post(_host(room), json=body, headers=neighbour.headers)).status_code == 403
    other_host, token = await make_user_with_token(db, roles=(Role.host,))
    refused = await client.post(_host(room), json=body, headers=Caller(other_host, token).headers)
    assert refused.status_code == 403
    assert refused.json()["error"] == "NotModerator"
    operator, op_token = await make_user_with_token(db, roles=(Role.operator,))
    ok = await client.post(_host(room), json=body, headers=Caller(operator, op_token).headers)
    assert ok.status_code == 201
    lottery_id = ok.json()["id"]
    draw = _host(room, f"/{lottery_id}/draw")
    assert (await client.post(draw, headers=neighbour.headers)).status_code == 403
    assert (await client.post(draw, headers=Caller(other_host, token).headers)).status_code == 403
    assert (await client.get(_host(room), headers=neighbour.headers)).status_code == 403
    assert len(await _events(db, "lottery.drawn")) == 0
    # A second lottery waits for the first to be drawn.
    busy = await client.post(_host(room), json=body, headers=room.host.headers)
    assert busy.status_code == 409
    assert busy.json()["error"] == "LotteryRunning"
    assert (await client.post(draw, headers=room.host.headers)).status_code == 200
    assert (await client.post(_host(room), json=body, headers=room.host.headers)).status_code == 201
    # A lottery of another room is not found through this one.
    async with db.sessionmaker() as session:
        other = await make_session(session, status=SessionStatus.live, host=room.host.user)
        await session.commit()
    assert (await client.get(f"/api/v1/sessions/{other.id}/lotteries/{lottery_id}")).status_code == 404


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"keyword": "   "}, "InvalidLottery"),
        ({"keyword": "字" * 21}, "InvalidLottery"),
        ({"prize_name": ""}, "InvalidLottery"),
        ({"winner_count": 0}, "ValidationError"),
        ({"duration_seconds": 5}, "ValidationError"),
        ({"prize_coupon_template_id": 0}, "ValidationError"),
    ],
)
async def test_bad_lotteries_are_refused(
    client: httpx.AsyncClient, db: Database, room: Room, change: dict[str, object], error: str
) -> None:
    body = {"keyword": "青团", "prize_name": "礼盒", "duration_seconds": 60, "winner_count": 1, **change}
    response = await client.post(_host(room), json=body, headers=room.host.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == error
    assert await _events(db, "lottery.started") == []


async def test_only_a_live_room_runs_a_lottery(client: httpx.AsyncClient, db: Database, room: Room) -> None:
    async with db.sessionmaker() as session:
        scheduled = await make_session(session, status=SessionStatus.scheduled, host=room.host.user)
        await session.commit()
    body = {"keyword": "青团", "prize_name": "礼盒", "duration_seconds": 60, "winner_count": 1}
    response = await client.post(
        f"/api/v1/host/sessions/{scheduled.id}/lotteries", json=body, headers=room.host.headers
    )
    assert response.status_code == 409
    assert response.json()["error"] == "RoomClosed"


async def test_the_timer_draws_when_time_is_up(runtime: Runtime, db: Database, room: Room) -> None:
    live.register_background(runtime)
    lot = await _start_direct(db, room, duration_seconds=30, winner_count=3)
    lottery_id, ends_at = lot.id, lot.ends_at
    for n in room.neighbours[:2]:
        await _add_comment(db, room, n.user.id, "青团!", at=ends_at - timedelta(seconds=10))
    assert await run_due_jobs(db, runtime.jobs, now=ends_at - timedelta(seconds=1)) == 0
    assert await run_due_jobs(db, runtime.jobs, now=ends_at) == 1
    async with db.sessionmaker() as session:
        drawn = await lottery.get_lottery(session, lottery_id)
        assert drawn.status == LotteryStatus.drawn
        assert drawn.entry_count == 2
        winners = await lottery.winners_of(session, lottery_id)
        assert sorted(w.user_id for w in winners) == sorted(n.user.id for n in room.neighbours[:2])
        job = await session.scalar(select(Job).where(Job.key == lottery.draw_job_key(lottery_id)))
        assert job is not None
        assert job.status == DONE
        # The timer firing again (a lapsed lease) changes nothing.
        await lottery.draw_lottery_job(session, job)
        await session.commit()
    assert len(await _events(db, "lottery.drawn")) == 1


async def test_an_early_draw_cancels_the_timer(runtime: Runtime, db: Database, room: Room) -> None:
    live.register_background(runtime)
    lot = await _start_direct(db, room, duration_seconds=600, winner_count=1)
    async with db.sessionmaker() as session:
        _, host = await _room_and_host(session, room)
        await lottery.draw_lottery(session, lot.id, actor=host)
        await session.commit()
        job = await session.scalar(select(Job).where(Job.key == lottery.draw_job_key(lot.id)))
        assert job is not None
        assert job.status == CANCELLED
    assert await run_due_jobs(db, runtime.jobs, now=utcnow() + timedelta(hours=1)) == 0
    assert len(await _events(db, "lottery.drawn")) == 1


async def test_the_room_hears_of_it(client: httpx.AsyncClient, db: Database, room: Room) -> None:
    assert {"lottery.started", "lottery.drawn"} <= ROOM_EVENTS
    started = await _start(client, room, winner_count=1)
    await _comment(client, room, room.neighbours[0], "麦香青团")
    await client.post(_host(room, f"/{started['id']}/draw"), headers=room.host.headers)
    async with db.sessionmaker() as session:
        (start_message,) = await messages_for(session, (await _events(db, "lottery.started"))[0])
        (drawn_message,) = await messages_for(session, (await _events(db, "lottery.drawn"))[0])
    assert start_message["type"] == "lottery_started"
    assert start_message["keyword"] == "麦香青团"
    assert start_message["seed_hash"] == started["seed_hash"]
    assert "seed" not in start_message
    assert drawn_message["type"] == "lottery_drawn"
    assert drawn_message["winners"] == ["李*华"]
    assert drawn_message["entry_count"] == 1
    assert hashlib.sha256(drawn_message["seed"].encode()).hexdigest() == started["seed_hash"]
    assert "winner_user_ids" not in drawn_message


async def test_a_joining_viewer_is_sent_the_lottery_with_the_rooms_state(
    client: httpx.AsyncClient, db: Database, room: Room
) -> None:
    """No viewer has to ask: the join state carries the running lottery, then the drawn one."""
    from linli.live.room.fanout import Room as LiveRoom
    from linli.live.room.fanout import RoomRegistry
    from linli.live.room.service import load_snapshot

    async def joined() -> dict[str, object] | None:
        async with db.sessionmaker() as session:
            snapshot = await load_snapshot(session, room.session_id)
        viewers_room = LiveRoom(RoomRegistry(None), room.session_id)  # type: ignore[arg-type]
        viewers_room.apply_snapshot(snapshot)
        state = viewers_room.state_message()
        return state["lottery"]  # type: ignore[return-value]

    assert await joined() is None
    started = await _start(client, room, winner_count=2)
    running = await joined()
    assert running is not None
    assert (running["type"], running["lottery_id"], running["keyword"]) == (
        "lottery_started",
        started["id"],
        "麦香青团",
    )
    assert running["seed_hash"] == started["seed_hash"]
    assert "seed" not in running
    await _comment(client, room, room.neighbours[0], "麦香青团")
    await client.post(_host(room, f"/{started['id']}/draw"), headers=room.host.headers)
    drawn = await joined()
    assert drawn is not None
    assert drawn["type"] == "lottery_drawn"
    assert (drawn["winners"], drawn["entry_count"], drawn["winner_count"]) == (["李*华"], 1, 2)
    assert hashlib.sha256(str(drawn["seed"]).encode()).hexdigest() == started["seed_hash"]
    assert "winner_user_ids" not in drawn


async def test_a_winner_is_told_in_the_inbox_once(db: Database, room: Room) -> None:
    async with db.sessionmaker() as session:
        lone = await make_user(session, nickname="孙丽")
        await session.commit()
    lot = await _start_direct(db, room, winner_count=5)
    await _add_comment(db, room, lone.id, "青团", at=lot.started_at + timedelta(seconds=1))
    async with db.sessionmaker() as session:
        await lottery.draw_lottery(session, lot.id, now=lot.ends_at)
        await session.commit()
        items = (await session.scalars(select(InboxItem).where(InboxItem.user_id == lone.id))).all()
    assert [(i.kind, i.link) for i in items] == [("lottery_won", f"/live/{room.session_id}")]


async def test_two_draws_at_once_draw_once(db: Database, room: Room) -> None:
    """The timer and the host's button at the same moment: one draw, one event, one set of winners."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL's row locks")
    lot = await _start_direct(db, room)
    for n in room.neighbours:
        await _add_comment(db, room, n.user.id, "青团", at=lot.started_at + timedelta(seconds=1))

    async def one(as_host: bool) -> list[int]:
        async with db.sessionmaker() as session:
            actor = await session.get(User, room.host.user.id) if as_host else None
            drawn = await lottery.draw_lottery(session, lot.id, actor=actor, now=lot.ends_at)
            await session.commit()
            return [w.user_id for w in await lottery.winners_of(session, drawn.id)]

    first, second = await asyncio.gather(one(False), one(True))
    assert first == second
    assert len(first) == 2
    assert len(await _events(db, "lottery.drawn")) == 1
