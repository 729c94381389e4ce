"""The ``live.room`` consumer: turns committed events into room messages on the hub.

It is the only publisher of sequenced messages, so it hands out the room's sequence numbers
(``room.service.next_seq``) in the transaction that also moves its cursor. Publishing happens inside that
transaction, before the commit: should the commit fail, the batch is delivered again and publishes the
same numbers with the same content, which receivers recognise (same ``seq`` and event id) and drop. A
publish that fails raises, the handler's savepoint rolls the number back, and the event is retried.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.consumers import Consumer
from linli.core.events import Event
from linli.core.hub import Hub
from linli.live import comments, lottery
from linli.live.models import LiveSession
from linli.live.room import progress, purchases
from linli.live.room import service as room_service
from linli.live.room.messages import channel, comment_message, encode

LINEUP_EVENTS = frozenset(
    {
        "live.lineup_item_added",
        "live.lineup_item_updated",
        "live.lineup_item_removed",
        "live.lineup_reordered",
    }
)
STATUS_EVENTS = frozenset({"live.session_started", "live.session_ended"})
ROOM_EVENTS = frozenset(
    {
        comments.POSTED,
        comments.DELETED,
        comments.BANNED,
        comments.UNBANNED,
        room_service.PINNED,
        room_service.LIKED,
        room_service.NOTICE,
        *LINEUP_EVENTS,
        *STATUS_EVENTS,
        lottery.STARTED,
        lottery.DRAWN,
        *purchases.ORDER_EVENTS,
        progress.PROGRESSED,
    }
)


async def _lineup(session: AsyncSession, session_id: int) -> list[dict[str, Any]] | None:
    live_session = await session.get(LiveSession, session_id)
    if live_session is None:
        return None
    return room_service.lineup_view(live_session)


async def messages_for(session: AsyncSession, event: Event) -> list[dict[str, Any]]:
    """The sequenced messages an event becomes (without their ``seq`` yet)."""
    payload = event.payload or {}
    if event.type == comments.POSTED:
        return [comment_message(payload)]
    if event.type == comments.DELETED:
        return [{"type": "comment_deleted", "id": payload["comment_id"]}]
    if event.type == room_service.PINNED:
        return [{"type": "pinned_product", "item_id": payload.get("item_id")}]
    if event.type == room_service.NOTICE:
        notice: dict[str, Any] = {"type": "system_notice", "text": payload["text"]}
        if payload.get("system"):
            notice["kind"] = payload.get("kind", "")
        return [notice]
    if event.type in (lottery.STARTED, lottery.DRAWN):
        return [lottery.room_message(event.type, payload)]
    assert event.session_id is not None
    if event.type in STATUS_EVENTS:
        status = {"type": "session_status", "status": payload["to"], "at": event.occurred_at.isoformat()}
        # Sale windows follow the session's live period: on sale flips with it.
        lineup = await _lineup(session, event.session_id)
        return [status] + ([{"type": "lineup", "items": lineup}] if lineup is not None else [])
    if event.type in LINEUP_EVENTS:
        lineup = await _lineup(session, event.session_id)
        return [{"type": "lineup", "items": lineup}] if lineup is not None else []
    return []


def control_for(event: Event) -> dict[str, Any] | None:
    """Envelopes that are not viewers' messages: like totals and bans."""
    payload = event.payload or {}
    if event.type == room_service.LIKED:
        return {"k": "likes", "n": payload["n"], "total": payload["total"]}
    if event.type in (comments.BANNED, comments.UNBANNED):
        return {
            "k": "ban" if event.type == comments.BANNED else "unban",
            "user_ids": [payload["user_id"]],
            "anonymous_ids": payload.get("anonymous_ids", []),
        }
    return None


def room_consumer(hub: Hub) -> Consumer:
    async def publish(session: AsyncSession, event: Event) -> None:
        if event.session_id is None:
            return
        envelopes = []
        control = control_for(event)
        if control is not None:
            envelopes.append(control)
        # Orders: stock left and the purchase ticker, coalesced by each room (not sequenced).
        envelopes.extend(await purchases.envelopes_for(session, event))
        # Group orders: each community's progress, coalesced by each room the same way.
        envelopes.extend(progress.envelopes_for(event))
        for message in await messages_for(session, event):
            message["seq"] = await room_service.next_seq(session, event.session_id)
            envelopes.append({"k": "msg", "e": event.id, "m": message})
        for envelope in envelopes:
            await hub.publish(channel(event.session_id), encode(envelope))

    async def publish_batch(session: AsyncSession, events: list[Event]) -> None:
        # The same messages, in the same order; a flash sale's paid orders name their buyers and
        # communities from two queries for the batch, not three a purchase.
        await purchases.read_ahead(session, events)
        for event in events:
            await publish(session, event)

    # A new consumer starts at the end of the log: rooms show what happens from now on, not the history.
    # Its own lane: a comment reaches the room after this consumer's pass alone, not after every other
    # consumer's that a commit woke too.
    return Consumer(
        name="live.room",
        handler=publish,
        types=ROOM_EVENTS,
        from_beginning=False,
        lane="room",
        batch_handler=publish_batch,
    )
