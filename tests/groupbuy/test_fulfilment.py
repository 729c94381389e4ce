"""Fulfilment through the JSON API: batches dispatched and delivered, pickup codes verified by the right
leader only (wrong codes rate-limited, partial pickups), pick-list totals, the board, membership."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from linli.community.models import InboxItem, Membership
from linli.core.clock import utcnow
from linli.core.db import Database
from linli.groupbuy import events, fulfilment, pickup
from linli.groupbuy.models import PickupCode
from linli.orders.models import Order, OrderLine, OrderStatus
from tests.factories import Caller
from tests.groupbuy.factories import Town, make_town

ADMIN = "/api/v1/admin/groupbuy"


async def _code(town: Town, order_id: int) -> str:
    async with town.db.sessionmaker() as session:
        row = await session.get(PickupCode, order_id)
    assert row is not None
    return row.code


async def _deliver(town: Town, client: httpx.AsyncClient, hood: int = 0) -> int:
    """Cutoff, a batch of the hood's group, dispatched and arrived; returns the batch id."""
    await town.drain()
    await town.close()
    group = await town.group(hood)
    assert group is not None
    created = await client.post(
        f"{ADMIN}/sessions/{town.session_id}/batches",
        json={"group_order_ids": [group.id], "note": "司机老张 沪A12345 徐汇线"},
        headers=town.operator.headers,
    )
    assert created.status_code == 201, created.text
    batch_id = int(created.json()["id"])
    for step in ("dispatch", "arrive"):
        response = await client.post(f"{ADMIN}/batches/{batch_id}/{step}", headers=town.operator.headers)
        assert response.status_code == 200, response.text
    return batch_id


def _verify(client: httpx.AsyncClient, who: Caller, **body: object):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/leader/pickups/verify", json=body, headers=who.headers)


class TestBatches:
    async def test_dispatch_and_arrival_move_groups_and_tell_buyers(
        self, town: Town, client: httpx.AsyncClient
    ) -> None:
        buyer = await town.neighbour()
        order = await town.buy(buyer, 2)
        # A group still collecting cannot be batched.
        await town.drain()
        group = await town.group()
        assert group is not None
        early = await client.post(
            f"{ADMIN}/sessions/{town.session_id}/batches",
            json={"group_order_ids": [group.id]},
            headers=town.operator.headers,
        )
        assert early.status_code == 422
        assert early.json()["error"] == "InvalidBatch"
        batch_id = await _deliver(town, client)
        group = await town.group()
        assert group is not None
        assert group.state == "delivered"
        assert group.batch_id == batch_id
        assert [e.payload["pickup_point_id"] for e in await town.events(events.DELIVERED)] == [
            town.hoods[0].point.id
        ]
        assert len(await town.events(events.DISPATCHED)) == 1
        async with town.db.sessionmaker() as session:
            items = (await session.scalars(select(InboxItem).where(InboxItem.user_id == buyer.user.id))).all()
        assert "已送达自提点,凭取货码取货" in [i.title for i in items]
        status = await client.get(f"/api/v1/groupbuy/orders/{order.id}", headers=buyer.headers)
        body = status.json()
        assert body["message"] == "已送达自提点,凭取货码取货"
        assert [s["done"] for s in body["steps"]] == [True, True, True, True, False]
        assert body["code"] == await _code(town, order.id)
        # Confirming arrival twice changes nothing; dispatching an arrived batch is refused.
        again = await client.post(f"{ADMIN}/batches/{batch_id}/arrive", headers=town.operator.headers)
        assert again.status_code == 200
        assert len(await town.events(events.DELIVERED)) == 1
        back = await client.post(f"{ADMIN}/batches/{batch_id}/dispatch", headers=town.operator.headers)
        assert back.status_code == 409

    async def test_a_batch_past_the_promise_is_flagged_late_on_the_board(
        self, town: Town, client: httpx.AsyncClient
    ) -> None:
        await town.settings(deliver_by=(utcnow() + timedelta(minutes=5)).isoformat())
        await town.buy(await town.neighbour())
        await town.drain()
        await town.close()
        group = await town.group()
        assert group is not None
        created = await client.post(
            f"{ADMIN}/sessions/{town.session_id}/batches",
            json={"group_order_ids": [group.id]},
            headers=town.operator.headers,
        )
        batch_id = created.json()["id"]
        assert created.json()["late"] is False
        async with town.db.sessionmaker() as session:
            found = await fulfilment.board(session, town.session_id, now=utcnow() + timedelta(minutes=6))
        assert found.late_batch_ids == {batch_id}
        assert "late" in found.rows[0].exceptions

    async def test_only_operators_run_batches(self, town: Town, client: httpx.AsyncClient) -> None:
        buyer = await town.neighbour()
        response = await client.get(f"{ADMIN}/sessions/{town.session_id}/board", headers=buyer.headers)
        assert response.status_code == 403
        leader = town.hoods[0].leader
        response = await client.post(f"{ADMIN}/sessions/{town.session_id}/cutoff", headers=leader.headers)
        assert response.status_code == 403


