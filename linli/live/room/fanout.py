"""One process's side of the rooms: per room, ONE hub subscription, a batcher that every tick (150 ms)
turns everything new into one frame, serialised once and written to every viewer's socket.

Writing: where the server is uvicorn (any of its WebSocket implementations) the frame's finished bytes go
straight onto each connection's transport — one ``write`` per viewer, no per-viewer task, no per-viewer
encoding. A viewer whose unsent bytes pass ``max_unsent_bytes`` is too slow: it is closed with 4008 rather
than allowed to hold the room or grow memory. Elsewhere (another ASGI server, tests' in-memory clients)
each viewer gets a small writer task with a bounded queue, dropped the same way when it fills.

Ordering: sequenced messages are applied and sent strictly in ``seq`` order; one that arrives early waits
for those before it, and a gap that stays open (a message lost between processes) makes the room reload
its state from the database and send everyone a fresh ``state``. Counters (viewers, likes, stock) are kept
as latest values and sent at most once per frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.websockets import WebSocket

from linli.core.hub import Hub, Subscription
from linli.core.runtime import Runtime
from linli.live import comments
from linli.live.room import service as room_service
from linli.live.room.messages import (
    CLOSE_BANNED,
    CLOSE_TOO_SLOW,
    Frame,
    channel,
    decode,
    encode,
)
from linli.live.room.purchases import TICKER_SIZE
from linli.live.room.service import Snapshot

log = logging.getLogger(__name__)

# This process, as other processes' rooms know it in presence counts.
NODE = uuid.uuid4().hex[:12]


@dataclass
class RoomConfig:
    # One frame every ``tick_seconds`` for a small room, stretching towards ``max_tick_seconds`` as its
    # viewers here reach ``crowd``: a frame costs one socket write per viewer (13 µs each on loopback
    # alone, 20–27 µs measured in the fan-out benchmark beside its clients), so 5,000 viewers of one
    # process at 150 ms took a whole core and the frames fell behind.
    tick_seconds: float = 0.1
    max_tick_seconds: float = 0.2
    crowd: int = 5_000

    def period(self, viewers: int) -> float:
        """Seconds between two frames of a room with ``viewers`` here."""
        if self.max_tick_seconds <= self.tick_seconds:
            return self.tick_seconds
        share = min(viewers / self.crowd, 1.0)
        return self.tick_seconds + (self.max_tick_seconds - self.tick_seconds) * share

    ring_size: int = 2000
    recent_comments: int = 50
    # Unsent bytes a viewer may have before it counts as too slow (about 30 s of a busy room).
    max_unsent_bytes: int = 256 * 1024
    max_queued_frames: int = 200
    housekeeping_seconds: float = 1.0
    presence_ttl_seconds: float = 5.0
    # Keep an empty room this long, so a viewer who reconnects resumes instead of starting over.
    linger_seconds: float = 30.0
    gap_wait_seconds: float = 2.0
    # Writes between yields to the event loop, so a big room does not stall requests.
    writes_per_slice: int = 256
    max_likes_per_message: int = 20
    max_likes_per_second: int = 30


class Write(enum.Enum):
    ok = "ok"
    slow = "slow"
    gone = "gone"


class Writer(Protocol):
    def write(self, frame: Frame) -> Write: ...
    def close(self) -> None: ...


class TransportWriter:
    """Writes finished WebSocket frames onto the connection's transport. Transports append each write
    whole, so these interleave cleanly with the server's own frames (pings, the close)."""

    __slots__ = ("limit", "protocol", "transport")

    def __init__(self, protocol: Any, transport: Any, limit: int) -> None:
        self.protocol, self.transport, self.limit = protocol, transport, limit

    def write(self, frame: Frame) -> Write:
        transport = self.transport
        if transport.is_closing() or getattr(self.protocol, "close_sent", False):
            return Write.gone
        if transport.get_write_buffer_size() > self.limit:
            return Write.slow
        transport.write(frame.wire)
        return Write.ok

    def close(self) -> None:
        return None

    def abort(self) -> None:
        self.transport.abort()


