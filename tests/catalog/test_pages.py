"""The product admin pages, driven like a browser: cookie login, same-origin form posts, redirects."""

from __future__ import annotations

import re

import httpx
import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import select

from linli.catalog.models import Product, ProductImage
from linli.core.config import Settings
from linli.core.db import Database
from linli.core.events import Event
from linli.identity.tokens import SESSION_COOKIE
from tests.catalog.factories import count_rows, image_bytes, make_product
from tests.factories import Caller

ORIGIN = {"Origin": "http://testserver"}


@pytest.fixture
def browser(client: httpx.AsyncClient, settings: Settings, operator: Caller) -> httpx.AsyncClient:
    """The client carrying the operator's session cookie, as a logged-in browser does."""
    cookie = URLSafeSerializer(settings.resolved_secret_key(), salt="linli.session").dumps(operator.token)
    client.cookies.set(SESSION_COOKIE, cookie)
    client.headers["Accept"] = "text/html"
    return client


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_list_renders_in_chinese_with_price_thumbnail_and_status(
    browser: httpx.AsyncClient, db: Database
) -> None:
    async with db.sessionmaker() as session:
        product = await make_product(session, name="春季限定青团", store_price_fen=3000)
        await make_product(session, name="老款蛋黄酥", store_price_fen=1850, archived=True)
        product.images.append(
            ProductImage(
                path="products/ab/abc.png", content_type="image/png", width=1, height=1, size_bytes=1
            )
        )
        await session.commit()
    response = await browser.get("/admin/products")
    assert response.status_code == 200
    page = text_of(response.text)
    assert "商品" in page
    assert "门店价" in page
    assert "新建商品" in page
    assert "春季限定青团" in page
    assert "¥30" in page
    assert "正常" in page
    assert 'src="/media/products/ab/abc.png"' in response.text
    assert f'href="/admin/products/{product.id}/edit"' in response.text
    assert "老款蛋黄酥" not in page  # archived: hidden unless asked for

    with_archived = text_of((await browser.get("/admin/products?archived=1")).text)
    assert "老款蛋黄酥" in with_archived
    assert "¥18.50" in with_archived
    assert "已归档" in with_archived


async def test_list_search_and_pages(browser: httpx.AsyncClient, db: Database) -> None:
    async with db.sessionmaker() as session:
        for i in range(45):
            await make_product(session, name=f"吐司 {i:02d}")
        await make_product(session, name="青团")
        await session.commit()
    first = text_of((await browser.get("/admin/products")).text)
    assert "共 46 条" in first
    assert "第 1 / 3 页" in first
    assert "下一页" in first
    third = await browser.get("/admin/products?page=3")
    assert "第 3 / 3 页" in text_of(third.text)
    assert "吐司 00" in third.text
    assert "吐司 05" in third.text
    assert "吐司 06" not in third.text
    found = text_of((await browser.get("/admin/products", params={"q": "青团"})).text)
    assert "共 1 条" in found
    assert "吐司" not in found
    nothing = text_of((await browser.get("/admin/products", params={"q": "披萨"})).text)
    assert "没有找到与“披萨”相关的记录" in nothing


async def test_english_switch(browser: httpx.AsyncClient) -> None:
    page = text_of((await browser.get("/admin/products?lang=en")).text)
    assert "Products" in page
    assert "New Product" in page
    assert "Store price" in page


async def test_create_through_the_form_then_see_it_listed(
    browser: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    form = await browser.get("/admin/products/new")
    assert form.status_code == 200
    assert 'name="store_price_fen"' in form.text
    assert "(元)" in form.text

    response = await browser.post(
        "/admin/products/new",
        data={
            "name": " 春季限定青团 ",
            "store_price_fen": "30",
            "storage_note": "冷藏",
            "shelf_life_note": "2 天",
            "description": "艾草青团",
        },
        headers=ORIGIN,
    )
    assert response.status_code == 303
    async with db.sessionmaker() as session:
        [product] = (await session.scalars(select(Product))).all()
        assert (product.name, product.store_price_fen, product.description) == (
            "春季限定青团",
            3000,
            "艾草青团",
        )
        [event] = (await session.scalars(select(Event))).all()
        assert event.type == "catalog.product_created"
        assert event.actor_id == operator.user.id
    # A new product opens on its edit page, where images are added, with the flash message shown once.
    assert response.headers["location"] == f"/admin/products/{product.id}/edit"
    edit = await browser.get(response.headers["location"])
    assert "商品已创建" in edit.text
    assert 'value="30"' in edit.text
    assert "上传图片" in edit.text
    assert "商品已创建" not in (await browser.get(response.headers["location"])).text

    listed = text_of((await browser.get("/admin/products")).text)
    assert "春季限定青团" in listed
    assert "¥30" in listed


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"store_price_fen": "-1"}, "store_price_fen", "不能小于 ¥0"),
        ({"store_price_fen": "100000.01"}, "store_price_fen", "不能大于 ¥100000"),
        ({"store_price_fen": "三十"}, "store_price_fen", "请填写金额"),
        ({"store_price_fen": "1.234"}, "store_price_fen", "请填写金额"),
        ({"store_price_fen": ""}, "store_price_fen", "请填写此项"),
        ({"name": "青" * 61}, "name", "最多 60 个字"),
        ({"name": "   "}, "name", "请填写此项"),
    ],
)
async def test_bad_form_rerenders_with_the_message_and_writes_nothing(
    browser: httpx.AsyncClient, db: Database, fields: dict[str, str], field: str, message: str
) -> None:
    data = {"name": "青团", "store_price_fen": "30", "description": "好吃", **fields}
    response = await browser.post("/admin/products/new", data=data, headers=ORIGIN)
    assert response.status_code == 422
    error = re.search(rf'data-testid="error-{field}">([^<]*)<', response.text)
    assert error is not None
    assert message in error.group(1)
    # What was typed is still there.
    assert 'value="{}"'.format(data["store_price_fen"]) in response.text or field == "store_price_fen"
    assert "好吃" in response.text
    assert await count_rows(db, Product, Event) == {"products": 0, "events": 0}