class TestPickup:
    async def test_the_right_leader_verifies_partially_then_completes(
        self, town: Town, client: httpx.AsyncClient
    ) -> None:
        buyer = await town.neighbour()
        order = await town.buy(buyer, 3)
        await _deliver(town, client)
        code = await _code(town, order.id)
        leader = town.hoods[0].leader
        first = await _verify(client, leader, code=code, units=1)
        assert first.status_code == 200, first.text
        assert (first.json()["units_picked"], first.json()["units_left"], first.json()["completed"]) == (
            1,
            2,
            False,
        )
        assert first.json()["buyer"] == "王*"
        too_many = await _verify(client, leader, code=code, units=3)
        assert too_many.status_code == 422
        assert too_many.json()["error"] == "TooManyUnits"
        rest = await _verify(client, leader, code=code)
        assert rest.json()["units_left"] == 0
        assert rest.json()["completed"] is True
        assert (await town.reload(order)).status == OrderStatus.completed
        verified = await town.events(events.PICKUP_VERIFIED)
        assert [(e.payload["units_picked"], e.payload["units_left"]) for e in verified] == [(1, 2), (2, 0)]
        assert len(await town.events("order.completed")) == 1
        # The code is closed now: using it again is a wrong code.
        again = await _verify(client, leader, code=code)
        assert again.status_code == 404
        assert again.json()["error"] == "WrongPickupCode"

    async def test_another_points_leader_cannot_verify(self, town: Town, client: httpx.AsyncClient) -> None:
        order = await town.buy(await town.neighbour(), 1)
        await _deliver(town, client)
        code = await _code(town, order.id)
        other = town.hoods[1].leader
        # At their own point the code does not exist; at ours they are refused.
        at_theirs = await _verify(client, other, code=code)
        assert at_theirs.status_code == 404
        at_ours = await _verify(client, other, code=code, pickup_point_id=town.hoods[0].point.id)
        assert at_ours.status_code == 403
        assert at_ours.json()["error"] == "NotYourPickupPoint"
        neighbour = await town.neighbour()
        assert (await _verify(client, neighbour, code=code)).status_code == 403
        assert (await town.reload(order)).status == OrderStatus.paid
        listing = await client.get(
            f"/api/v1/leader/points/{town.hoods[0].point.id}/orders", headers=other.headers
        )
        assert listing.status_code == 403

    async def test_wrong_codes_are_rate_limited_per_leader(
        self, town: Town, client: httpx.AsyncClient
    ) -> None:
        order = await town.buy(await town.neighbour(), 1)
        await _deliver(town, client)
        code = await _code(town, order.id)
        leader = town.hoods[0].leader
        wrong = "000000" if code != "000000" else "111111"
        for attempt in [wrong, wrong, "12ab", wrong, wrong]:
            response = await _verify(client, leader, code=attempt)
            assert response.status_code == 404, response.text
        blocked = await _verify(client, leader, code=code)
        assert blocked.status_code == 429
        assert blocked.json()["error"] == "TooManyRequests"
        assert (await town.reload(order)).status == OrderStatus.paid
        # Another leader is not blocked by this one's tries.
        other = await _verify(client, town.hoods[1].leader, code=wrong)
        assert other.status_code == 404

    async def test_not_before_the_delivery_arrived(self, town: Town, client: httpx.AsyncClient) -> None:
        order = await town.buy(await town.neighbour(), 1)
        await town.drain()
        response = await _verify(client, town.hoods[0].leader, code=await _code(town, order.id))
        assert response.status_code == 409
        assert response.json()["error"] == "NotReadyForPickup"

    async def test_a_fee_due_is_collected_at_pickup(self, town: Town, client: httpx.AsyncClient) -> None:
        await town.settings(threshold=9, below_policy="deliver", delivery_fee_fen=400, collect_fee=True)
        order = await town.buy(await town.neighbour(), 1)
        await _deliver(town, client)
        listing = await client.get(
            f"/api/v1/leader/points/{town.hoods[0].point.id}/orders", headers=town.hoods[0].leader.headers
        )
        assert listing.json()[0]["fee_due_fen"] == 400
        assert listing.json()[0]["ready"] is True
        response = await _verify(client, town.hoods[0].leader, code=await _code(town, order.id))
        assert response.json()["fee_collected_fen"] == 400
        assert len(await town.events(events.FEE_COLLECTED)) == 1

    async def test_codes_are_unique_among_open_codes_at_a_point(
        self, town: Town, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A tiny code space, so draws collide and are drawn again; a closed code may be reused.
        draws = iter([f"{n % 7:06d}" for n in range(400)])
        monkeypatch.setattr(pickup, "_new_code", lambda: next(draws))
        orders = [await town.buy(b) for b in await town.neighbours(7)]
        await town.drain()
        async with town.db.sessionmaker() as session:
            codes = [(await session.get(PickupCode, o.id)) for o in orders]
        values = [c.code for c in codes if c is not None]
        assert len(values) == 7
        assert len(set(values)) == 7
        assert all(len(v) == 6 and v.isdigit() for v in values)

    async def test_the_order_owner_alone_sees_the_code_and_qr(
        self, town: Town, client: httpx.AsyncClient
    ) -> None:
        buyer, other = await town.neighbour(), await town.neighbour()
        order = await town.buy(buyer, 1)
        await town.drain()
        mine = await client.get(f"/api/v1/groupbuy/orders/{order.id}", headers=buyer.headers)
        assert mine.json()["message"] == "已付款,等待本社区集满50份(已集1份,还差49份)"
        qr = await client.get(f"/api/v1/groupbuy/orders/{order.id}/qr.svg", headers=buyer.headers)
        assert qr.status_code == 200
        assert qr.headers["content-type"] == "image/svg+xml"
        assert qr.text.startswith("<svg")
        assert "path" in qr.text
        assert (
            await client.get(f"/api/v1/groupbuy/orders/{order.id}", headers=other.headers)
        ).status_code == 404
        assert (
            await client.get(f"/api/v1/groupbuy/orders/{order.id}/qr.svg", headers=other.headers)
        ).status_code == 404


async def _expected(db: Database, session_id: int) -> dict[tuple[str, int, int], int]:
    async with db.sessionmaker() as session:
        rows = (
            await session.execute(
                select(
                    Order.fulfilment,
                    Order.pickup_point_id,
                    Order.store_id,
                    OrderLine.product_id,
                    OrderLine.quantity,
                )
                .join(OrderLine, OrderLine.order_id == Order.id)
                .where(Order.session_id == session_id, Order.status.in_(("paid", "completed")))
            )
        ).all()
    total: dict[tuple[str, int, int], int] = {}
    for fulfilment_, point_id, store_id, product_id, quantity in rows:
        key = ("point", point_id, product_id) if fulfilment_ == "pickup" else ("store", store_id, product_id)
        total[key] = total.get(key, 0) + quantity
    return total


class TestPickList:
    @settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        buys=st.lists(
            st.tuples(
                st.integers(0, 1),
                st.integers(1, 5),
                st.booleans(),
                st.sampled_from(["pay", "refund", "unpaid"]),
            ),
            min_size=1,
            max_size=8,
        )
    )
    async def test_totals_equal_the_sum_of_paid_orders(
        self, db: Database, buys: list[tuple[int, int, bool, str]]
    ) -> None:
        town = await make_town(db)
        for hood, quantity, at_store, fate in buys:
            buyer = await town.neighbour(hood)
            fields = {"fulfilment": "store", "store_id": town.store.id} if at_store else {}
            order = await town.order(buyer, quantity, **fields)
            if fate != "unpaid":
                order = await town.pay(order)
            if fate == "refund":
                await town.refund(order)
        async with db.sessionmaker() as session:
            picks = await fulfilment.pick_list(session, town.session_id)
        got = {(p.kind, p.id, sku[0]): units for p in picks.places for sku, units in p.lines.items()}
        assert got == await _expected(db, town.session_id)
        points_total = sum(u for (kind, _, _), u in got.items() if kind == "point")
        assert sum(picks.warehouse.values()) == points_total
        text = fulfilment.pick_list_csv(picks)
        assert text.splitlines()[0].startswith("place_kind,place_id")

    async def test_csv_and_json_agree(self, town: Town, client: httpx.AsyncClient) -> None:
        await town.buy(await town.neighbour(0), 3)
        await town.buy(await town.neighbour(1), 2)
        body = (
            await client.get(f"{ADMIN}/sessions/{town.session_id}/pick-list", headers=town.operator.headers)
        ).json()
        assert body["warehouse"] == [
            {"product_id": town.sale.item.product_id, "product_name": "春季限定青团", "units": 5}
        ]
        assert [p["total"] for p in body["places"]] == [2, 3] or [p["total"] for p in body["places"]] == [
            3,
            2,
        ]
        csv = await client.get(
            f"{ADMIN}/sessions/{town.session_id}/pick-list.csv", headers=town.operator.headers
        )
        assert csv.headers["content-type"].startswith("text/csv")
        assert "春季限定青团" in csv.text
        assert csv.text.count("\n") == 4


