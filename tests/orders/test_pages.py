"""The neighbour's order pages: my orders, the order with its timeline, cancel from the page; someone else's
order is a 404 page and visitors are sent to log in."""

from __future__ import annotations

import httpx

from linli.core.db import Database
from linli.orders import service
from tests.orders.conftest import Caller
from tests.orders.factories import Sale, item_counts

HTML = {"Accept": "text/html"}


async def _order(db: Database, caller: Caller, sale: Sale, quantity: int = 2) -> int:
    async with db.sessionmaker() as session:
        order = await service.create_order(session, caller.user, sale.order(quantity))
        await session.commit()
    return order.id


async def test_my_orders_and_the_timeline(
    client: httpx.AsyncClient, db: Database, sale: Sale, buyer: Caller
) -> None:
    order_id = await _order(db, buyer, sale)
    headers = {**buyer.headers, **HTML}
    page = await client.get("/orders", headers=headers)
    assert page.status_code == 200
    assert f'data-testid="order-{order_id}"' in page.text
    assert "春季限定青团 × 2" in page.text
    assert "待支付" in page.text

    detail = await client.get(f"/orders/{order_id}", headers=headers)
    assert detail.status_code == 200
    assert 'data-testid="order-timeline"' in detail.text
    assert "¥50" in detail.text
    assert "比门店价省 ¥10" in detail.text
    assert sale.point.name in detail.text
    assert 'data-testid="cancel-order"' in detail.text

    english = await client.get(f"/orders/{order_id}?lang=en", headers=headers)
    assert "Awaiting payment" in english.text


async def test_cancel_from_the_page(
    client: httpx.AsyncClient, db: Database, sale: Sale, buyer: Caller
) -> None:
    order_id = await _order(db, buyer, sale)
    headers = {**buyer.headers, **HTML}
    response = await client.post(f"/orders/{order_id}/cancel", headers=headers)
    assert response.status_code == 303
    assert response.headers["location"] == f"/orders/{order_id}"
    assert await item_counts(db, sale.item.id) == (10, 0, 0)
    detail = await client.get(f"/orders/{order_id}", headers=headers)
    assert "已取消" in detail.text
    assert 'data-testid="cancel-order"' not in detail.text


async def test_a_refused_action_shows_why(
    client: httpx.AsyncClient, db: Database, sale: Sale, buyer: Caller
) -> None:
    order_id = await _order(db, buyer, sale)
    headers = {**buyer.headers, **HTML}
    response = await client.post(f"/orders/{order_id}/refund-request", headers=headers)
    assert response.status_code == 409
    assert 'data-testid="order-error"' in response.text


async def test_someone_elses_order_is_a_404_page(
    client: httpx.AsyncClient, db: Database, sale: Sale, buyer: Caller, other_buyer: Caller
) -> None:
    order_id = await _order(db, other_buyer, sale)
    headers = {**buyer.headers, **HTML}
    assert (await client.get(f"/orders/{order_id}", headers=headers)).status_code == 404
    assert (await client.post(f"/orders/{order_id}/cancel", headers=headers)).status_code == 404
    assert await item_counts(db, sale.item.id) == (10, 2, 0)


async def test_visitors_log_in_first(client: httpx.AsyncClient) -> None:
    response = await client.get("/orders", headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
