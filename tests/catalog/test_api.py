"""The operator's product API and the neighbours' product read, on both databases."""

from __future__ import annotations

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select

from linli.catalog import api as catalog_api
from linli.catalog.models import Product, ProductImage
from linli.catalog.schemas import ProductCreate
from linli.catalog.service import create_product
from linli.core.db import Database
from linli.core.events import Event
from tests.catalog.factories import count_rows, make_product
from tests.factories import Caller

ADMIN = "/api/v1/admin/products"
QINGTUAN = {
    "name": "  春季限定青团  ",
    "description": "艾草汁和面,豆沙馅",
    "store_price_fen": 3000,
    "storage_note": "冷藏 0–4℃",
    "shelf_life_note": "冷藏 2 天",
}


async def events_of(db: Database, type_: str) -> list[Event]:
    async with db.sessionmaker() as session:
        return list(
            (await session.scalars(select(Event).where(Event.type == type_).order_by(Event.id))).all()
        )


class TestCrud:
    async def test_create_get_update_round_trip(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        created = await client.post(ADMIN, json=QINGTUAN, headers=operator.headers)
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["name"] == "春季限定青团"  # trimmed
        assert body["store_price_fen"] == 3000
        assert body["images"] == []
        assert body["cover_url"] is None
        assert body["archived_at"] is None

        fetched = await client.get(f"{ADMIN}/{body['id']}", headers=operator.headers)
        assert fetched.json() == body

        patched = await client.patch(
            f"{ADMIN}/{body['id']}", json={"store_price_fen": 2800}, headers=operator.headers
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["store_price_fen"] == 2800
        assert patched.json()["name"] == "春季限定青团"  # untouched fields stay

        async with db.sessionmaker() as session:
            product = await session.get(Product, body["id"])
            assert product is not None
            assert product.store_price_fen == 2800
        [created_event] = await events_of(db, "catalog.product_created")
        assert created_event.product_id == body["id"]
        assert created_event.actor_id == operator.user.id
        assert created_event.payload == {"name": "春季限定青团", "store_price_fen": 3000}
        [updated_event] = await events_of(db, "catalog.product_updated")
        assert updated_event.payload == {"changes": {"store_price_fen": 2800}}

    async def test_update_without_change_records_nothing(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        product = (await client.post(ADMIN, json=QINGTUAN, headers=operator.headers)).json()
        response = await client.patch(
            f"{ADMIN}/{product['id']}", json={"store_price_fen": 3000}, headers=operator.headers
        )
        assert response.status_code == 200
        assert await events_of(db, "catalog.product_updated") == []

    async def test_unknown_product_is_404_with_message(
        self, client: httpx.AsyncClient, operator: Caller
    ) -> None:
        response = await client.patch(f"{ADMIN}/999", json={"name": "x"}, headers=operator.headers)
        assert response.status_code == 404
        assert response.json() == {"error": "ProductNotFound", "detail": "product 999 does not exist"}

    async def test_archive_hides_from_neighbours_and_default_list(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        product = (await client.post(ADMIN, json=QINGTUAN, headers=operator.headers)).json()
        public = await client.get(f"/api/v1/products/{product['id']}")
        assert public.status_code == 200
        assert public.json()["name"] == "春季限定青团"
        assert "archived_at" not in public.json()

        archived = await client.post(f"{ADMIN}/{product['id']}/archive", headers=operator.headers)
        assert archived.status_code == 200
        assert archived.json()["archived_at"] is not None
        # Archiving twice changes nothing and records nothing more.
        await client.post(f"{ADMIN}/{product['id']}/archive", headers=operator.headers)
        assert len(await events_of(db, "catalog.product_archived")) == 1

        gone = await client.get(f"/api/v1/products/{product['id']}")
        assert gone.status_code == 404
        assert gone.json()["error"] == "ProductNotFound"
        listed = (await client.get(ADMIN, headers=operator.headers)).json()
        assert listed["total"] == 0
        assert listed["items"] == []
        with_archived = (
            await client.get(ADMIN, params={"include_archived": True}, headers=operator.headers)
        ).json()
        assert [p["id"] for p in with_archived["items"]] == [product["id"]]
        # The operator can still open it, and bring it back.
        assert (await client.get(f"{ADMIN}/{product['id']}", headers=operator.headers)).status_code == 200
        restored = await client.post(f"{ADMIN}/{product['id']}/unarchive", headers=operator.headers)
        assert restored.json()["archived_at"] is None
        assert (await client.get(f"/api/v1/products/{product['id']}")).status_code == 200
        assert len(await events_of(db, "catalog.product_unarchived")) == 1


class TestList:
    async def test_pages_and_search(self, client: httpx.AsyncClient, db: Database, operator: Caller) -> None:
        async with db.sessionmaker() as session:
            for i in range(25):
                await make_product(session, name=f"欧包 {i:02d}")
            await make_product(session, name="春季限定青团")
            await make_product(session, name="Matcha 50%_roll")
            await make_product(session, name="青团(旧款)", archived=True)
            await session.commit()

        first = (await client.get(ADMIN, params={"limit": 10}, headers=operator.headers)).json()
        assert first["total"] == 27
        assert len(first["items"]) == 10
        assert first["offset"] == 0
        # Newest first.
        assert first["items"][0]["name"] == "Matcha 50%_roll"
        seen = []
        for offset in (0, 10, 20):
            page = (
                await client.get(ADMIN, params={"limit": 10, "offset": offset}, headers=operator.headers)
            ).json()
            seen += [p["id"] for p in page["items"]]
        assert len(seen) == 27 == len(set(seen))

        found = (await client.get(ADMIN, params={"q": "青团"}, headers=operator.headers)).json()
        assert [p["name"] for p in found["items"]] == ["春季限定青团"]
        found = (
            await client.get(ADMIN, params={"q": "青团", "include_archived": True}, headers=operator.headers)
        ).json()
        assert sorted(p["name"] for p in found["items"]) == ["春季限定青团", "青团(旧款)"]
        # Case-insensitive, and % / _ are literal characters, not wildcards.
        assert (await client.get(ADMIN, params={"q": "matcha"}, headers=operator.headers)).json()[
            "total"
        ] == 1
        assert (await client.get(ADMIN, params={"q": "50%_"}, headers=operator.headers)).json()["total"] == 1
        assert (await client.get(ADMIN, params={"q": "5_%"}, headers=operator.headers)).json()["total"] == 0

    @pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"offset": -1}])
    async def test_bad_paging_is_422(self, client: httpx.AsyncClient, operator: Caller, params: dict) -> None:
        response = await client.get(ADMIN, params=params, headers=operator.headers)
        assert response.status_code == 422
        assert response.json()["error"] == "ValidationError"


class TestBadInput:
    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"store_price_fen": -1}, "store_price_fen: Input should be greater than or equal to 0"),
            ({"store_price_fen": 10_000_001}, "store_price_fen"),
            ({"store_price_fen": "30"}, "store_price_fen: Input should be a valid integer"),
            ({"store_price_fen": 29.5}, "store_price_fen"),
            ({"name": "青" * 61}, "name: String should have at most 60 characters"),
            ({"name": "   "}, "name: String should have at least 1 character"),
            ({"description": "x" * 2001}, "description"),
            ({"price_fen": 1}, "price_fen: Extra inputs are not permitted"),
        ],
    )
    async def test_refused_and_nothing_written(
        self, client: httpx.AsyncClient, db: Database, operator: Caller, change: dict, message: str
    ) -> None:
        before = await count_rows(db, Product, Event)
        response = await client.post(ADMIN, json={**QINGTUAN, **change}, headers=operator.headers)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "ValidationError"
        assert message in response.json()["detail"]
        assert await count_rows(db, Product, Event) == before

    async def test_bad_update_changes_nothing(
        self, client: httpx.AsyncClient, db: Database, operator: Caller
    ) -> None:
        product = (await client.post(ADMIN, json=QINGTUAN, headers=operator.headers)).json()
        before = await count_rows(db, Event)
        for body in ({"store_price_fen": -100}, {"name": None}, {"name": "x" * 61, "store_price_fen": 1}):
            response = await client.patch(f"{ADMIN}/{product['id']}", json=body, headers=operator.headers)
            assert response.status_code == 422, body
            assert response.json()["detail"]
        after = (await client.get(f"{ADMIN}/{product['id']}", headers=operator.headers)).json()
        assert after == product
        assert await count_rows(db, Event) == before

    async def test_database_refuses_a_negative_price_that_skipped_validation(self, db: Database) -> None:
        """The check constraint is the backstop; the event of the failed write goes with it."""
        async with db.sessionmaker() as session:
            with pytest.raises(Exception, match="(?i)check|constraint"):
                await create_product(
                    session,
                    ProductCreate.model_construct(
                        name="坏价格", description="", store_price_fen=-1, storage_note="", shelf_life_note=""
                    ),
                    actor_id=None,
                )
            await session.rollback()
        assert await count_rows(db, Product, Event) == {"products": 0, "events": 0}


