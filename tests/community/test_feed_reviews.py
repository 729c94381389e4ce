"""Testimonials: eligibility from ``order.completed``, one review per order and product, operator
approval, approved reviews rolled same-community first in the room (its footer section) and the feed."""

from __future__ import annotations

import io

import httpx
from PIL import Image
from sqlalchemy import select

from linli import community
from linli.community.feed import reviews
from linli.community.models import InboxItem
from linli.core.consumers import ConsumerRegistry, drain
from linli.core.db import Database
from linli.core.events import Subjects, record_event
from linli.core.runtime import Runtime
from linli.live.models import SessionStatus
from tests.community.feedkit import Place, make_place
from tests.factories import Caller
from tests.live.factories import make_lineup_item, make_product, make_session


async def _completed(
    db: Database, runtime: Runtime, place: Place, caller: Caller, order_id: int, product_id: int
) -> None:
    community.register_background(runtime)
    async with db.sessionmaker() as session:
        for _ in range(2):  # at least once
            record_event(
                session,
                reviews.ORDER_COMPLETED,
                subjects=Subjects(user_id=caller.user.id, community_id=place.community.id, order_id=order_id),
                payload={
                    "lines": [
                        {
                            "item_id": 1,
                            "product_id": product_id,
                            "product_name": "春季限定青团",
                            "quantity": 2,
                        }
                    ]
                },
            )
        await session.commit()
    c = runtime.consumers.consumers[reviews.CONSUMER]
    await drain(db, ConsumerRegistry({c.name: c}))


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (90, 160, 90)).save(out, "JPEG")
    return out.getvalue()


async def _review(
    client: httpx.AsyncClient,
    caller: Caller,
    order_id: int,
    product_id: int,
    text: str,
    rating: int = 5,
    photo: bool = False,
) -> httpx.Response:
    files = {"photo": ("qt.jpg", _jpeg(), "image/jpeg")} if photo else None
    return await client.post(
        "/api/v1/reviews",
        data={"order_id": str(order_id), "product_id": str(product_id), "rating": str(rating), "text": text},
        files=files,
        headers=caller.headers,
    )


class TestReviews:
    async def test_only_what_was_picked_up_once_and_shown_once_approved_same_community_first(
        self, client: httpx.AsyncClient, db: Database, runtime: Runtime, operator: Caller
    ) -> None:
        huayuan = await make_place(db, name="XX花园", nicknames=("李姐",))
        other = await make_place(db, name="香樟花园", nicknames=("赵叔",))
        async with db.sessionmaker() as session:
            product = await make_product(session, name="春季限定青团")
            await session.commit()
        li, zhao = huayuan.neighbours[0], other.neighbours[0]
        # Not picked up yet: no review.
        assert (await _review(client, li, 100, product.id, "好吃")).status_code == 403
        await _completed(db, runtime, huayuan, li, 100, product.id)
        await _completed(db, runtime, other, zhao, 200, product.id)
        async with db.sessionmaker() as session:
            invites = (
                await session.scalars(select(InboxItem).where(InboxItem.kind == "review_invite"))
            ).all()
        assert sorted(i.user_id for i in invites) == sorted([li.user.id, zhao.user.id])
        pending = await client.get("/api/v1/me/reviews/pending", headers=li.headers)
        assert [(r["order_id"], r["product_id"]) for r in pending.json()] == [(100, product.id)]
        # Someone else's order is not theirs to review; bad ratings and sensitive words are refused.
        assert (await _review(client, zhao, 100, product.id, "冒充")).status_code == 403
        assert (await _review(client, li, 100, product.id, "好吃", rating=6)).status_code == 422
        first = await _review(client, li, 100, product.id, "皮软馅足,孩子很爱吃", photo=True)
        assert first.status_code == 201, first.text
        assert first.json()["status"] == "pending"
        assert first.json()["photo_path"].startswith("reviews/")
        assert (await _review(client, li, 100, product.id, "再来一条")).status_code == 409
        assert (await _review(client, zhao, 200, product.id, "还不错", rating=4)).status_code == 201

        url = "/api/v1/reviews"
        assert (await client.get(url, params={"product_id": product.id})).json() == []  # none approved yet
        queue = (await client.get("/api/v1/admin/reviews", headers=operator.headers)).json()
        assert len(queue) == 2
        assert (
            await client.post(f"/api/v1/admin/reviews/{queue[0]['id']}/approve", headers=li.headers)
        ).status_code == 403
        for r in queue:
            assert (
                await client.post(f"/api/v1/admin/reviews/{r['id']}/approve", headers=operator.headers)
            ).status_code == 200
        as_li = (await client.get(url, params={"product_id": product.id}, headers=li.headers)).json()
        as_zhao = (await client.get(url, params={"product_id": product.id}, headers=zhao.headers)).json()
        assert [(r["who"], r["same_community"]) for r in as_li] == [
            ("XX花园的李姐", True),
            ("香樟花园的赵叔", False),
        ]
        assert [r["who"] for r in as_zhao] == ["香樟花园的赵叔", "XX花园的李姐"]
        assert as_li[0]["text"] == "皮软馅足,孩子很爱吃"
        # The feed of 李姐's community shows them too.
        page = await client.get(f"/c/{huayuan.community.id}", headers={**li.headers, "accept": "text/html"})
        assert "XX花园的李姐" in page.text

    async def test_the_room_page_carries_the_testimonials_module(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        place = await make_place(db)
        async with db.sessionmaker() as session:
            live_session = await make_session(session, status=SessionStatus.scheduled)
            item = await make_lineup_item(session, live_session=live_session)
            await session.commit()
        page = await client.get(
            f"/live/{live_session.id}", headers={**place.neighbours[0].headers, "accept": "text/html"}
        )
        assert page.status_code == 200
        assert 'data-testid="live-testimonials"' in page.text
        assert "/static/js/live/testimonials.js" in page.text
        assert f"&#34;{item.id}&#34;: {item.product_id}" in page.text
        assert f"&#34;community_id&#34;: {place.community.id}" in page.text