class TestMembership:
    async def test_joining_by_link_or_invite_never_moves_paid_orders(
        self, town: Town, client: httpx.AsyncClient
    ) -> None:
        buyer = await town.neighbour(0)
        order = await town.buy(buyer, 2)
        await town.drain()
        inviter = await town.neighbour(1, nickname="李叔")
        moved = await client.post(
            f"/api/v1/groupbuy/communities/{town.hoods[1].community.id}/join",
            json={"inviter_id": inviter.user.id},
            headers=buyer.headers,
        )
        assert moved.status_code == 200, moved.text
        assert moved.json() == {
            "community_id": town.hoods[1].community.id,
            "community_name": "阳光花园",
            "source": "invited",
        }
        assert (await town.reload(order)).community_id == town.hoods[0].community.id
        assert (await town.group(0)).units == 2  # type: ignore[union-attr]
        async with town.db.sessionmaker() as session:
            membership = await session.get(Membership, buyer.user.id)
        assert membership is not None
        assert membership.community_id == town.hoods[1].community.id
        members = await client.get(
            f"/api/v1/leader/points/{town.hoods[1].point.id}/members", headers=town.hoods[1].leader.headers
        )
        assert sorted(m["name"] for m in members.json()) == ["李*", "王*"]
        refused = await client.get(
            f"/api/v1/leader/points/{town.hoods[1].point.id}/members", headers=town.hoods[0].leader.headers
        )
        assert refused.status_code == 403
        unknown = await client.post("/api/v1/groupbuy/communities/999999/join", headers=buyer.headers)
        assert unknown.status_code == 404


@pytest.mark.parametrize(
    "body", [{"threshold": 0}, {"below_policy": "pray"}, {"delivery_fee_fen": -1}, {"x": 1}]
)
async def test_bad_settings_are_422_and_change_nothing(
    town: Town, client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await client.put(
        f"{ADMIN}/sessions/{town.session_id}/settings", json=body, headers=town.operator.headers
    )
    assert response.status_code == 422
    assert set(response.json()) >= {"error", "detail"}
    terms = (await client.get(f"/api/v1/groupbuy/sessions/{town.session_id}/terms")).json()
    assert terms["threshold"] == 50
    assert terms["below_policy"] == "deliver"
