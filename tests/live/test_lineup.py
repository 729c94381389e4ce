"""Lineup rules: a live-exclusive price, each product once, stock never below what is committed."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from linli.core.db import Database
from linli.core.events import Event
from linli.live.models import LineupItem, SessionStatus
from tests.factories import Caller
from tests.live.conftest import count_rows
from tests.live.factories import make_lineup_item, make_product, make_session

API = "/api/v1/admin/sessions"


async def _item(db: Database, item_id: int) -> LineupItem | None:
    async with db.sessionmaker() as session:
        return await session.get(LineupItem, item_id)


async def _event_types(db: Database) -> list[str]:
    async with db.sessionmaker() as session:
        return list((await session.scalars(select(Event.type).order_by(Event.id))).all())


class TestAdd:
    async def test_adds_at_the_end_with_its_terms(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            live_session = await make_session(session)
            first = await make_lineup_item(session, live_session=live_session, position=3)
            qingtuan = await make_product(session, name="春季限定青团", store_price_fen=3000, photo="p/q.jpg")
            await session.commit()
        response = await client.post(
            f"{API}/{live_session.id}/lineup",
            json={"product_id": qingtuan.id, "live_price_fen": 2500, "stock": 5000, "per_user_limit": 10},
            headers=operator.headers,
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert {k: body[k] for k in ("product_name", "photo_url", "store_price_fen", "live_price_fen")} == {
            "product_name": "春季限定青团",
            "photo_url": "/media/p/q.jpg",
            "store_price_fen": 3000,
            "live_price_fen": 2500,
        }
        assert (body["stock"], body["reserved"], body["sold"], body["stock_left"]) == (5000, 0, 0, 5000)
        assert body["position"] == 4
        assert body["sale_starts_at"] is None
        assert body["sale_ends_at"] is None

        lineup = (await client.get(f"{API}/{live_session.id}/lineup", headers=operator.headers)).json()
        assert [i["id"] for i in lineup] == [first.id, body["id"]]
        async with db.sessionmaker() as session:
            event = await session.scalar(select(Event).where(Event.type == "live.lineup_item_added"))
        assert event is not None
        assert (event.session_id, event.product_id) == (live_session.id, qingtuan.id)
        assert event.payload["live_price_fen"] == 2500

    async def test_a_live_price_equal_to_the_store_price_is_fine(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            live_session = await make_session(session)
            product = await make_product(session, store_price_fen=3000)
            await session.commit()
        response = await client.post(
            f"{API}/{live_session.id}/lineup",
            json={"product_id": product.id, "live_price_fen": 3000, "stock": 0},
            headers=operator.headers,
        )
        assert response.status_code == 201

    @pytest.mark.parametrize(
        ("terms", "status", "error", "needle"),
        [
            ({"live_price_fen": 3001}, 422, "LivePriceAboveStorePrice", "above 商品A's store price ¥30"),
            ({"live_price_fen": -1}, 422, "ValidationError", "live_price_fen"),
            ({"stock": -5}, 422, "ValidationError", "stock"),
            ({"per_user_limit": 0}, 422, "ValidationError", "per_user_limit"),
            ({"live_price_fen": 10**12}, 422, "ValidationError", "live_price_fen"),
            (
                {"sale_starts_at": "2026-12-01T12:00:00+08:00", "sale_ends_at": "2026-12-01T11:00:00+08:00"},
                422,
                "ValidationError",
                "end after it starts",
            ),
            ({"product_id": 999999}, 404, "ProductNotFound", "no product with id 999999"),
            ({"product_id": "ARCHIVED"}, 422, "ProductArchived", "archived"),
            ({"product_id": "TAKEN"}, 409, "ProductAlreadyInLineup", "already in this lineup"),
        ],
    )
    async def test_refused_and_nothing_written(
        self,
        client: httpx.AsyncClient,
        db: Database,
        operator: Caller,
        terms: dict[str, object],
        status: int,
        error: str,
        needle: str,
    ) -> None:
        async with db.sessionmaker() as session:
            live_session = await make_session(session)
            product = await make_product(session, name="商品A", store_price_fen=3000)
            archived = await make_product(session, archived=True)
            taken = await make_lineup_item(session, live_session=live_session)
            await session.commit()
        names = {"ARCHIVED": archived.id, "TAKEN": taken.product_id}
        payload = {"product_id": product.id, "live_price_fen": 2500, "stock": 100} | terms
        payload["product_id"] = names.get(payload["product_id"], payload["product_id"])  # type: ignore[arg-type]
        before = await count_rows(db)
        response = await client.post(
            f"{API}/{live_session.id}/lineup", json=payload, headers=operator.headers
        )
        assert response.status_code == status, response.text
        assert response.json()["error"] == error
        assert needle in response.json()["detail"]
        assert await count_rows(db) == before

    async def test_an_ended_session_lineup_is_closed(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            live_session = await make_session(session, status=SessionStatus.ended)
            product = await make_product(session)
            await session.commit()
        response = await client.post(
            f"{API}/{live_session.id}/lineup",
            json={"product_id": product.id, "live_price_fen": 100, "stock": 1},
            headers=operator.headers,
        )
        assert response.status_code == 409
        assert response.json()["error"] == "LineupClosed"


class TestUpdate:
    async def test_stock_never_below_reserved_plus_sold(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            live_session = await make_session(session, status=SessionStatus.live)
            item = await make_lineup_item(session, live_session=live_session, stock=100, reserved=30, sold=40)
            await session.commit()
        url = f"{API}/{live_session.id}/lineup/{item.id}"
        before = await count_rows(db)
        response = await client.patch(
            url, json={"stock": 69, "live_price_fen": 2000}, headers=operator.headers
        )
        assert response.status_code == 409
        assert response.json()["error"] == "StockBelowCommitted"
        assert response.json()["detail"] == (
            "stock cannot go below the 70 units already committed (30 reserved, 40 sold)"
        )
        assert await count_rows(db) == before
        row = await _item(db, item.id)
        assert row is not None
        assert (row.stock, row.live_price_fen) == (100, 2500)

        response = await client.patch(url, json={"stock": 70}, headers=operator.headers)
        assert response.status_code == 200
        assert (response.json()["stock"], response.json()["stock_left"]) == (70, 0)

    async def test_price_limit_and_window(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            live_session = await make_session(session)
            product = await make_product(session, store_price_fen=3000)
            item = await make_lineup_item(session, live_session=live_session, product=product)
            await session.commit()
        url = f"{API}/{live_session.id}/lineup/{item.id}"
        too_dear = await client.patch(url, json={"live_price_fen": 3100}, headers=operator.headers)
        assert too_dear.status_code == 422
        assert too_dear.json()["error"] == "LivePriceAboveStorePrice"

        response = await client.patch(
            url,
            json={"live_price_fen": 1990, "per_user_limit": 3, "sale_ends_at": "2026-12-01T12:00:00+08:00"},
            headers=operator.headers,
        )
        assert response.status_code == 200, response.text
        assert response.json()["sale_ends_at"] == "2026-12-01T04:00:00Z"
        # a start after the stored end is refused even though the request alone looks fine
        crossed = await client.patch(
            url, json={"sale_starts_at": "2026-12-01T13:00:00+08:00"}, headers=operator.headers
        )
        assert crossed.status_code == 422
        assert crossed.json()["error"] == "InvalidSaleWindow"
        # null reopens that end
        reopened = await client.patch(url, json={"sale_ends_at": None}, headers=operator.headers)
        assert reopened.json()["sale_ends_at"] is None
        row = await _item(db, item.id)
        assert row is not None
        assert (row.live_price_fen, row.per_user_limit) == (1990, 3)
        assert await _event_types(db) == ["live.lineup_item_updated", "live.lineup_item_updated"]

    async def test_unknown_item_is_404(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            live_session = await make_session(session)
            other = await make_session(session)
            foreign = await make_lineup_item(session, live_session=other)
            await session.commit()
        response = await client.patch(
            f"{API}/{live_session.id}/lineup/{foreign.id}", json={"stock": 1}, headers=operator.headers
        )
        assert response.status_code == 404
        assert response.json()["error"] == "LineupItemNotFound"


class TestRemoveAndReorder:
    async def test_removed_when_untouched(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            live_session = await make_session(session)
            item = await make_lineup_item(session, live_session=live_session)
            await session.commit()
        response = await client.delete(f"{API}/{live_session.id}/lineup/{item.id}", headers=operator.headers)
        assert response.json() == {"id": item.id, "outcome": "removed"}
        assert await _item(db, item.id) is None
        assert await _event_types(db) == ["live.lineup_item_removed"]

    async def test_archived_when_something_was_sold_and_can_come_back(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        async with db.sessionmaker() as session:
            live_session = await make_session(session, status=SessionStatus.live)
            item = await make_lineup_item(session, live_session=live_session, stock=10, sold=4)
            await session.commit()
        response = await client.delete(f"{API}/{live_session.id}/lineup/{item.id}", headers=operator.headers)
        assert response.json() == {"id": item.id, "outcome": "archived"}
        row = await _item(db, item.id)
        assert row is not None
        assert row.archived_at is not None
        assert row.sold == 4
        current = (await client.get(f"{API}/{live_session.id}/lineup", headers=operator.headers)).json()
        assert current == []
        everything = (
            await client.get(f"{API}/{live_session.id}/lineup?archived=true", headers=operator.headers)
        ).json()
        assert [i["id"] for i in everything] == [item.id]

        # adding the product again revives the same row; its stock still covers what was sold
        too_few = await client.post(
            f"{API}/{live_session.id}/lineup",
            json={"product_id": item.product_id, "live_price_fen": 2000, "stock": 3},
            headers=operator.headers,
        )
        assert too_few.status_code == 409
        back = await client.post(
            f"{API}/{live_session.id}/lineup",
            json={"product_id": item.product_id, "live_price_fen": 2000, "stock": 20},
            headers=operator.headers,
        )
        assert back.status_code == 201
        assert (back.json()["id"], back.json()["sold"], back.json()["stock_left"]) == (item.id, 4, 16)
        assert back.json()["archived_at"] is None

    async def test_reorder(self, client: httpx.AsyncClient, db: Database, operator: Caller) -> None:
        async with db.sessionmaker() as session:
            live_session = await make_session(session)
            a = await make_lineup_item(session, live_session=live_session, position=0)
            b = await make_lineup_item(session, live_session=live_session, position=1)
            c = await make_lineup_item(session, live_session=live_session, position=2)
            await session.commit()
        url = f"{API}/{live_session.id}/lineup/order"
        response = await client.put(url, json={"item_ids": [c.id, a.id, b.id]}, headers=operator.headers)
        assert [(i["id"], i["position"]) for i in response.json()] == [(c.id, 0), (a.id, 1), (b.id, 2)]
        for wrong in ([c.id, a.id], [a.id, a.id, b.id], [a.id, b.id, c.id, 999]):
            refused = await client.put(url, json={"item_ids": wrong}, headers=operator.headers)
            assert refused.status_code == 422
            assert refused.json()["error"] == "InvalidLineupOrder"
        lineup = (await client.get(f"{API}/{live_session.id}/lineup", headers=operator.headers)).json()
        assert [i["id"] for i in lineup] == [c.id, a.id, b.id]


class TestDatabaseInvariant:
    async def test_the_check_refuses_oversell_whatever_the_code_does(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            live_session = await make_session(session)
            item = await make_lineup_item(session, live_session=live_session, stock=10, reserved=6, sold=4)
            await session.commit()
        for values in ({"reserved": 7}, {"sold": 5}, {"stock": 9}):
            async with db.sessionmaker() as session:
                with pytest.raises(IntegrityError, match="no_oversell"):
                    await session.execute(update(LineupItem).where(LineupItem.id == item.id).values(**values))
                await session.rollback()
        async with db.sessionmaker() as session:
            session.add(
                LineupItem(
                    session_id=live_session.id,
                    product_id=(await make_product(session)).id,
                    live_price_fen=1,
                    stock=1,
                    reserved=1,
                    sold=1,
                )
            )
            with pytest.raises(IntegrityError, match="no_oversell"):
                await session.flush()
            await session.rollback()
        row = await _item(db, item.id)
        assert row is not None
        assert (row.stock, row.reserved, row.sold) == (10, 6, 4)
