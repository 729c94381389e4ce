"""The operators' order pages: search by order number, phone, status and session; the order with its
timeline and payment; the refund with a reason, which changes the order once however often it is sent;
neighbours and hosts get the 403 page, visitors the login page."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from linli.core.db import Database
from linli.core.events import Event
from linli.identity.models import Role
from linli.orders import service
from linli.orders.models import Order, OrderStatusChange
from tests.factories import make_user_with_token
from tests.orders.conftest import Caller
from tests.orders.factories import Sale

HTML = {"Accept": "text/html"}


async def _order(db: Database, caller: Caller, sale: Sale, quantity: int = 1, *, paid: bool = False) -> int:
    async with db.sessionmaker() as session:
        order = await service.create_order(session, caller.user, sale.order(quantity))
        await session.flush()
        if paid:
            await service.mark_paid(
                session,
                order.id,
                amount_fen=order.total_fen,
                provider="sandbox",
                provider_ref=f"pay-{order.id}",
            )
        await session.commit()
        return order.id


async def _state(db: Database, order_id: int) -> tuple[str, int, int]:
    """(status, timeline steps, order.refunded events)."""
    async with db.sessionmaker() as session:
        order = await session.get(Order, order_id)
        assert order is not None
        steps = await session.scalar(
            select(func.count()).select_from(OrderStatusChange).where(OrderStatusChange.order_id == order_id)
        )
        refunded = await session.scalar(
            select(func.count()).select_from(Event).where(Event.type == "order.refunded")
        )
        return order.status, steps or 0, refunded or 0


def _ids(html: str) -> set[int]:
    import re

    return {int(m) for m in re.findall(r'data-testid="admin-order-(\d+)"', html)}


async def test_operator_searches_orders(
    client: httpx.AsyncClient, db: Database, sale: Sale, buyer: Caller, other_buyer: Caller, operator: Caller
) -> None:
    mine = await _order(db, buyer, sale, 2, paid=True)
    pending = await _order(db, buyer, sale, 1)
    theirs = await _order(db, other_buyer, sale, 1, paid=True)
    headers = {**operator.headers, **HTML}

    everything = await client.get("/admin/orders", headers=headers)
    assert everything.status_code == 200
    assert _ids(everything.text) == {mine, pending, theirs}
    assert 'href="/admin/orders"' in everything.text  # in the admin menu
    assert "春季限定青团 × 2" in everything.text

    by_number = await client.get("/admin/orders", params={"order": str(theirs)}, headers=headers)
    assert by_number.status_code == 303
    assert by_number.headers["location"] == f"/admin/orders/{theirs}"
    no_such = await client.get("/admin/orders", params={"order": "999999"}, headers=headers)
    assert no_such.status_code == 200
    assert _ids(no_such.text) == set()
    by_phone = await client.get("/admin/orders", params={"q": buyer.user.phone}, headers=headers)
    assert _ids(by_phone.text) == {mine, pending}
    by_status = await client.get("/admin/orders", params={"status": "paid"}, headers=headers)
    assert _ids(by_status.text) == {mine, theirs}
    both = await client.get(
        "/admin/orders", params={"status": "paid", "q": buyer.user.phone}, headers=headers
    )
    assert _ids(both.text) == {mine}
    same_session = await client.get(
        "/admin/orders", params={"session_id": str(sale.live_session.id)}, headers=headers
    )
    assert _ids(same_session.text) == {mine, pending, theirs}
    other_session = await client.get(
        "/admin/orders", params={"session_id": str(sale.live_session.id + 1000)}, headers=headers
    )
    assert _ids(other_session.text) == set()
    assert 'data-testid="no-orders"' in other_session.text
    # Nonsense filters are no filters, never a 500.
    odd = await client.get("/admin/orders", params={"status": "bogus", "session_id": "x"}, headers=headers)
    assert odd.status_code == 200
    assert _ids(odd.text) == {mine, pending, theirs}

    english = await client.get("/admin/orders?lang=en", headers=headers)
    assert "Order search" in english.text
    assert "Awaiting payment" in english.text


async def test_order_detail_and_refund_once(
    client: httpx.AsyncClient, db: Database, sale: Sale, buyer: Caller, operator: Caller
) -> None:
    order_id = await _order(db, buyer, sale, 2, paid=True)
    headers = {**operator.headers, **HTML}
    page = await client.get(f"/admin/orders/{order_id}", headers=headers)
    assert page.status_code == 200
    assert 'data-testid="order-timeline"' in page.text
    assert page.text.count('data-testid="timeline-step"') == 2  # placed, paid
    assert f"pay-{order_id}" in page.text  # the payment reference
    assert 'data-testid="refund-form"' in page.text
    before = await _state(db, order_id)
    assert before[0] == "paid"

    blank = await client.post(f"/admin/orders/{order_id}/refund", data={"reason": "  "}, headers=headers)
    assert blank.status_code == 422
    assert "请填写退款原因" in blank.text
    assert await _state(db, order_id) == before

    done = await client.post(
        f"/admin/orders/{order_id}/refund", data={"reason": "顾客临时出差无法自提"}, headers=headers
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/admin/orders/{order_id}"
    status, steps, refunded = await _state(db, order_id)
    assert (status, refunded) == ("refunded", 1)
    shown = await client.get(f"/admin/orders/{order_id}", headers=headers)
    assert f"订单 {order_id} 已退款" in shown.text
    assert "顾客临时出差无法自提" in shown.text  # the reason on the timeline
    assert 'data-testid="refund-form"' not in shown.text

    again = await client.post(
        f"/admin/orders/{order_id}/refund", data={"reason": "再退一次"}, headers=headers
    )
    assert again.status_code == 303
    assert await _state(db, order_id) == (status, steps, refunded)
    assert "已退款，无需重复操作" in (await client.get(f"/admin/orders/{order_id}", headers=headers)).text


async def test_an_unpaid_order_cannot_be_refunded(
    client: httpx.AsyncClient, db: Database, sale: Sale, buyer: Caller, operator: Caller
) -> None:
    order_id = await _order(db, buyer, sale, 1)
    headers = {**operator.headers, **HTML}
    assert (
        'data-testid="refund-form"'
        not in (await client.get(f"/admin/orders/{order_id}", headers=headers)).text
    )
    before = await _state(db, order_id)
    response = await client.post(f"/admin/orders/{order_id}/refund", data={"reason": "试试"}, headers=headers)
    assert response.status_code == 303
    assert await _state(db, order_id) == before
    shown = await client.get(f"/admin/orders/{order_id}", headers=headers)
    assert "订单当前状态不能进行此操作" in shown.text
    missing = await client.get("/admin/orders/999999", headers=headers)
    assert missing.status_code == 404


@pytest.mark.parametrize("role", [None, Role.host])
async def test_neighbours_and_hosts_are_refused(
    client: httpx.AsyncClient, db: Database, sale: Sale, buyer: Caller, role: Role | None
) -> None:
    order_id = await _order(db, buyer, sale, 1, paid=True)
    user, token = await make_user_with_token(db, roles=(role,) if role else ())
    headers = {**Caller(user, token).headers, **HTML}
    assert (await client.get("/admin/orders", headers=headers)).status_code == 403
    assert (await client.get(f"/admin/orders/{order_id}", headers=headers)).status_code == 403
    refused = await client.post(f"/admin/orders/{order_id}/refund", data={"reason": "x"}, headers=headers)
    assert refused.status_code == 403
    own = await client.post(
        f"/admin/orders/{order_id}/refund", data={"reason": "x"}, headers={**buyer.headers, **HTML}
    )
    assert own.status_code == 403
    assert (await _state(db, order_id))[0] == "paid"
    visitor = await client.get("/admin/orders", headers=HTML)
    assert visitor.status_code in (302, 303)
    assert visitor.headers["location"].startswith("/login?next=")
