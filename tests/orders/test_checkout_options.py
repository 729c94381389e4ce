"""What the checkout sheet prefills (GET /api/v1/orders/checkout-options): the neighbour's phone, their
community's open pickup points (the default first) and the open stores; and the quote's bounds the
sheet's quantity stepper follows."""

from __future__ import annotations

import httpx

from linli.core.db import Database
from tests.community.factories import make_pickup_point, make_store
from tests.factories import bearer, make_user_with_token
from tests.orders.conftest import Caller
from tests.orders.factories import Sale


async def test_a_member_gets_their_points_and_the_open_stores(
    client: httpx.AsyncClient, db: Database, sale: Sale, buyer: Caller
) -> None:
    async with db.sessionmaker() as session:
        await make_pickup_point(session, community=sale.community, name="已关闭的点", archived=True)
        await make_store(session, name="人民广场店")
        await make_store(session, name="已关的店", archived=True)
        await session.commit()
    response = await client.get("/api/v1/orders/checkout-options", headers=buyer.headers)
    assert response.status_code == 200, response.text
    options = response.json()
    assert options["contact_phone"] == buyer.user.phone
    assert options["community_name"] == "梧桐苑"
    assert [p["id"] for p in options["pickup_points"]] == [sale.point.id]
    assert [s["name"] for s in options["stores"]] == ["人民广场店"]


async def test_a_neighbour_without_a_community_gets_stores_only(
    client: httpx.AsyncClient, db: Database, sale: Sale
) -> None:
    _user, token = await make_user_with_token(db, nickname="新邻居")
    response = await client.get("/api/v1/orders/checkout-options", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["community_id"] is None
    assert response.json()["pickup_points"] == []


async def test_options_need_a_login(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/orders/checkout-options")
    assert response.status_code == 401


async def test_the_quote_bounds_the_stepper_by_limit_less_earlier_orders(
    client: httpx.AsyncClient, sale: Sale, buyer: Caller
) -> None:
    body = {"session_id": sale.live_session.id, "lineup_item_id": sale.item.id, "quantity": 2}
    placed = await client.post("/api/v1/orders", json=body, headers=buyer.headers)
    assert placed.status_code == 201, placed.text
    params = {"session_id": sale.live_session.id, "lineup_item_id": sale.item.id}
    quote = (await client.get("/api/v1/orders/quote", params=params, headers=buyer.headers)).json()
    # Limit 5, 2 already ordered in this session; 8 of 10 left.
    assert (quote["per_user_limit"], quote["held"], quote["stock_left"], quote["max_quantity"]) == (
        5,
        2,
        8,
        3,
    )