class QueuedWriter:
    """The portable way: a writer task per viewer sending through ASGI, with a bounded queue."""

    def __init__(self, websocket: WebSocket, max_frames: int) -> None:
        self.websocket = websocket
        self.max_frames = max_frames
        self.pending: deque[Frame] = deque()
        self.wake = asyncio.Event()
        self.gone = False
        self.task = asyncio.create_task(self._run(), name="live-room-writer")

    def write(self, frame: Frame) -> Write:
        if self.gone:
            return Write.gone
        if len(self.pending) >= self.max_frames:
            return Write.slow
        self.pending.append(frame)
        self.wake.set()
        return Write.ok

    async def _run(self) -> None:
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                while self.pending:
                    await self.websocket.send_text(self.pending.popleft().text)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.gone = True

    def close(self) -> None:
        self.task.cancel()


def writer_for(websocket: WebSocket, config: RoomConfig) -> Writer:
    """The transport behind uvicorn's WebSocket protocol when we can reach it, else a queued writer.

    The ASGI ``receive`` callable reaches the endpoint unwrapped (middleware wraps ``send``), and under
    uvicorn it is a method of the connection's protocol object, which holds the transport."""
    protocol = getattr(websocket._receive, "__self__", None)
    transport = getattr(protocol, "transport", None)
    if (
        type(protocol).__module__.startswith("uvicorn.protocols.websockets.")
        and transport is not None
        and all(hasattr(transport, name) for name in ("write", "get_write_buffer_size", "is_closing"))
    ):
        return TransportWriter(protocol, transport, config.max_unsent_bytes)
    return QueuedWriter(websocket, config.max_queued_frames)


class Viewer:
    """One socket in a room."""

    __slots__ = (
        "anonymous_id",
        "backlog",
        "closed",
        "like_budget",
        "like_second",
        "user_id",
        "websocket",
        "writer",
    )

    def __init__(self, websocket: WebSocket, user_id: int | None, anonymous_id: str | None) -> None:
        self.websocket = websocket
        self.user_id = user_id
        self.anonymous_id = anonymous_id
        self.writer: Writer | None = None
        # Frames that arrive while the first one is being sent through ASGI.
        self.backlog: list[Frame] | None = []
        self.closed = False
        self.like_second = 0
        self.like_budget = 0


