"""Group-order progress in the room: ``group_order.progressed`` becomes a ``progress`` envelope on the
room's channel, rooms coalesce it per frame (newest per community), and a joining viewer's state has it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from linli.core.config import Settings
from linli.core.consumers import run_consumer_once
from linli.core.db import Database
from linli.core.hub import LocalHub
from linli.core.runtime import Runtime
from linli.groupbuy import events
from linli.live.room import progress
from linli.live.room.fanout import Room, RoomConfig, RoomRegistry
from linli.live.room.messages import channel
from linli.live.room.publisher import room_consumer
from linli.live.room.service import Snapshot
from tests.groupbuy.factories import Town

# The live room tests' recording hub and in-memory viewer.
from tests.live.test_room_orders import RecordingHub, Socket, Writer


def test_live_spells_the_groupbuy_event_name_itself() -> None:
    assert progress.PROGRESSED == events.PROGRESSED


async def test_progress_events_reach_the_rooms_channel_and_its_snapshot(town: Town) -> None:
    hub = RecordingHub()
    consumer = room_consumer(hub)
    await run_consumer_once(town.db, consumer)  # starts at the end of the log
    await town.settings(threshold=3)
    for buyer in await town.neighbours(3):
        await town.buy(buyer)
        await town.drain()  # counted one by one (a run of payments moves the count once)
    await town.buy(await town.neighbour(1), 2)
    await town.drain()
    await run_consumer_once(town.db, consumer)
    sent = hub.of_kind("progress")
    assert [(e["community_name"], e["units"], e["reached"]) for e in sent] == [
        ("梧桐苑", 1, False),
        ("梧桐苑", 2, False),
        ("梧桐苑", 3, True),
        ("阳光花园", 2, False),
    ]
    assert {c for c, e in hub.sent if e.get("k") == "progress"} == {channel(town.session_id)}
    # The announcement travels as the room's system notice (a sequenced message).
    notices = [e["m"] for e in hub.of_kind("msg") if e["m"]["type"] == "system_notice"]
    assert [n["text"] for n in notices] == ["恭喜梧桐苑社区,已集齐3份,明天上午10点准时送达!"]
    assert notices[0]["kind"] == "group_reached"
    async with town.db.sessionmaker() as session:
        latest = await progress.latest(session, town.session_id)
    assert {k: (v["units"], v["threshold"]) for k, v in latest.items()} == {
        str(town.hoods[0].community.id): (3, 3),
        str(town.hoods[1].community.id): (2, 3),
    }


@pytest.fixture
async def room() -> AsyncIterator[Room]:
    runtime = Runtime(settings=Settings(), db=Database("sqlite+aiosqlite://"), hub=LocalHub())
    registry = RoomRegistry(runtime, RoomConfig(tick_seconds=3600, housekeeping_seconds=3600))

    async def load(session_id: int) -> Snapshot:
        known = {
            "5": {
                "e": 3,
                "community_id": 5,
                "community_name": "梧桐苑",
                "units": 4,
                "threshold": 50,
                "reached": False,
            }
        }
        return Snapshot(
            seq=0, session={"id": 1}, pinned_item_id=None, lineup=[], likes=0, comments=[], progress=known
        )

    registry.loader = load
    yield await registry.join(1)
    await registry.close()
    await runtime.db.dispose()


def _progress(e: int, community_id: int, units: int) -> dict[str, Any]:
    name = {5: "梧桐苑", 6: "阳光花园"}[community_id]
    return {
        "k": "progress",
        "e": e,
        "community_id": community_id,
        "community_name": name,
        "units": units,
        "threshold": 50,
        "reached": units >= 50,
    }


async def test_a_frame_carries_one_progress_message_with_the_newest_per_community(room: Room) -> None:
    assert room.state_message()["progress"] == {
        "5": {"community_id": 5, "community_name": "梧桐苑", "units": 4, "threshold": 50, "reached": False}
    }
    viewer, _ = room.admit(Socket(), None, None, None)  # type: ignore[arg-type]
    writer = Writer()
    room.activate(viewer, writer)
    await room.flush()
    writer.frames.clear()
    for e, units in ((10, 5), (11, 6), (12, 7)):
        room.receive(_progress(e, 5, units))
    room.receive(_progress(13, 6, 50))
    room.receive(_progress(9, 5, 99))  # older than what the room has: ignored
    room.receive(_progress(12, 5, 7))  # the same event again
    await room.flush()
    assert len(writer.frames) == 1
    (message,) = [m for m in writer.messages if m["type"] == "progress"]
    assert {k: v["units"] for k, v in message["items"].items()} == {"5": 7, "6": 50}
    assert message["items"]["6"]["reached"] is True
    assert all("e" not in v for v in message["items"].values())
    state = room.state_message()
    assert {k: v["units"] for k, v in state["progress"].items()} == {"5": 7, "6": 50}
    # Nothing new: nothing sent. A viewer resuming gets the board as a counter.
    room.receive(_progress(12, 5, 7))
    await room.flush()
    assert len(writer.frames) == 1
    resumed = orjson.loads(room.resume_frame(room.seq).payload)["msgs"]
    (board,) = [m for m in resumed if m["type"] == "progress"]
    assert {k: v["units"] for k, v in board["items"].items()} == {"5": 7, "6": 50}


async def test_a_flash_sale_of_payments_is_one_message_per_frame(room: Room) -> None:
    viewer, _ = room.admit(Socket(), None, None, None)  # type: ignore[arg-type]
    writer = Writer()
    room.activate(viewer, writer)
    await room.flush()
    writer.frames.clear()
    for e in range(100, 1100):
        room.receive(_progress(e, 5 + e % 2, e - 99))
    await room.flush()
    assert len(writer.frames) == 1
    (message,) = [m for m in writer.messages if m["type"] == "progress"]
    assert {k: v["units"] for k, v in message["items"].items()} == {"5": 999, "6": 1000}
