"""What the room shows of checkout: stock left pushed on every order event, and the purchase ticker
("阳光花园的王*刚刚下单了3份") on every paid order.

Live sits below orders, so it reacts to their events by type name only (the strings below are the
orders domain's ``events`` constants). Both become hub *envelopes*, not sequenced messages: stock is a
latest value and purchases a stream of which only the last few matter, so each room coalesces them into at
most one ``stock`` and one ``purchase`` message per frame (``fanout.Room.receive``), however many orders a
flash sale commits in that time.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community.models import Community
from linli.core.events import Event
from linli.identity.models import User, display_name
from linli.live.room import service as room_service

ORDER_CREATED = "order.created"
ORDER_PAID = "order.paid"
# Every order event that moves a lineup item's reserved or sold units.
ORDER_EVENTS = frozenset({ORDER_CREATED, ORDER_PAID, "order.cancelled", "order.expired", "order.refunded"})
# How many recent purchases a room remembers and sends in one ``purchase`` message.
TICKER_SIZE = 5


def ticker_name(name: str) -> str:
    """A buyer as the room names them: the first character and one star (王阿姨 → 王*, 张哥 → 张*)."""
    name = name.strip()
    return f"{name[:1] or '邻'}*"


async def stock_envelope(session: AsyncSession, session_id: int) -> dict[str, Any]:
    """Units left of every current lineup item of the session (one query), as a ``stock`` envelope."""
    left = await room_service.stock_left(session, session_id)
    return {"k": "stock", "items": {str(item_id): max(n, 0) for item_id, n in left.items()}}


# Where ``read_ahead`` leaves a batch's names in the consumer's session.
BUYERS, COMMUNITIES = "live.room.buyers", "live.room.communities"


async def read_ahead(session: AsyncSession, events: list[Event]) -> None:
    """The names a batch's ticker lines show — buyers and their communities — in two queries for the
    whole batch; ``purchase_envelope`` then finds them in the session instead of asking per order."""
    paid = [e for e in events if e.type == ORDER_PAID]
    user_ids = sorted({e.user_id for e in paid if e.user_id is not None})
    community_ids = sorted({e.community_id for e in paid if e.community_id is not None})
    if user_ids:
        users = await session.execute(select(User.id, User.nickname, User.phone).where(User.id.in_(user_ids)))
        session.info.setdefault(BUYERS, {}).update(
            {user_id: display_name(nickname, phone) for user_id, nickname, phone in users}
        )
    if community_ids:
        communities = await session.execute(
            select(Community.id, Community.name).where(Community.id.in_(community_ids))
        )
        session.info.setdefault(COMMUNITIES, {}).update(dict(communities.all()))


async def _buyer_name(session: AsyncSession, user_id: int) -> str:
    known: dict[int, str] = session.info.get(BUYERS, {})
    if user_id in known:
        return known[user_id]
    user = await session.scalar(select(User).where(User.id == user_id))
    return user.display_name if user is not None else ""


async def _community_name(session: AsyncSession, community_id: int | None) -> str:
    if community_id is None:
        return ""
    known: dict[int, str] = session.info.get(COMMUNITIES, {})
    if community_id in known:
        return known[community_id]
    return await session.scalar(select(Community.name).where(Community.id == community_id)) or ""


async def purchase_envelope(session: AsyncSession, event: Event) -> dict[str, Any] | None:
    """The ticker line an ``order.paid`` event becomes: masked buyer, community name, quantity. ``e`` (the
    event id) lets rooms drop the same purchase delivered twice."""
    payload = event.payload or {}
    lines = payload.get("lines") or []
    if event.user_id is None or not lines:
        return None
    first = lines[0]
    return {
        "k": "purchase",
        "e": event.id,
        "buyer": ticker_name(await _buyer_name(session, event.user_id)),
        "community": await _community_name(session, event.community_id),
        "item_id": first.get("item_id"),
        "product_name": first.get("product_name", ""),
        "quantity": sum(int(line.get("quantity", 0)) for line in lines),
        "at": event.occurred_at.isoformat(),
    }


async def envelopes_for(session: AsyncSession, event: Event) -> list[dict[str, Any]]:
    """The room envelopes an order event becomes: the stock left, and on payment the ticker line.

    Stock is read once per session per consumer transaction: the batch's events were all committed
    before it began, so the first read is already as new as any of them (a flash sale's batch of a
    hundred orders is one query and one envelope, not a hundred)."""
    if event.type not in ORDER_EVENTS or event.session_id is None:
        return []
    published: set[int] = session.info.setdefault("live.room.stock_read", set())
    envelopes = []
    if event.session_id not in published:
        published.add(event.session_id)
        envelopes.append(await stock_envelope(session, event.session_id))
    if event.type == ORDER_PAID:
        purchase = await purchase_envelope(session, event)
        if purchase is not None:
            envelopes.append(purchase)
    return envelopes
