"""The orders JSON API: checkout with an Idempotency-Key, my orders, someone else's order is a 404, bad
input is a 4xx that writes nothing, and the operators' search and refund."""

from __future__ import annotations

import asyncio

import httpx

from linli.core.db import Database
from linli.live.models import SessionStatus
from linli.orders import service
from tests.orders.conftest import Caller
from tests.orders.factories import Sale, count_rows, item_counts, make_sale


def _body(sale: Sale, quantity: int = 1, **fields: object) -> dict[str, object]:
    return {
        "session_id": sale.live_session.id,
        "lineup_item_id": sale.item.id,
        "quantity": quantity,
        **fields,
    }


async def _place(client: httpx.AsyncClient, caller: Caller, sale: Sale, quantity: int = 1) -> dict:
    response = await client.post("/api/v1/orders", json=_body(sale, quantity), headers=caller.headers)
    assert response.status_code == 201, response.text
    return response.json()


class TestCheckout:
    async def test_places_an_order_priced_by_the_server(
        self, client: httpx.AsyncClient, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        response = await client.post(
            "/api/v1/orders",
            json=_body(sale, 2),
            headers={**buyer.headers, "Idempotency-Key": "c0ffee-1"},
        )
        assert response.status_code == 201, response.text
        order = response.json()
        assert order["status"] == "pending_payment"
        assert (order["subtotal_fen"], order["total_fen"], order["store_total_fen"]) == (5000, 5000, 6000)
        assert order["lines"][0]["unit_price_fen"] == 2500
        assert order["pickup_point_id"] == sale.point.id
        assert await item_counts(db, sale.item.id) == (10, 2, 0)

    async def test_prices_sent_by_the_client_are_refused(
        self, client: httpx.AsyncClient, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        before = await count_rows(db)
        response = await client.post(
            "/api/v1/orders", json=_body(sale, 1, total_fen=1), headers=buyer.headers
        )
        assert response.status_code == 422
        assert await count_rows(db) == before

    async def test_a_retry_with_the_same_key_returns_the_same_order(
        self, client: httpx.AsyncClient, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        headers = {**buyer.headers, "Idempotency-Key": "tap-42"}
        responses = await asyncio.gather(
            *(client.post("/api/v1/orders", json=_body(sale, 2), headers=headers) for _ in range(3))
        )
        assert {r.status_code for r in responses} == {201}
        assert len({r.json()["id"] for r in responses}) == 1
        assert await item_counts(db, sale.item.id) == (10, 2, 0)

        other = await client.post("/api/v1/orders", json=_body(sale, 3), headers=headers)
        assert other.status_code == 409
        assert other.json()["error"] == "IdempotencyKeyReused"

    async def test_sold_out_is_a_clear_409(
        self, client: httpx.AsyncClient, db: Database, buyer: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            tiny = await make_sale(session, stock=1)
            await session.commit()
        await _place(client, buyer, tiny, 1)
        response = await client.post("/api/v1/orders", json=_body(tiny, 1), headers=buyer.headers)
        assert response.status_code == 409
        assert response.json()["error"] == "SoldOut"
        assert response.json()["context"]["left"] == 0

    async def test_bad_input_is_a_4xx_and_writes_nothing(
        self, client: httpx.AsyncClient, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        cases: list[tuple[dict[str, object], int, str]] = [
            ({"quantity": 0}, 422, "ValidationError"),
            ({"quantity": -1}, 422, "ValidationError"),
            ({"quantity": "两个"}, 422, "ValidationError"),
            ({"quantity": 6}, 409, "PurchaseLimitReached"),
            ({"lineup_item_id": 10**9}, 404, "LineupItemNotFound"),
            ({"lineup_item_id": 2**63}, 422, "ValidationError"),
            ({"session_id": 10**9}, 404, "LineupItemNotFound"),
            ({"fulfilment": "drone"}, 422, "ValidationError"),
            ({"fulfilment": "store"}, 422, "ValidationError"),
            ({"fulfilment": "store", "store_id": 10**9}, 422, "StoreUnavailable"),
            ({"pickup_point_id": 10**9}, 422, "NoPickupPoint"),
            ({"contact_phone": "12345"}, 422, "ValidationError"),
        ]
        before = await count_rows(db)
        for change, status, error in cases:
            response = await client.post(
                "/api/v1/orders", json=_body(sale, 1) | change, headers=buyer.headers
            )
            assert (response.status_code, response.json()["error"]) == (status, error), change
            assert response.json()["detail"], change
        malformed = await client.post(
            "/api/v1/orders",
            content=b"{not json",
            headers={**buyer.headers, "Content-Type": "application/json"},
        )
        assert malformed.status_code == 422
        assert await count_rows(db) == before

    async def test_an_item_of_another_session_or_not_live(
        self, client: httpx.AsyncClient, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            other = await make_sale(session)
            ended = await make_sale(session, status=SessionStatus.ended)
            await session.commit()
        before = await count_rows(db)
        response = await client.post(
            "/api/v1/orders", json=_body(sale, 1, lineup_item_id=other.item.id), headers=buyer.headers
        )
        assert response.status_code == 404
        response = await client.post("/api/v1/orders", json=_body(ended, 1), headers=buyer.headers)
        assert response.status_code == 409
        assert response.json()["error"] == "NotForSale"
        assert "ended" in response.json()["detail"]
        assert await count_rows(db) == before

    async def test_needs_a_login(self, client: httpx.AsyncClient, db: Database, sale: Sale) -> None:
        before = await count_rows(db)
        response = await client.post("/api/v1/orders", json=_body(sale, 1))
        assert response.status_code == 401
        assert await count_rows(db) == before

    async def test_the_quote(self, client: httpx.AsyncClient, sale: Sale, buyer: Caller) -> None:
        response = await client.get(
            "/api/v1/orders/quote",
            params={"session_id": sale.live_session.id, "lineup_item_id": sale.item.id, "quantity": 2},
            headers=buyer.headers,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["total_fen"], body["saving_fen"], body["max_quantity"]) == (5000, 1000, 5)


class TestMyOrders:
    async def test_list_detail_cancel(
        self, client: httpx.AsyncClient, db: Database, sale: Sale, buyer: Caller, other_buyer: Caller
    ) -> None:
        mine = await _place(client, buyer, sale, 2)
        await _place(client, other_buyer, sale, 1)

        listed = (await client.get("/api/v1/orders", headers=buyer.headers)).json()
        assert [o["id"] for o in listed["items"]] == [mine["id"]]
        assert (listed["total"], listed["page"], listed["per_page"]) == (1, 1, 20)

        detail = await client.get(f"/api/v1/orders/{mine['id']}", headers=buyer.headers)
        assert detail.status_code == 200
        assert [step["to_status"] for step in detail.json()["timeline"]] == ["pending_payment"]

        cancelled = await client.post(f"/api/v1/orders/{mine['id']}/cancel", headers=buyer.headers)
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        assert await item_counts(db, sale.item.id) == (10, 1, 0)

    async def test_someone_elses_order_is_not_found(
        self, client: httpx.AsyncClient, db: Database, sale: Sale, buyer: Caller, other_buyer: Caller
    ) -> None:
        theirs = await _place(client, other_buyer, sale, 1)
        before = await count_rows(db)
        for method, suffix in (("GET", ""), ("POST", "/cancel"), ("POST", "/refund-request")):
            response = await client.request(
                method, f"/api/v1/orders/{theirs['id']}{suffix}", headers=buyer.headers
            )
            missing = await client.request(method, f"/api/v1/orders/999999{suffix}", headers=buyer.headers)
            # Exactly what a missing order gets: nothing tells the two apart.
            assert response.status_code == missing.status_code == 404, (method, suffix)
            assert response.json()["error"] == missing.json()["error"] == "OrderNotFound"
            assert response.json()["detail"].replace(str(theirs["id"]), "999999") == missing.json()["detail"]
        assert await count_rows(db) == before

    async def test_refund_request_of_a_paid_order(
        self, client: httpx.AsyncClient, db: Database, sale: Sale, buyer: Caller
    ) -> None:
        order = await _place(client, buyer, sale, 1)
        early = await client.post(f"/api/v1/orders/{order['id']}/refund-request", headers=buyer.headers)
        assert early.status_code == 409
        async with db.sessionmaker() as session:
            await service.mark_paid(
                session, order["id"], amount_fen=2500, provider="sandbox", provider_ref="t1"
            )
            await session.commit()
        response = await client.post(
            f"/api/v1/orders/{order['id']}/refund-request", json={"reason": "临时有事"}, headers=buyer.headers
        )
        assert response.status_code == 200
        assert response.json()["status"] == "refund_requested"


class TestOperators:
    async def test_search_and_refund(
        self, client: httpx.AsyncClient, db: Database, sale: Sale, buyer: Caller, operator: Caller
    ) -> None:
        order = await _place(client, buyer, sale, 2)
        await _place(client, buyer, sale, 1)
        async with db.sessionmaker() as session:
            await service.mark_paid(
                session, order["id"], amount_fen=5000, provider="sandbox", provider_ref="t1"
            )
            await session.commit()

        found = await client.get(
            "/api/v1/admin/orders", params={"status": "paid", "q": "青团"}, headers=operator.headers
        )
        assert found.status_code == 200
        assert [o["id"] for o in found.json()["items"]] == [order["id"]]
        assert found.json()["items"][0]["payment_ref"] == "t1"
        by_phone = await client.get(
            "/api/v1/admin/orders", params={"q": buyer.user.phone[-4:]}, headers=operator.headers
        )
        assert by_phone.json()["total"] == 2
        by_session = await client.get(
            "/api/v1/admin/orders", params={"session_id": sale.live_session.id + 1}, headers=operator.headers
        )
        assert by_session.json()["total"] == 0

        refunded = await client.post(f"/api/v1/admin/orders/{order['id']}/refund", headers=operator.headers)
        assert refunded.status_code == 200
        assert refunded.json()["status"] == "refunded"
        assert await item_counts(db, sale.item.id) == (10, 1, 2)  # units stay sold

    async def test_neighbours_cannot(self, client: httpx.AsyncClient, sale: Sale, buyer: Caller) -> None:
        order = await _place(client, buyer, sale, 1)
        assert (await client.get("/api/v1/admin/orders", headers=buyer.headers)).status_code == 403
        response = await client.post(f"/api/v1/admin/orders/{order['id']}/refund", headers=buyer.headers)
        assert response.status_code == 403
