"""What travels through a room: the messages viewers receive, the envelopes app processes exchange on
the hub, and the one WebSocket frame a batch of messages becomes.

To viewers, every 100–200 ms, one frame: ``{"seq": N, "msgs": [...]}``. Each message has a ``type`` and a
``seq``:

- *sequenced* messages — ``comment``, ``reply``, ``comment_deleted``, ``pinned_product``, ``lineup``,
  ``session_status``, ``system_notice`` (and any later type made the same way) — each take the next number
  of the room's sequence, in order, with no gaps. A client that reconnects with ``?since=N`` gets those
  after N again (or a fresh ``state`` if the room no longer remembers that far back).
- *counters* — ``viewers``, ``like_burst``, ``stock`` — are latest values, coalesced: at most one of each
  per frame. They carry the room's sequence number at the time (the last sequenced message they follow)
  and do not advance it; nothing is replayed for them, a resumed client gets their current values.
  ``purchase`` (the ticker: ``items``, the purchases paid since the last frame, at most five, each with
  the masked ``buyer``, ``community``, ``product_name`` and ``quantity``) is coalesced the same way, and
  so is ``progress`` (``items``: community id → ``community_name``, ``units``, ``threshold``, ``reached``,
  only the communities that changed since the last frame; ``state`` has them all).
- ``state`` — the whole room (session, pinned item, lineup with stock left, viewers, likes, the last 50
  comments) at ``seq``: sent on join, and with ``"reset": true`` when a resume cannot be served.

The sequence is handed out by whoever publishes sequenced messages: the ``live.room`` event consumer,
which runs in one place at a time (its cursor row is locked) and keeps the counter in ``live_rooms.seq``
in the same transaction as its cursor. So numbers agree across app processes, with or without Redis, and
a batch redelivered after a crash publishes the same numbers again (receivers drop what they have).

Between processes (hub channel ``live:room:{id}``) envelopes are ``{"k": kind, ...}``: ``msg`` (a
sequenced message, with the id ``e`` of the event it came from), ``likes``, ``presence`` (one process's
viewer count), ``ban``, ``stock`` (units left per item, from order events) and ``purchase`` (one ticker
line, with the id ``e`` of its ``order.paid`` event) and ``progress`` (one community's group-order units,
with the id ``e`` of its ``group_order.progressed`` event).
"""

from __future__ import annotations

from typing import Any

import orjson

SEQUENCED = frozenset(
    {"comment", "reply", "comment_deleted", "pinned_product", "lineup", "session_status", "system_notice"}
)
COUNTERS = frozenset({"viewers", "like_burst", "stock", "purchase", "progress"})

# Close codes a client acts on (4000–4999 are the application's): do not reconnect after these.
CLOSE_BANNED = 4003
CLOSE_NOT_FOUND = 4004
# A client that could not keep up (its unsent data passed the limit): it may reconnect with ``since``.
CLOSE_TOO_SLOW = 4008


def channel(session_id: int) -> str:
    return f"live:room:{session_id}"


def encode(value: Any) -> bytes:
    return orjson.dumps(value)


def decode(data: bytes) -> Any:
    return orjson.loads(data)


def ws_text_frame(payload: bytes) -> bytes:
    """``payload`` as one unmasked, unfragmented WebSocket text frame (RFC 6455 §5.2): the exact bytes
    every viewer's socket receives, built once per frame. Uncompressed (RSV1 clear), which is valid even
    where permessage-deflate was negotiated."""
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 1 << 16:
        header = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return header + payload


class Frame:
    """One serialised batch: the JSON once, the wire bytes once, the text (for servers where we cannot
    write to the socket ourselves) only if asked."""

    __slots__ = ("_text", "_wire", "payload")

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self._wire: bytes | None = None
        self._text: str | None = None

    @classmethod
    def of(cls, seq: int, msgs: list[dict[str, Any]]) -> Frame:
        return cls(encode({"seq": seq, "msgs": msgs}))

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            self._wire = ws_text_frame(self.payload)
        return self._wire

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.payload.decode()
        return self._text


# --- sequenced messages, from the events' payloads ------------------------------------------------


def comment_message(payload: dict[str, Any]) -> dict[str, Any]:
    kind = "reply" if payload.get("reply_to") else "comment"
    return {"type": kind, **payload}


def lineup_entry(item: Any, on_sale: bool) -> dict[str, Any]:
    """A lineup item as viewers see it (``item`` is a ``LineupItem``)."""
    product = item.product
    return {
        "id": item.id,
        "product_id": item.product_id,
        "name": product.name,
        "photo_url": product.cover_url,
        "live_price_fen": item.live_price_fen,
        "store_price_fen": product.store_price_fen,
        "stock": item.stock,
        "stock_left": item.stock_left,
        "per_user_limit": item.per_user_limit,
        "on_sale": on_sale,
    }