async def test_edit_form_saves_and_bad_edit_changes_nothing(browser: httpx.AsyncClient, db: Database) -> None:
    async with db.sessionmaker() as session:
        product = await make_product(session, name="青团", store_price_fen=3000)
        await session.commit()
    url = f"/admin/products/{product.id}/edit"
    page = await browser.get(url)
    assert 'value="青团"' in page.text
    assert 'value="30"' in page.text
    assert "编辑商品" in page.text

    bad = await browser.post(url, data={"name": "青团", "store_price_fen": "-5"}, headers=ORIGIN)
    assert bad.status_code == 422
    assert "不能小于 ¥0" in bad.text
    good = await browser.post(
        url, data={"name": "青团(大)", "store_price_fen": "25.5", "description": ""}, headers=ORIGIN
    )
    assert good.status_code == 303
    async with db.sessionmaker() as session:
        saved = await session.get(Product, product.id)
        assert saved is not None
        assert (saved.name, saved.store_price_fen) == ("青团(大)", 2550)
        types = (await session.scalars(select(Event.type))).all()
        assert types == ["catalog.product_updated"]
    assert "商品已保存" in (await browser.get(good.headers["location"])).text


async def test_archive_and_restore_buttons(browser: httpx.AsyncClient, db: Database) -> None:
    async with db.sessionmaker() as session:
        product = await make_product(session, name="青团")
        await session.commit()
    listed = await browser.get("/admin/products")
    assert f'action="/admin/products/{product.id}/archive"' in listed.text

    response = await browser.post(
        f"/admin/products/{product.id}/archive", data={"next": "/admin/products?q=青"}, headers=ORIGIN
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/products?q=%E9%9D%92"
    back = await browser.get("/admin/products?archived=1")
    assert "商品已归档" in back.text
    assert f'action="/admin/products/{product.id}/unarchive"' in back.text
    # "next" never leads off the site.
    response = await browser.post(
        f"/admin/products/{product.id}/unarchive", data={"next": "//evil.example/"}, headers=ORIGIN
    )
    assert response.headers["location"] == "/admin/products"
    async with db.sessionmaker() as session:
        reread = await session.get(Product, product.id)
        assert reread is not None
        assert reread.archived_at is None


async def test_image_upload_and_delete_from_the_edit_page(
    browser: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    async with db.sessionmaker() as session:
        product = await make_product(session)
        await session.commit()
    url = f"/admin/products/{product.id}/edit"
    response = await browser.post(
        f"/admin/products/{product.id}/images",
        files={"file": ("qingtuan.jpg", image_bytes("JPEG"), "image/jpeg")},
        headers=ORIGIN,
    )
    assert response.status_code == 303
    assert response.headers["location"] == url
    page = await browser.get(url)
    assert "图片已上传" in page.text
    async with db.sessionmaker() as session:
        [image] = (await session.scalars(select(ProductImage))).all()
    assert f'src="{image.url}"' in page.text
    assert (settings.media_dir / image.path).is_file()

    refused = await browser.post(
        f"/admin/products/{product.id}/images",
        files={"file": ("notes.png", b"not really a picture", "image/png")},
        headers=ORIGIN,
    )
    assert refused.status_code == 303
    page = await browser.get(url)
    assert "图片未上传" in page.text
    assert "not an image" in page.text
    assert "flash-error" in page.text
    assert (await count_rows(db, ProductImage))["product_images"] == 1

    deleted = await browser.post(f"/admin/products/{product.id}/images/{image.id}/delete", headers=ORIGIN)
    assert deleted.status_code == 303
    assert "图片已删除" in (await browser.get(url)).text
    assert (await count_rows(db, ProductImage))["product_images"] == 0
    assert not (settings.media_dir / image.path).exists()


async def test_bearer_token_works_for_form_posts(
    client: httpx.AsyncClient, db: Database, operator: Caller
) -> None:
    response = await client.post(
        "/admin/products/new", data={"name": "芝士挞", "store_price_fen": "12.5"}, headers=operator.headers
    )
    assert response.status_code == 303
    async with db.sessionmaker() as session:
        assert (await session.scalars(select(Product.store_price_fen))).all() == [1250]


async def test_cross_site_form_post_is_refused(browser: httpx.AsyncClient, db: Database) -> None:
    response = await browser.post(
        "/admin/products/new",
        data={"name": "芝士挞", "store_price_fen": "12"},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert await count_rows(db, Product) == {"products": 0}


async def test_anonymous_goes_to_login_and_customer_is_refused(
    client: httpx.AsyncClient, db: Database, customer: Caller
) -> None:
    anonymous = await client.get("/admin/products", headers={"Accept": "text/html"})
    assert anonymous.status_code in (302, 303, 307)
    assert anonymous.headers["location"].startswith("/login?next=")
    posted = await client.post("/admin/products/new", data={"name": "x", "store_price_fen": "1"})
    assert posted.status_code in (302, 303, 307, 401)
    refused = await client.get("/admin/products", headers={**customer.headers, "Accept": "text/html"})
    assert refused.status_code == 403
    assert await count_rows(db, Product) == {"products": 0}
