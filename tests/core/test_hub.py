"""The pub/sub hub: local fan-out with bounded queues, and Redis across processes."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import uuid

import pytest

from linli.core.hub import LocalHub, RedisHub, Subscription, create_hub


async def _next(subscription: Subscription, timeout: float = 3) -> bytes:
    return await asyncio.wait_for(subscription.get(), timeout=timeout)


async def _nothing_more(subscription: Subscription, wait: float = 0.05) -> None:
    await asyncio.sleep(wait)
    assert subscription.queue.empty(), f"unexpected message {subscription.queue.get_nowait()!r}"


class TestLocalHub:
    async def test_fan_out_reaches_every_subscriber_of_the_channel_only(self) -> None:
        hub = LocalHub()
        await hub.start()
        room = [await hub.subscribe("room:1") for _ in range(3)]
        elsewhere = await hub.subscribe("room:2")

        await hub.publish("room:1", b"hello")
        assert [await _next(s) for s in room] == [b"hello"] * 3
        await _nothing_more(elsewhere)
        await hub.close()

    async def test_unsubscribe_stops_delivery_to_that_subscriber_only(self) -> None:
        hub = LocalHub()
        leaving, staying = await hub.subscribe("room:1"), await hub.subscribe("room:1")
        await leaving.close()
        await leaving.close()  # twice is harmless
        await hub.publish("room:1", b"after")
        assert await _next(staying) == b"after"
        await _nothing_more(leaving)
        await staying.close()
        assert "room:1" not in hub.subscribers
        await hub.publish("room:1", b"nobody listens")  # no subscribers: not an error

    async def test_a_slow_subscriber_drops_its_oldest_messages_and_is_marked_lagged(self) -> None:
        hub = LocalHub()
        slow = await hub.subscribe("room:1", maxsize=3)
        fast = await hub.subscribe("room:1", maxsize=100)
        for n in range(10):
            await hub.publish("room:1", str(n).encode())

        assert slow.lagged
        assert [await _next(slow) for _ in range(3)] == [b"7", b"8", b"9"]
        await _nothing_more(slow)
        assert not fast.lagged
        assert [await _next(fast) for _ in range(10)] == [str(n).encode() for n in range(10)]

    async def test_subscription_iterates_messages_in_order(self) -> None:
        hub = LocalHub()
        subscription = await hub.subscribe("feed")
        for n in range(3):
            await hub.publish("feed", bytes([n]))
        received = []
        async for message in subscription:
            received.append(message)
            if len(received) == 3:
                break
        assert received == [b"\x00", b"\x01", b"\x02"]

    async def test_create_hub_is_local_without_redis_and_redis_with_it(self) -> None:
        assert isinstance(create_hub(None), LocalHub)
        assert isinstance(create_hub(""), LocalHub)
        hub = create_hub("redis://127.0.0.1:6379/0", prefix="p")
        assert isinstance(hub, RedisHub)
        assert hub.prefix == "p:hub:"
        await hub.close()


class TestRedisHub:
    async def test_publish_reaches_local_subscribers_through_redis(self, hub: RedisHub) -> None:
        a, b = await hub.subscribe("room:1"), await hub.subscribe("room:1")
        other = await hub.subscribe("room:2")
        await hub.publish("room:1", "弹幕 1".encode())
        assert await _next(a) == await _next(b) == "弹幕 1".encode()
        await _nothing_more(other)
        # One upstream subscription per channel, however many local subscribers.
        assert set(hub.pubsub.channels) == {
            f"{hub.prefix}room:1".encode(),
            f"{hub.prefix}room:2".encode(),
        }

    async def test_a_message_published_right_after_subscribing_is_not_lost(
        self, redis_url: str, hub: RedisHub, hub_prefix: str
    ) -> None:
        publisher = RedisHub(redis_url, prefix=hub_prefix)
        await publisher.start()
        try:
            for n in range(20):
                subscription = await hub.subscribe(f"fresh:{n}")
                await publisher.publish(f"fresh:{n}", b"first")
                assert await _next(subscription) == b"first"
        finally:
            await publisher.close()

    async def test_hubs_with_different_prefixes_do_not_hear_each_other(
        self, redis_url: str, hub: RedisHub
    ) -> None:
        stranger = RedisHub(redis_url, prefix=f"other-{uuid.uuid4().hex[:8]}")
        await stranger.start()
        try:
            ours = await hub.subscribe("room:1")
            theirs = await stranger.subscribe("room:1")
            await stranger.publish("room:1", b"theirs")
            assert await _next(theirs) == b"theirs"
            await _nothing_more(ours, wait=0.2)
        finally:
            await stranger.close()

    async def test_unsubscribing_the_last_local_subscriber_drops_the_upstream_subscription(
        self, hub: RedisHub
    ) -> None:
        first, second = await hub.subscribe("room:1"), await hub.subscribe("room:1")
        await first.close()
        await hub.publish("room:1", b"still here")
        assert await _next(second) == b"still here"
        await second.close()
        channel = f"{hub.prefix}room:1"
        for _ in range(100):
            numsub = await hub.redis.pubsub_numsub(channel)
            if numsub[0][1] == 0:
                break
            await asyncio.sleep(0.01)
        assert numsub[0][1] == 0
        again = await hub.subscribe("room:1")
        await hub.publish("room:1", b"back")
        assert await _next(again) == b"back"

    async def test_a_dropped_redis_connection_is_resubscribed_and_subscribers_told_to_resync(
        self, hub: RedisHub
    ) -> None:
        subscription = await hub.subscribe("room:1")
        await hub.publish("room:1", b"before")
        assert await _next(subscription) == b"before"
        assert not subscription.lagged

        # Kill the hub's pub/sub connection server-side, as a Redis restart or a network blip would.
        assert hub.pubsub.connection is not None
        name = f"hub-test-{uuid.uuid4().hex[:8]}"
        await hub.pubsub.execute_command("CLIENT", "SETNAME", name)
        await asyncio.sleep(0.05)
        clients = await hub.redis.client_list()
        [victim] = [c for c in clients if c.get("name") == name]
        await hub.redis.client_kill_filter(_id=victim["id"])

        deadline = asyncio.get_running_loop().time() + 10
        while True:
            await hub.publish("room:1", b"after")
            try:
                if await _next(subscription, timeout=0.2) == b"after":
                    break
            except TimeoutError:
                pass
            assert asyncio.get_running_loop().time() < deadline, "never heard again after reconnecting"
        # What was published while it was down is gone for good: the subscriber must resynchronise.
        assert subscription.lagged


CHILD = textwrap.dedent(
    """
    import asyncio, os, sys
    from linli.core.hub import RedisHub

    async def main():
        hub = RedisHub(os.environ["HUB_REDIS_URL"], prefix=os.environ["HUB_PREFIX"])
        await hub.start()
        inbox = await hub.subscribe("room:cross")
        print("ready", os.getpid(), flush=True)
        while True:
            message = await asyncio.wait_for(inbox.get(), timeout=15)
            text = message.decode()
            print("got", text, flush=True)
            await hub.publish("room:reply", f"child {os.getpid()} heard {text}".encode())
            if text == "bye":
                break
        await hub.close()

    asyncio.run(main())
    """
)


async def test_a_message_crosses_os_processes_through_redis(
    redis_url: str, hub: RedisHub, hub_prefix: str
) -> None:
    """The room's promise: a comment published by one app process reaches viewers on another."""
    env = {**os.environ, "HUB_REDIS_URL": redis_url, "HUB_PREFIX": hub_prefix}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        ready = (await asyncio.wait_for(child.stdout.readline(), timeout=20)).decode()
        if not ready.startswith("ready"):
            assert child.stderr is not None
            pytest.fail(f"child did not start: {ready!r} {await child.stderr.read()!r}")
        child_pid = int(ready.split()[1])
        assert child_pid != os.getpid()

        replies = await hub.subscribe("room:reply")
        comment = f"邻居 {os.getpid()} 说：青团还有吗？"
        await hub.publish("room:cross", comment.encode())
        line = (await asyncio.wait_for(child.stdout.readline(), timeout=10)).decode().rstrip("\n")
        assert line == f"got {comment}"
        # And back the other way: the child's publish reaches this process.
        assert await _next(replies, timeout=10) == f"child {child_pid} heard {comment}".encode()

        await hub.publish("room:cross", b"bye")
        assert await asyncio.wait_for(child.wait(), timeout=10) == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
