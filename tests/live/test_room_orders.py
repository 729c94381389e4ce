"""Checkout as the room sees it: order events become ``stock`` and ``purchase`` envelopes on the room's
channel (the ``live.room`` consumer, by event type name: live does not import orders), each room coalesces
them into one message of each per frame, buyers are masked, and a sold-out reaches every viewer."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from linli.community.models import Membership
from linli.core.config import Settings
from linli.core.consumers import run_consumer_once
from linli.core.db import Database
from linli.core.events import Event
from linli.core.hub import LocalHub
from linli.core.runtime import Runtime
from linli.live.room import purchases
from linli.live.room.fanout import Room, RoomConfig, RoomRegistry, Write
from linli.live.room.messages import Frame, channel
from linli.live.room.publisher import room_consumer
from linli.live.room.service import Snapshot
from linli.orders import service as orders
from linli.orders.events import ORDER_CANCELLED, ORDER_CREATED, ORDER_EXPIRED, ORDER_PAID, ORDER_REFUNDED
from tests.community.factories import make_community, make_pickup_point
from tests.factories import bearer, make_user_with_token
from tests.live.roomkit import serve_in_thread, watch
from tests.orders.factories import Sale, make_buyer, make_sale

# --- masking ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "shown"),
    [("王阿姨", "王*"), ("张哥", "张*"), ("李", "李*"), ("  欧阳娜娜 ", "欧*"), ("", "邻*")],
)
def test_ticker_names_keep_only_the_first_character(name: str, shown: str) -> None:
    assert purchases.ticker_name(name) == shown


@given(st.text(min_size=2, max_size=30).filter(lambda s: len(s.strip()) >= 2))
def test_a_ticker_name_never_shows_more_than_one_character(name: str) -> None:
    shown = purchases.ticker_name(name)
    assert shown == name.strip()[0] + "*"
    # Two characters whatever the name's length: neither the rest of it nor how long it is shows.
    assert len(shown) == 2


def test_live_reacts_to_the_orders_event_names_it_spells_itself() -> None:
    # live cannot import orders; the strings must stay the ones orders writes.
    assert {
        ORDER_CREATED,
        ORDER_PAID,
        ORDER_CANCELLED,
        ORDER_EXPIRED,
        ORDER_REFUNDED,
    } == purchases.ORDER_EVENTS


# --- the consumer: order events → envelopes on the room's channel ----------------------------------


class RecordingHub(LocalHub):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def publish(self, channel: str, message: bytes) -> None:
        self.sent.append((channel, orjson.loads(message)))
        await super().publish(channel, message)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [e for _c, e in self.sent if e.get("k") == kind]


async def _sale(db: Database, *, stock: int = 10) -> Sale:
    async with db.sessionmaker() as session:
        sale = await make_sale(session, stock=stock, per_user_limit=5)
        await session.commit()
        return sale


async def test_order_events_push_stock_and_a_masked_purchase_line(db: Database) -> None:
    sale = await _sale(db, stock=10)
    hub = RecordingHub()
    consumer = room_consumer(hub)
    await run_consumer_once(db, consumer)  # the cursor starts at the end of the log
    async with db.sessionmaker() as session:
        wang = await make_buyer(session, sale.community, nickname="王阿姨")
        zhao = await make_buyer(session, sale.community, nickname="赵大爷")
        await session.commit()
    async with db.sessionmaker() as session:
        paid = await orders.create_order(session, wang, sale.order(3), idempotency_key="k-wang")
        await session.commit()
    await run_consumer_once(db, consumer)
    async with db.sessionmaker() as session:
        dropped = await orders.create_order(session, zhao, sale.order(2), idempotency_key="k-zhao")
        await session.commit()
    await run_consumer_once(db, consumer)
    item = str(sale.item.id)
    assert [e["items"][item] for e in hub.of_kind("stock")] == [7, 5]
    assert hub.of_kind("purchase") == []  # created is not bought yet

    async with db.sessionmaker() as session:
        await orders.mark_paid(
            session, paid.id, amount_fen=paid.total_fen, provider="sandbox", provider_ref="pay-1"
        )
        await orders.cancel_order(session, dropped.id, user=zhao)
        await session.commit()
    await run_consumer_once(db, consumer)
    # Stock is a latest value, read once per consumer pass: the two events of that pass become one
    # envelope with what they left (10 - 3 sold).
    assert [e["items"][item] for e in hub.of_kind("stock")] == [7, 5, 7]
    (line,) = hub.of_kind("purchase")
    assert line["buyer"] == "王*"
    assert line["community"] == "梧桐苑"
    assert line["quantity"] == 3
    assert line["product_name"] == "春季限定青团"
    assert line["item_id"] == sale.item.id
    assert isinstance(line["e"], int)
    # Nothing that names the neighbour travels: no id, no phone, no full name.
    assert "阿姨" not in orjson.dumps(line).decode()
    assert wang.phone not in orjson.dumps(hub.sent).decode()
    assert {c for c, _e in hub.sent} == {channel(sale.live_session.id)}


async def test_a_batch_of_purchases_names_each_buyer_from_two_queries(db: Database) -> None:
    """A flash sale's batch: every paid order still becomes its own ticker line, masked, with its own
    community — the names read for the whole batch at once (a buyer without a nickname is 邻*)."""
    from sqlalchemy import event as sa_event

    sale = await _sale(db, stock=50)
    hub = RecordingHub()
    consumer = room_consumer(hub)
    await run_consumer_once(db, consumer)
    async with db.sessionmaker() as session:
        there = await make_community(session, name="阳光花园")
        await make_pickup_point(session, community=there)
        buyers = [
            await make_buyer(session, sale.community, nickname="王阿姨"),
            await make_buyer(session, there, nickname="赵大爷"),
            await make_buyer(session, sale.community, nickname=""),
        ]
        await session.commit()

    async def pay_and_publish(quantities: list[int]) -> int:
        async with db.sessionmaker() as session:
            for buyer, quantity in zip(buyers, quantities, strict=True):
                order = await orders.create_order(session, buyer, sale.order(quantity))
                await orders.mark_paid(
                    session,
                    order.id,
                    amount_fen=order.total_fen,
                    provider="sandbox",
                    provider_ref=f"p{order.id}",
                )
            await session.commit()
        seen: list[str] = []

        def note(_conn, _cursor, statement: str, *_rest) -> None:  # type: ignore[no-untyped-def]
            seen.append(statement)

        sa_event.listen(db.engine.sync_engine, "before_cursor_execute", note)
        try:
            await run_consumer_once(db, consumer)
        finally:
            sa_event.remove(db.engine.sync_engine, "before_cursor_execute", note)
        return len([s for s in seen if re.search(r"FROM (users|communities)\b", s)])

    assert await pay_and_publish([1, 2, 3]) == 2
    lines = hub.of_kind("purchase")
    assert [(x["buyer"], x["community"], x["quantity"]) for x in lines] == [
        ("王*", "梧桐苑", 1),
        ("赵*", "阳光花园", 2),
        ("邻*", "梧桐苑", 3),
    ]
    assert len({x["e"] for x in lines}) == 3


async def test_paid_order_payload_carries_what_the_ticker_needs(db: Database) -> None:
    sale = await _sale(db)
    async with db.sessionmaker() as session:
        buyer = await make_buyer(session, sale.community, nickname="王阿姨")
        order = await orders.create_order(session, buyer, sale.order(2))
        await orders.mark_paid(
            session, order.id, amount_fen=order.total_fen, provider="sandbox", provider_ref="pay-2"
        )
        await session.commit()
    async with db.sessionmaker() as session:
        event = await session.scalar(select(Event).where(Event.type == ORDER_PAID))
    assert event is not None
    assert event.payload["lines"] == [
        {
            "item_id": sale.item.id,
            "product_id": sale.item.product_id,
            "product_name": "春季限定青团",
            "quantity": 2,
        }
    ]
    assert event.session_id == sale.live_session.id
    assert event.community_id == sale.community.id


# --- one process's room: coalescing ----------------------------------------------------------------


class Writer:
    def __init__(self) -> None:
        self.frames: list[Frame] = []

    def write(self, frame: Frame) -> Write:
        self.frames.append(frame)
        return Write.ok

    def close(self) -> None:
        return None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [m for f in self.frames for m in orjson.loads(f.payload)["msgs"]]


class Socket:
    async def close(self, code: int = 1000) -> None:
        return None


@pytest.fixture
async def room() -> AsyncIterator[Room]:
    runtime = Runtime(settings=Settings(), db=Database("sqlite+aiosqlite://"), hub=LocalHub())
    registry = RoomRegistry(runtime, RoomConfig(tick_seconds=3600, housekeeping_seconds=3600))

    async def load(session_id: int) -> Snapshot:
        lineup = [{"id": 7, "stock_left": 10}, {"id": 8, "stock_left": 50}]
        return Snapshot(seq=0, session={"id": 1}, pinned_item_id=None, lineup=lineup, likes=0, comments=[])

    registry.loader = load
    yield await registry.join(1)
    await registry.close()
    await runtime.db.dispose()


def _viewer(room: Room) -> Writer:
    writer = Writer()
    viewer, _first = room.admit(Socket(), None, None, None)  # type: ignore[arg-type]
    room.activate(viewer, writer)
    return writer


def _purchase(e: int, buyer: str = "王*", quantity: int = 1) -> dict[str, Any]:
    return {
        "k": "purchase",
        "e": e,
        "buyer": buyer,
        "community": "梧桐苑",
        "quantity": quantity,
        "item_id": 7,
    }


async def test_a_frame_carries_one_stock_and_one_purchase_message(room: Room) -> None:
    writer = _viewer(room)
    await room.flush()
    writer.frames.clear()
    for left in (9, 6, 3):
        room.receive({"k": "stock", "items": {"7": left, "8": 50}})
    for e in range(1, 9):
        room.receive(_purchase(e, quantity=e))
    room.receive(_purchase(8, quantity=8))  # the same event again (a redelivered batch)
    await room.flush()
    assert len(writer.frames) == 1
    msgs = writer.messages
    (stock,) = [m for m in msgs if m["type"] == "stock"]
    # Only what changed, at its latest value.
    assert stock["items"] == {"7": 3}
    (ticker,) = [m for m in msgs if m["type"] == "purchase"]
    assert [p["e"] for p in ticker["items"]] == [4, 5, 6, 7, 8]
    assert all("k" not in p for p in ticker["items"])
    # A viewer joining now sees the stock and the last purchases in the state.
    state = room.state_message()
    assert [i["stock_left"] for i in state["lineup"]] == [3, 50]
    assert [p["e"] for p in state["purchases"]] == [4, 5, 6, 7, 8]
    # Nothing new, nothing sent; the same stock again is no change.
    room.receive({"k": "stock", "items": {"7": 3}})
    room.receive(_purchase(6))
    await room.flush()
    assert len(writer.frames) == 1


# --- end to end: a sold-out reaches every viewer ---------------------------------------------------


async def test_sold_out_is_a_409_and_reaches_every_viewer_within_a_second(
    settings: Settings, db: Database
) -> None:
    sale = await _sale(db, stock=3)
    users = [await make_user_with_token(db, nickname=nickname) for nickname in ("王阿姨", "陈叔")]
    async with db.sessionmaker() as session:
        for user, _token in users:
            session.add(Membership(user_id=user.id, community_id=sale.community.id, source="chosen"))
        await session.commit()
    buyers = [token for _user, token in users]
    item = str(sale.item.id)
    # No stock polling here (housekeeping is off): what viewers get is what the order events pushed.
    with serve_in_thread(settings, housekeeping_seconds=3600) as server:
        url = f"{server.ws_url}/ws/live/{sale.live_session.id}"
        async with watch(url) as first, watch(url) as second:
            for viewer in (first, second):
                state = await viewer.first()
                assert state["lineup"][0]["stock_left"] == 3
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
                body = {"session_id": sale.live_session.id, "lineup_item_id": sale.item.id, "quantity": 3}
                taken = await client.post("/api/v1/orders", json=body, headers=bearer(buyers[0]))
                assert taken.status_code == 201, taken.text
                refused_at = time.monotonic()
                late = await client.post(
                    "/api/v1/orders", json={**body, "quantity": 1}, headers=bearer(buyers[1])
                )
                assert late.status_code == 409
                assert late.json()["error"] == "SoldOut"

            def sold_out(v: Any) -> bool:
                return any(m["items"].get(item) == 0 for m in v.of_type("stock"))

            await asyncio.gather(*(v.read_until(sold_out, timeout=5) for v in (first, second)))
            assert time.monotonic() - refused_at < 1.0
            # Pushed, not polled: no more than one stock message per frame.
            for viewer in (first, second):
                assert all(sum(m["type"] == "stock" for m in f["msgs"]) <= 1 for f in viewer.frames)
