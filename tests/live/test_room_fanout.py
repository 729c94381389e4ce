"""One process's batcher, without sockets: many messages become few frames, serialised once; counters
are coalesced; sequenced messages go out in order, early ones wait, a lasting gap reloads the state; a
slow viewer is dropped; resumes are served from the ring."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from linli.core.config import Settings
from linli.core.db import Database
from linli.core.hub import LocalHub
from linli.core.runtime import Runtime
from linli.live.room.fanout import NODE, Room, RoomConfig, RoomRegistry, Write
from linli.live.room.messages import CLOSE_TOO_SLOW, Frame, ws_text_frame
from linli.live.room.service import Snapshot


class FakeSocket:
    def __init__(self) -> None:
        self.closed_with: int | None = None

    async def close(self, code: int = 1000) -> None:
        self.closed_with = code


class FakeWriter:
    def __init__(self, *, slow_after: int | None = None) -> None:
        self.frames: list[Frame] = []
        self.slow_after = slow_after

    def write(self, frame: Frame) -> Write:
        if self.slow_after is not None and len(self.frames) >= self.slow_after:
            return Write.slow
        self.frames.append(frame)
        return Write.ok

    def close(self) -> None:
        return None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [m for f in self.frames for m in orjson.loads(f.payload)["msgs"]]


def snapshot(seq: int = 0, **extra: Any) -> Snapshot:
    fields: dict[str, Any] = {
        "session": {"id": 1, "status": "live"},
        "pinned_item_id": None,
        "lineup": [{"id": 7, "stock_left": 10}],
        "likes": 0,
        "comments": [],
        **extra,
    }
    return Snapshot(seq=seq, **fields)


@pytest.fixture
async def registry() -> AsyncIterator[RoomRegistry]:
    runtime = Runtime(settings=Settings(), db=Database("sqlite+aiosqlite://"), hub=LocalHub())
    # Ticks and housekeeping are driven by hand here.
    reg = RoomRegistry(runtime, RoomConfig(tick_seconds=3600, housekeeping_seconds=3600, gap_wait_seconds=0))
    snapshots = [snapshot()]

    async def load(session_id: int) -> Snapshot:
        return snapshots[-1]

    reg.loader = load
    reg.snapshots = snapshots  # type: ignore[attr-defined]
    yield reg
    await reg.close()
    await runtime.db.dispose()


def comment(seq: int, text: str = "hi") -> dict[str, Any]:
    return {"k": "msg", "e": 1000 + seq, "m": {"type": "comment", "seq": seq, "id": seq, "text": text}}


def viewer(room: Room, writer: FakeWriter, since: int | None = None) -> dict[str, Any]:
    v, first = room.admit(FakeSocket(), None, None, since)  # type: ignore[arg-type]
    room.activate(v, writer)
    return orjson.loads(first.payload)


async def test_many_messages_one_frame_counters_coalesced(registry: RoomRegistry) -> None:
    room = await registry.join(1)
    writers = [FakeWriter() for _ in range(3)]
    for w in writers:
        viewer(room, w)
    for seq in range(1, 101):
        room.receive(comment(seq))
    for total in (5, 9, 12):
        room.receive({"k": "likes", "n": total - (total - 4 if total > 5 else 0), "total": total})
    room.receive({"k": "presence", "node": "other-process", "n": 40})
    await room.flush()
    assert all(len(w.frames) == 1 for w in writers)
    # Serialised once: every viewer got the very same bytes object.
    assert writers[0].frames[0] is writers[1].frames[0] is writers[2].frames[0]
    msgs = writers[0].messages
    assert [m["seq"] for m in msgs if m["type"] == "comment"] == list(range(1, 101))
    (burst,) = [m for m in msgs if m["type"] == "like_burst"]
    assert burst["total"] == 12
    assert burst["seq"] == 100
    (viewers,) = [m for m in msgs if m["type"] == "viewers"]
    assert viewers["count"] == 43
    await room.flush()  # nothing new: no frame
    assert len(writers[0].frames) == 1


async def test_early_messages_wait_and_duplicates_are_dropped(registry: RoomRegistry) -> None:
    room = await registry.join(1)
    w = FakeWriter()
    viewer(room, w)
    room.receive(comment(2))
    room.receive(comment(3))
    registry.config.gap_wait_seconds = 60
    await room.flush()
    assert [m for m in w.messages if m["type"] == "comment"] == []
    room.receive(comment(1))
    room.receive(comment(2))  # redelivered: same seq, same event
    await room.flush()
    assert [m["seq"] for m in w.messages if m["type"] == "comment"] == [1, 2, 3]
    room.receive(comment(3))
    room.receive(comment(1))
    await room.flush()
    assert [m["seq"] for m in w.messages if m["type"] == "comment"] == [1, 2, 3]


async def test_a_lasting_gap_reloads_the_state(registry: RoomRegistry) -> None:
    room = await registry.join(1)
    w = FakeWriter()
    viewer(room, w)
    room.receive(comment(5))
    registry.snapshots.append(  # type: ignore[attr-defined]
        snapshot(seq=4, comments=[{"type": "comment", "seq": 4, "id": 4, "text": "from the database"}])
    )
    await room.flush()  # the gap is noticed
    await room.flush()  # ... and lasts: reload
    assert room.resyncing is not None
    await room.resyncing
    state = next(m for m in w.messages if m["type"] == "state")
    assert state["reset"] is True
    assert state["seq"] == 4
    await room.flush()
    assert [m["seq"] for m in w.messages if m["type"] == "comment"] == [5]


async def test_slow_viewer_is_dropped_room_goes_on(registry: RoomRegistry) -> None:
    room = await registry.join(1)
    fast, slow = FakeWriter(), FakeWriter(slow_after=1)
    viewer(room, fast)
    viewer(room, slow)
    slow_socket = next(v.websocket for v in room.viewers if v.writer is slow)
    for seq in range(1, 4):
        room.receive(comment(seq))
        await room.flush()
    await asyncio.sleep(0.05)
    assert len(room.viewers) == 1
    assert slow_socket.closed_with == CLOSE_TOO_SLOW
    assert len(fast.frames) == 3
    assert len(slow.frames) == 1


async def test_resume_from_the_ring_or_a_fresh_state(registry: RoomRegistry) -> None:
    registry.config.ring_size = 5
    room = await registry.join(1)
    room.ring = type(room.ring)(maxlen=5)
    for seq in range(1, 9):
        room.receive(comment(seq, f"c{seq}"))
        await room.flush()
    resumed = viewer(room, FakeWriter(), since=5)
    assert [m["seq"] for m in resumed["msgs"] if m["type"] == "comment"] == [6, 7, 8]
    assert {m["type"] for m in resumed["msgs"]} == {"comment", "viewers", "like_burst", "stock"}
    current = viewer(room, FakeWriter(), since=8)
    assert [m["type"] for m in current["msgs"]] == ["viewers", "like_burst", "stock"]
    too_old = viewer(room, FakeWriter(), since=2)
    assert too_old["msgs"][0]["type"] == "state"
    assert too_old["msgs"][0]["reset"] is True
    assert [c["text"] for c in too_old["msgs"][0]["comments"]] == [f"c{n}" for n in range(1, 9)]
    ahead = viewer(room, FakeWriter(), since=99)
    assert ahead["msgs"][0]["reset"] is True


async def test_presence_sums_processes_and_forgets_silent_ones(registry: RoomRegistry) -> None:
    room = await registry.join(1)
    viewer(room, FakeWriter())
    room.receive({"k": "presence", "node": "b", "n": 10})
    room.receive({"k": "presence", "node": NODE, "n": 999})  # our own echo: the live count wins
    assert room.viewer_count() == 11
    registry.config.presence_ttl_seconds = 0
    await asyncio.sleep(0.01)
    assert room.viewer_count() == 1


def test_wire_frames() -> None:
    assert ws_text_frame(b"hi") == b"\x81\x02hi"
    assert ws_text_frame(b"x" * 200)[:4] == b"\x81\x7e\x00\xc8"
    assert ws_text_frame(b"x" * 70000)[:10] == b"\x81\x7f" + (70000).to_bytes(8, "big")


def test_a_crowded_room_sends_fewer_frames_a_second() -> None:
    """100 ms between frames for a small room, stretching to 200 ms as it fills (each frame is one write
    per viewer); a configuration without a stretch keeps its one period."""
    config = RoomConfig()
    assert config.period(0) == pytest.approx(0.1)
    assert config.period(2_500) == pytest.approx(0.15)
    assert config.period(5_000) == pytest.approx(0.2)
    assert config.period(50_000) == pytest.approx(0.2)
    assert RoomConfig(tick_seconds=3600).period(10_000) == 3600
