"""The generic admin machinery (linli/core/admin_pages.py) under a verb that fails after changing things."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from linli.catalog import service
from linli.catalog.models import Product
from linli.catalog.schemas import ProductCreate, ProductUpdate
from linli.core.admin_pages import AdminResource, Column, Field, ListQuery, mount
from linli.core.db import Database
from linli.core.errors import Conflict
from linli.core.events import Event, record_event
from linli.identity.deps import require_page_roles
from linli.identity.models import Role
from tests.catalog.factories import count_rows, make_product
from tests.factories import Caller


async def update_then_refuse(
    session: AsyncSession, product_id: int, data: ProductUpdate, *, actor_id: int | None
) -> Product:
    """Changes the row, writes an event, flushes — and then refuses, as a verb might on a late check."""
    product = await service.get_product(session, product_id)
    product.name = "改了一半"
    record_event(session, "test.half_done", actor_id=actor_id)
    await session.flush()
    raise Conflict("这个名字已被占用", field="name")


async def create_then_refuse(session: AsyncSession, data: ProductCreate, *, actor_id: int | None) -> Product:
    await service.create_product(session, data, actor_id=actor_id)
    raise Conflict("今天不能再上新了")


@pytest.fixture
def half_done_app(app: FastAPI) -> FastAPI:
    router = APIRouter()
    mount(
        router,
        AdminResource(
            path="/admin/test-products",
            title="catalog.products",
            noun="catalog.product",
            fields=(
                Field("name", "catalog.field.name", required=True),
                Field("store_price_fen", "catalog.field.store_price", kind="money", required=True),
            ),
            columns=(Column("catalog.field.name", "name", link=True),),
            create_schema=ProductCreate,
            update_schema=ProductUpdate,
            fetch=service.list_products,
            get=service.get_product,
            create=create_then_refuse,
            update=update_then_refuse,
            archive=service.archive_product,
            guard=require_page_roles(Role.operator),
        ),
    )
    app.include_router(router)
    return app


async def test_refusal_after_changes_rolls_them_back_and_shows_the_message(
    half_done_app: FastAPI, client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    async with db.sessionmaker() as session:
        product = await make_product(session, name="青团", store_price_fen=3000)
        await session.commit()
    before = await count_rows(db, Product, Event)
    response = await client.post(
        f"/admin/test-products/{product.id}/edit",
        data={"name": "青团二代", "store_price_fen": "31"},
        headers=operator.headers,
    )
    assert response.status_code == 422
    assert 'data-testid="error-name">这个名字已被占用<' in response.text
    assert 'value="青团二代"' in response.text  # what was typed stays
    assert "改了一半" not in response.text
    assert await count_rows(db, Product, Event) == before
    async with db.sessionmaker() as session:
        reread = await session.get(Product, product.id)
        assert reread is not None
        assert reread.name == "青团"

    created = await client.post(
        "/admin/test-products/new", data={"name": "蛋黄酥", "store_price_fen": "12"}, headers=operator.headers
    )
    assert created.status_code == 422
    assert 'data-testid="form-error">今天不能再上新了<' in created.text
    assert await count_rows(db, Product, Event) == before


def test_list_query_links_keep_the_search() -> None:
    query = ListQuery(q="青团 50%", include_archived=True, page=2)
    assert query.offset == 20
    assert (
        query.link("/admin/products", page=3)
        == "/admin/products?q=%E9%9D%92%E5%9B%A2+50%25&archived=1&page=3"
    )
    assert ListQuery().link("/admin/products") == "/admin/products"


@pytest.mark.parametrize(
    ("raw", "display"),
    [(0, "0"), (2550, "25.50"), (3000, "30"), (None, "")],
)
def test_money_field_shows_yuan(raw: Any, display: str) -> None:
    assert Field("p", "x", kind="money").display(raw) == display