class TestEventsShareTheTransaction:
    async def test_rolled_back_create_leaves_no_event(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            product = await create_product(
                session, ProductCreate(name="青团", store_price_fen=3000), actor_id=None
            )
            await session.flush()
            # Inside the transaction the event is there, next to the product...
            assert (await session.scalars(select(Event.product_id))).all() == [product.id]
            await session.rollback()
        # ...and it goes with it.
        assert await count_rows(db, Product, Event) == {"products": 0, "events": 0}


def operator_routes() -> list[tuple[str, str]]:
    routes = []
    for route in catalog_api.router.routes:
        assert isinstance(route, APIRoute)
        if route.path.startswith("/api/v1/admin/"):
            for method in route.methods:
                path = route.path.replace("{product_id}", "1").replace("{image_id}", "1")
                routes.append((method, path))
    return routes


class TestAccess:
    def test_every_operator_route_is_listed(self) -> None:
        assert len(operator_routes()) == 9

    @pytest.mark.parametrize(("method", "path"), operator_routes())
    async def test_customer_gets_403_and_anonymous_401(
        self, client: httpx.AsyncClient, db: Database, customer: Caller, method: str, path: str
    ) -> None:
        async with db.sessionmaker() as session:
            await make_product(session)
            await session.commit()
        before = await count_rows(db, Product, ProductImage, Event)
        forbidden = await client.request(method, path, json=QINGTUAN, headers=customer.headers)
        assert forbidden.status_code == 403, forbidden.text
        assert forbidden.json() == {"error": "Forbidden", "detail": "this needs the operator role"}
        anonymous = await client.request(method, path, json=QINGTUAN)
        assert anonymous.status_code == 401
        assert anonymous.json()["error"] == "NotAuthenticated"
        assert await count_rows(db, Product, ProductImage, Event) == before

    async def test_public_read_needs_no_login(self, client: httpx.AsyncClient, db: Database) -> None:
        async with db.sessionmaker() as session:
            product = await make_product(session, name="芝士挞", store_price_fen=1250)
            await session.commit()
        response = await client.get(f"/api/v1/products/{product.id}")
        assert response.status_code == 200
        assert response.json()["store_price_fen"] == 1250