class Room:
    """A room as this process serves it: its viewers, its state, the messages of its recent past."""

    def __init__(self, registry: RoomRegistry, session_id: int) -> None:
        self.registry = registry
        self.config = registry.config
        self.session_id = session_id
        self.viewers: set[Viewer] = set()
        self.seq = 0
        self.ring: deque[tuple[int, int, dict[str, Any]]] = deque(maxlen=self.config.ring_size)
        self.pending: dict[int, tuple[int, dict[str, Any]]] = {}
        self.gap_since: float | None = None
        self.counters: dict[str, dict[str, Any]] = {}
        self.session: dict[str, Any] = {}
        self.pinned_item_id: int | None = None
        self.lineup: list[dict[str, Any]] = []
        self.likes = 0
        self.comments: deque[dict[str, Any]] = deque(maxlen=self.config.recent_comments)
        # The room's lottery as its latest ``lottery_started`` / ``lottery_drawn`` message (joiners get it).
        self.lottery: dict[str, Any] | None = None
        self.banned_users: set[int] = set()
        self.banned_devices: set[str] = set()
        self.presence: dict[str, tuple[int, float]] = {}
        self.sent_presence = -1
        self.presence_beat = 0
        self.sent_viewers = -1
        self.likes_buffer = 0
        # The last few purchases (ticker lines), for a viewer who joins or resumes.
        self.purchases: deque[dict[str, Any]] = deque(maxlen=TICKER_SIZE)
        # Each community's group-order progress (latest by event id), keyed by community id.
        self.progress: dict[str, dict[str, Any]] = {}
        self.frames_sent = 0
        self._state: Frame | None = None
        self.subscription: Subscription | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.opening: asyncio.Task[None] | None = None
        self.linger: asyncio.TimerHandle | None = None
        self.resyncing: asyncio.Task[None] | None = None
        self.closed = False

    # --- lifecycle --------------------------------------------------------------------------------

    async def open(self) -> None:
        """Subscribe first, then read the state: nothing published in between is missed."""
        self.subscription = await self.registry.hub.subscribe(channel(self.session_id), maxsize=10_000)
        try:
            self.apply_snapshot(await self.registry.load(self.session_id))
        except BaseException:
            await self.subscription.close()
            raise
        self.tasks = [
            asyncio.create_task(self._read(), name=f"live-room-{self.session_id}-read"),
            asyncio.create_task(self._tick(), name=f"live-room-{self.session_id}-tick"),
            asyncio.create_task(self._housekeeping(), name=f"live-room-{self.session_id}-housekeeping"),
        ]

    async def close(self) -> None:
        self.closed = True
        if self.linger is not None:
            self.linger.cancel()
        for task in [*self.tasks, *([self.resyncing] if self.resyncing else [])]:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self._flush_likes()
        if self.subscription is not None:
            with contextlib.suppress(Exception):
                await self.subscription.close()
        for viewer in list(self.viewers):
            self._drop(viewer, 1001)

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        self.seq = snapshot.seq
        self.session = snapshot.session
        self.pinned_item_id = snapshot.pinned_item_id
        self.lineup = snapshot.lineup
        self.likes = max(self.likes, snapshot.likes)
        self.comments = deque(snapshot.comments, maxlen=self.config.recent_comments)
        self.lottery = snapshot.lottery
        self.banned_users = set(snapshot.banned_user_ids)
        self.banned_devices = set(snapshot.banned_anonymous_ids)
        for entry in snapshot.progress.values():
            self._keep_progress(entry)
        self.ring.clear()
        self.pending = {s: m for s, m in self.pending.items() if s > self.seq}
        self.gap_since = None
        self._state = None

    # --- viewers ----------------------------------------------------------------------------------

    def is_banned(self, user_id: int | None, anonymous_id: str | None) -> bool:
        return (user_id is not None and user_id in self.banned_users) or (
            anonymous_id is not None and anonymous_id in self.banned_devices
        )

    def admit(
        self, websocket: WebSocket, user_id: int | None, anonymous_id: str | None, since: int | None
    ) -> tuple[Viewer, Frame]:
        """Add a viewer and return the frame to send it first: the room's state, or what it missed since
        ``since``. Frames flushed meanwhile wait in its backlog until ``activate``."""
        viewer = Viewer(websocket, user_id, anonymous_id)
        self.viewers.add(viewer)
        first = self.state_frame() if since is None else self.resume_frame(since)
        if self.linger is not None:
            self.linger.cancel()
            self.linger = None
        return viewer, first

    def activate(self, viewer: Viewer, writer: Writer) -> None:
        viewer.writer = writer
        backlog, viewer.backlog = viewer.backlog or [], None
        for frame in backlog:
            if viewer.closed:
                return
            result = writer.write(frame)
            if result is not Write.ok:
                self._drop(viewer, CLOSE_TOO_SLOW if result is Write.slow else None)

    def leave(self, viewer: Viewer) -> None:
        viewer.closed = True
        self.viewers.discard(viewer)
        if viewer.writer is not None:
            viewer.writer.close()
        if not self.viewers and not self.closed and self.linger is None:
            loop = asyncio.get_running_loop()
            self.linger = loop.call_later(self.config.linger_seconds, self._linger_over)

    def _linger_over(self) -> None:
        self.linger = None
        if not self.viewers and not self.closed:
            asyncio.ensure_future(self.registry.discard(self))

    def like(self, viewer: Viewer, n: int) -> None:
        """Count a viewer's taps (at most ``max_likes_per_second`` from one socket); flushed each second."""
        now = int(time.monotonic())
        if viewer.like_second != now:
            viewer.like_second, viewer.like_budget = now, self.config.max_likes_per_second
        n = max(0, min(n, self.config.max_likes_per_message, viewer.like_budget))
        viewer.like_budget -= n
        self.likes_buffer += n

    def _drop(self, viewer: Viewer, code: int | None) -> None:
        """Stop writing to a viewer now; close its socket with ``code`` (in the background)."""
        if viewer.closed:
            self.viewers.discard(viewer)
            return
        viewer.closed = True
        self.viewers.discard(viewer)
        if viewer.writer is not None:
            viewer.writer.close()
        if code is not None:
            asyncio.ensure_future(_close_socket(viewer, code))

    def viewer_count(self) -> int:
        cutoff = time.monotonic() - self.config.presence_ttl_seconds
        others = sum(n for node, (n, at) in self.presence.items() if node != NODE and at >= cutoff)
        return others + len(self.viewers)

    # --- what viewers are sent --------------------------------------------------------------------

    def state_message(self, *, reset: bool = False) -> dict[str, Any]:
        return {
            "type": "state",
            "seq": self.seq,
            "reset": reset,
            "session": self.session,
            "pinned_item_id": self.pinned_item_id,
            "lineup": self.lineup,
            "viewers": self.viewer_count(),
            "likes": self.likes,
            "comments": list(self.comments),
            "purchases": list(self.purchases),
            "progress": self._progress_items(self.progress),
            "lottery": self.lottery,
        }

    def state_frame(self) -> Frame:
        """The room's state as a frame, serialised once per change however many viewers join."""
        if self._state is None:
            self._state = Frame.of(self.seq, [self.state_message()])
        return self._state

    def resume_frame(self, since: int) -> Frame:
        """What a viewer that saw up to ``since`` missed, with the counters' current values; a fresh
        state (``reset``) when the ring no longer reaches back that far, or ``since`` is not ours."""
        if since == self.seq:
            missed: list[dict[str, Any]] = []
        elif 0 <= since < self.seq and self.ring and self.ring[0][0] <= since + 1:
            missed = [m for s, _e, m in self.ring if s > since]
        else:
            return Frame.of(self.seq, [self.state_message(reset=True)])
        counters = [
            {"type": "viewers", "seq": self.seq, "count": self.viewer_count()},
            {"type": "like_burst", "seq": self.seq, "n": 0, "total": self.likes},
            {"type": "stock", "seq": self.seq, "items": {str(i["id"]): i["stock_left"] for i in self.lineup}},
        ]
        if self.progress:
            counters.append(
                {"type": "progress", "seq": self.seq, "items": self._progress_items(self.progress)}
            )
        return Frame.of(self.seq, missed + counters)

    # --- receiving from the hub -------------------------------------------------------------------

    async def _read(self) -> None:
        subscription = self.subscription
        assert subscription is not None
        while True:
            data = await subscription.get()
            if subscription.lagged:
                subscription.lagged = False
                self.request_resync(force=True)
            try:
                envelope = decode(data)
            except ValueError:
                log.warning("room %s: undecodable hub message dropped", self.session_id)
                continue
            self.receive(envelope)

    def receive(self, envelope: dict[str, Any]) -> None:
        kind = envelope.get("k")
        if kind == "msg":
            message, event_id = envelope["m"], envelope.get("e", 0)
            seq = int(message["seq"])
            if seq <= self.seq:
                known = next((e for s, e, _m in reversed(self.ring) if s == seq), None)
                if known is not None and known != event_id:
                    # The same number for another event: numbers were handed out twice. Start over.
                    self.request_resync(force=True)
                return
            self.pending.setdefault(seq, (event_id, message))
        elif kind == "likes":
            self.likes = max(self.likes, int(envelope["total"]))
            burst = self.counters.get("like_burst")
            n = int(envelope["n"]) + (burst["n"] if burst else 0)
            self.counters["like_burst"] = {"type": "like_burst", "n": n, "total": self.likes}
            self._state = None
        elif kind == "presence":
            self.presence[str(envelope["node"])] = (int(envelope["n"]), time.monotonic())
        elif kind == "stock":
            self._receive_stock(envelope["items"])
        elif kind == "purchase":
            self._receive_purchase(envelope)
        elif kind == "progress":
            self._receive_progress(envelope)
        elif kind in ("ban", "unban"):
            users = {int(u) for u in envelope.get("user_ids", [])}
            devices = {str(a) for a in envelope.get("anonymous_ids", [])}
            if kind == "unban":
                self.banned_users -= users
                self.banned_devices -= devices
                return
            self.banned_users |= users
            # The browsers this room sees them on are banned too (here now, and stored for the others).
            seen = {v.anonymous_id for v in self.viewers if v.user_id in users and v.anonymous_id}
            if seen - self.banned_devices and len(users) == 1:
                asyncio.ensure_future(self._store_device_bans(next(iter(users)), seen - self.banned_devices))
            self.banned_devices |= devices | seen
            for viewer in list(self.viewers):
                if self.is_banned(viewer.user_id, viewer.anonymous_id):
                    self._drop(viewer, CLOSE_BANNED)

    def _receive_stock(self, items: dict[str, int]) -> None:
        """Units left pushed by the ``live.room`` consumer: only what changed goes out, merged into the
        frame's one ``stock`` message."""
        changed = {}
        for item in self.lineup:
            now = items.get(str(item["id"]))
            if now is not None and now != item["stock_left"]:
                item["stock_left"] = now
                changed[str(item["id"])] = now
        if changed:
            previous = self.counters.get("stock", {}).get("items", {})
            self.counters["stock"] = {"type": "stock", "items": {**previous, **changed}}
            self._state = None

    def _receive_purchase(self, envelope: dict[str, Any]) -> None:
        """A ticker line: kept (once per event) among the room's last few, and sent in the frame's one
        ``purchase`` message with the others that arrived since the last frame."""
        event_id = envelope.get("e")
        if event_id is not None and any(p.get("e") == event_id for p in self.purchases):
            return
        line = {k: v for k, v in envelope.items() if k != "k"}
        self.purchases.append(line)
        fresh = [*self.counters.get("purchase", {}).get("items", []), line][-TICKER_SIZE:]
        self.counters["purchase"] = {"type": "purchase", "items": fresh}

    def _keep_progress(self, entry: dict[str, Any]) -> bool:
        """Keep a community's progress unless a newer one (higher event id) is already kept."""
        key = str(entry.get("community_id"))
        known = self.progress.get(key)
        if known is not None and int(known.get("e", 0)) >= int(entry.get("e", 0)):
            return False
        self.progress[key] = {k: v for k, v in entry.items() if k != "k"}
        return True

    def _receive_progress(self, envelope: dict[str, Any]) -> None:
        """A community's group-order units: the newest per community goes out in the frame's one
        ``progress`` message, with the other communities that changed since the last frame."""
        if not self._keep_progress(envelope):
            return
        key = str(envelope.get("community_id"))
        fresh = self._progress_items({key: self.progress[key]})
        changed = {**self.counters.get("progress", {}).get("items", {}), **fresh}
        self.counters["progress"] = {"type": "progress", "items": changed}
        self._state = None

    @staticmethod
    def _progress_items(entries: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {key: {k: v for k, v in e.items() if k != "e"} for key, e in entries.items()}

    def apply(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind in ("comment", "reply"):
            self.comments.append(message)
        elif kind == "comment_deleted":
            self.comments = deque(
                (c for c in self.comments if c["id"] != message["id"]), maxlen=self.config.recent_comments
            )
        elif kind == "pinned_product":
            self.pinned_item_id = message["item_id"]
        elif kind in ("lottery_started", "lottery_drawn"):
            self.lottery = message
        elif kind == "lineup":
            self.lineup = message["items"]
        elif kind == "session_status":
            self.session = {**self.session, "status": message["status"]}
            if message["status"] == "live":
                self.session["started_at"] = message.get("at")
            elif message["status"] == "ended":
                self.session["ended_at"] = message.get("at")

    async def _store_device_bans(self, user_id: int, devices: set[str]) -> None:
        try:
            async with self.registry.runtime.db.sessionmaker() as session:
                await comments.ban_devices(session, self.session_id, user_id, devices)
                await session.commit()
        except Exception:
            log.exception("room %s: storing device bans failed", self.session_id)

    # --- the batcher ------------------------------------------------------------------------------

    async def _tick(self) -> None:
        # A fixed cadence rather than a fixed pause: a flush to thousands of sockets takes tens of
        # milliseconds, which would otherwise stretch every period (and every message's wait) by as much.
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            period = self.config.period(len(self.viewers))
            # At least half a period between the end of one flush and the next: the requests and the
            # consumer that bring the next messages need the loop too (a quarter starved them).
            due = max(due + period, loop.time() + period / 2)
            await asyncio.sleep(due - loop.time())
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("room %s: flush failed", self.session_id)

    async def flush(self) -> None:
        """Everything new since the last frame, as one frame to every viewer."""
        msgs: list[dict[str, Any]] = []
        while (entry := self.pending.pop(self.seq + 1, None)) is not None:
            event_id, message = entry
            self.seq += 1
            self.apply(message)
            self.ring.append((self.seq, event_id, message))
            msgs.append(message)
        if self.pending:
            now = time.monotonic()
            if self.gap_since is None:
                self.gap_since = now
            elif now - self.gap_since > self.config.gap_wait_seconds:
                self.request_resync()
        else:
            self.gap_since = None
        viewers = self.viewer_count()
        if viewers != self.sent_viewers:
            self.sent_viewers = viewers
            self.counters["viewers"] = {"type": "viewers", "count": viewers}
        for counter in self.counters.values():
            counter["seq"] = self.seq
            msgs.append(counter)
        self.counters = {}
        if not msgs:
            return
        self._state = None
        await self.broadcast(Frame.of(self.seq, msgs))

    async def broadcast(self, frame: Frame) -> None:
        self.frames_sent += 1
        slice_size = self.config.writes_per_slice
        for index, viewer in enumerate(list(self.viewers)):
            if viewer.closed:
                continue
            if viewer.backlog is not None:
                viewer.backlog.append(frame)
                continue
            assert viewer.writer is not None
            result = viewer.writer.write(frame)
            if result is not Write.ok:
                self._drop(viewer, CLOSE_TOO_SLOW if result is Write.slow else None)
            if index % slice_size == slice_size - 1:
                await asyncio.sleep(0)

    # --- once a second: presence, likes, stock ----------------------------------------------------

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.config.housekeeping_seconds)
            for step in (self._publish_presence, self._flush_likes, self._poll_stock):
                try:
                    await step()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("room %s: %s failed", self.session_id, step.__name__)

    async def _publish_presence(self) -> None:
        local = len(self.viewers)
        self.presence_beat += 1
        if local != self.sent_presence or self.presence_beat % 2 == 0:
            self.sent_presence = local
            envelope = {"k": "presence", "node": NODE, "n": local}
            await self.registry.hub.publish(channel(self.session_id), encode(envelope))

    async def _flush_likes(self) -> None:
        n, self.likes_buffer = self.likes_buffer, 0
        if n <= 0:
            return
        try:
            async with self.registry.runtime.db.sessionmaker() as session:
                await room_service.add_likes(session, self.session_id, n)
                await session.commit()
        except Exception:
            self.likes_buffer += n
            raise
        self.registry.poke()

    async def _poll_stock(self) -> None:
        if not self.viewers or not self.lineup:
            return
        async with self.registry.runtime.db.sessionmaker() as session:
            left = await room_service.stock_left(session, self.session_id)
            await session.rollback()
        changed = {}
        for item in self.lineup:
            now = left.get(item["id"])
            if now is not None and now != item["stock_left"]:
                item["stock_left"] = now
                changed[str(item["id"])] = now
        if changed:
            previous = self.counters.get("stock", {}).get("items", {})
            self.counters["stock"] = {"type": "stock", "items": {**previous, **changed}}
            self._state = None

    # --- starting over ----------------------------------------------------------------------------

    def request_resync(self, *, force: bool = False) -> None:
        if self.resyncing is None or self.resyncing.done():
            self.resyncing = asyncio.create_task(self._resync(force))

    async def _resync(self, force: bool) -> None:
        try:
            snapshot = await self.registry.load(self.session_id)
        except Exception:
            log.exception("room %s: reloading its state failed", self.session_id)
            return
        if snapshot.seq <= self.seq and not force:
            return  # what we wait for is not committed yet: keep waiting
        log.warning("room %s: resynchronised from seq %s to %s", self.session_id, self.seq, snapshot.seq)
        self.apply_snapshot(snapshot)
        await self.broadcast(Frame.of(self.seq, [self.state_message(reset=True)]))


async def _close_socket(viewer: Viewer, code: int) -> None:
    try:
        await asyncio.wait_for(viewer.websocket.close(code), timeout=2.0)
    except Exception:
        writer = viewer.writer
        if isinstance(writer, TransportWriter):
            writer.abort()


class RoomRegistry:
    """This process's open rooms (in ``runtime.extras``)."""

    def __init__(self, runtime: Runtime, config: RoomConfig | None = None) -> None:
        self.runtime = runtime
        self.config = config or RoomConfig()
        self.rooms: dict[int, Room] = {}
        self._poke: Callable[[], None] | None = None
        self.loader: Callable[[int], Awaitable[Snapshot]] | None = None

    @property
    def hub(self) -> Hub:
        return self.runtime.hub

    def set_poke(self, poke: Callable[[], None] | None) -> None:
        """How to tell the background worker that something was committed (likes)."""
        self._poke = poke

    def poke(self) -> None:
        if self._poke is not None:
            self._poke()

    async def load(self, session_id: int) -> Snapshot:
        if self.loader is not None:
            return await self.loader(session_id)
        async with self.runtime.db.sessionmaker() as session:
            snapshot = await room_service.load_snapshot(session, session_id)
            await session.rollback()
            return snapshot

    async def join(self, session_id: int) -> Room:
        """The open room for ``session_id``, opening it (one subscription, one state read) if needed."""
        room = self.rooms.get(session_id)
        if room is None or room.closed:
            room = Room(self, session_id)
            self.rooms[session_id] = room
            room.opening = asyncio.ensure_future(room.open())
        assert room.opening is not None
        try:
            await asyncio.shield(room.opening)
        except BaseException:
            if self.rooms.get(session_id) is room and room.opening.done():
                del self.rooms[session_id]
            raise
        return room

    async def discard(self, room: Room) -> None:
        if self.rooms.get(room.session_id) is room:
            del self.rooms[room.session_id]
        await room.close()

    async def close(self) -> None:
        for room in list(self.rooms.values()):
            await self.discard(room)


def rooms_of(runtime: Runtime) -> RoomRegistry:
    registry = runtime.extras.get("live.rooms")
    if registry is None:
        registry = runtime.extras["live.rooms"] = RoomRegistry(runtime)
    assert isinstance(registry, RoomRegistry)
    return registry
