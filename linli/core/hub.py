"""Pub/sub hub: in-process by default, Redis across processes when ``LINLI_REDIS_URL`` is set.

Each process keeps one upstream subscription per channel however many local subscribers it has, and
fans messages out to them through bounded queues. A subscriber that falls behind is marked ``lagged`` and
loses the oldest messages rather than holding the channel back; it should resynchronise. (A Redis hub
also marks its subscribers lagged when its connection drops, since Redis pub/sub does not replay.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Protocol

log = logging.getLogger(__name__)


class Subscription:
    """One local subscriber's view of a channel."""

    def __init__(self, hub: LocalFanout, channel: str, maxsize: int) -> None:
        self.hub = hub
        self.channel = channel
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=maxsize)
        self.lagged = False

    def deliver(self, message: bytes) -> None:
        if self.queue.full():
            self.lagged = True
            self.queue.get_nowait()
        self.queue.put_nowait(message)

    async def get(self) -> bytes:
        return await self.queue.get()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        while True:
            yield await self.queue.get()

    async def close(self) -> None:
        await self.hub.unsubscribe(self)


class Hub(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def publish(self, channel: str, message: bytes) -> None: ...
    async def subscribe(self, channel: str, *, maxsize: int = 1000) -> Subscription: ...


class LocalFanout:
    """Local subscribers by channel; the base of both hubs."""

    def __init__(self) -> None:
        self.subscribers: dict[str, set[Subscription]] = defaultdict(set)
        # Upstream subscriptions under way, so a second local subscriber waits for the first's too.
        self._subscribing: dict[str, asyncio.Future[None]] = {}

    def fan_out(self, channel: str, message: bytes) -> None:
        for subscription in list(self.subscribers.get(channel, ())):
            subscription.deliver(message)

    async def subscribe(self, channel: str, *, maxsize: int = 1000) -> Subscription:
        """A new local subscriber; once this returns, every message published to ``channel`` reaches it."""
        subscription = Subscription(self, channel, maxsize)
        first = not self.subscribers.get(channel)
        self.subscribers[channel].add(subscription)
        try:
            if first:
                pending = asyncio.ensure_future(self._upstream_subscribe(channel))
                self._subscribing[channel] = pending
                try:
                    await asyncio.shield(pending)
                finally:
                    if self._subscribing.get(channel) is pending:
                        del self._subscribing[channel]
            elif channel in self._subscribing:
                await asyncio.shield(self._subscribing[channel])
        except BaseException:
            with contextlib.suppress(Exception):
                await self.unsubscribe(subscription)
            raise
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self.subscribers.get(subscription.channel)
        if not subscribers or subscription not in subscribers:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self.subscribers[subscription.channel]
            await self._upstream_unsubscribe(subscription.channel)

    async def _upstream_subscribe(self, channel: str) -> None:
        return None

    async def _upstream_unsubscribe(self, channel: str) -> None:
        return None


class LocalHub(LocalFanout):
    """Everything in one process: publish is a direct fan-out."""

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.subscribers.clear()

    async def publish(self, channel: str, message: bytes) -> None:
        self.fan_out(channel, message)


class RedisHub(LocalFanout):
    """Publishes through Redis; one pub/sub connection per process reads and fans out locally."""

    # How long to wait for Redis to confirm a SUBSCRIBE before carrying on regardless.
    confirm_timeout = 5.0

    def __init__(self, url: str, *, prefix: str = "linli") -> None:
        super().__init__()
        import redis.asyncio as redis

        self.prefix = f"{prefix}:hub:"
        self.redis = redis.from_url(url)
        self.pubsub = self.redis.pubsub()
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._confirmations: dict[str, asyncio.Event] = {}

    async def start(self) -> None:
        await self.redis.ping()
        self._reader = asyncio.create_task(self._read(), name="redis-hub-reader")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()
        await self.redis.aclose()
        self.subscribers.clear()

    async def publish(self, channel: str, message: bytes) -> None:
        await self.redis.publish(self.prefix + channel, message)

    async def _upstream_subscribe(self, channel: str) -> None:
        # SUBSCRIBE and PUBLISH travel on different connections, so Redis may run a publish sent after
        # subscribe() returned before the SUBSCRIBE itself: wait for its confirmation on the reader.
        full = self.prefix + channel
        confirmed = self._confirmations[full] = asyncio.Event()
        try:
            await self.pubsub.subscribe(full)
            self._ready.set()
            try:
                await asyncio.wait_for(confirmed.wait(), timeout=self.confirm_timeout)
            except TimeoutError:
                log.warning("redis did not confirm the subscription to %s in time", full)
        finally:
            if self._confirmations.get(full) is confirmed:
                del self._confirmations[full]

    async def _upstream_unsubscribe(self, channel: str) -> None:
        await self.pubsub.unsubscribe(self.prefix + channel)

    async def _read(self) -> None:
        while True:
            await self._ready.wait()
            try:
                message = await self.pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("redis hub read failed; retrying")
                # Redis does not replay what was published while the connection was down: tell every
                # local subscriber it may have missed messages, so it resynchronises.
                for subscriptions in self.subscribers.values():
                    for subscription in subscriptions:
                        subscription.lagged = True
                await asyncio.sleep(0.5)
                continue
            if message is None:
                continue
            channel = message["channel"]
            if isinstance(channel, bytes):
                channel = channel.decode()
            if message.get("type") == "subscribe":
                confirmed = self._confirmations.get(channel)
                if confirmed is not None:
                    confirmed.set()
            elif message.get("type") == "message":
                self.fan_out(channel.removeprefix(self.prefix), message["data"])


def create_hub(redis_url: str | None, *, prefix: str = "linli") -> Hub:
    if redis_url:
        return RedisHub(redis_url, prefix=prefix)
    return LocalHub()
