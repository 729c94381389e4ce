"""Live sessions, their lineups, and the room: its realtime channel, comments and moderation."""

from __future__ import annotations

from linli.core.runtime import Runtime


def register_background(runtime: Runtime) -> None:
    """The ``live.room`` consumer: committed room events become messages on the hub."""
    from linli.live.room.publisher import room_consumer

    if "live.room" not in runtime.consumers.consumers:
        runtime.consumers.add(room_consumer(runtime.hub))


async def shutdown_background(runtime: Runtime) -> None:
    """Close this process's open rooms (their hub subscriptions and batchers) before the hub goes."""
    from linli.live.room.fanout import RoomRegistry

    registry = runtime.extras.get("live.rooms")
    if isinstance(registry, RoomRegistry):
        await registry.close()
