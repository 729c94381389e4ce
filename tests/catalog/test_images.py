"""Product images: upload through the API, checked by their real content, stored and served back."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import httpx
import pytest
from PIL import Image

from linli.catalog.models import Product, ProductImage
from linli.core.config import Settings
from linli.core.db import Database
from linli.core.events import Event
from tests.catalog.factories import count_rows, image_bytes, make_product, png_claiming
from tests.factories import Caller

ADMIN = "/api/v1/admin/products"


@pytest.fixture
async def product_id(db: Database) -> int:
    async with db.sessionmaker() as session:
        product = await make_product(session)
        await session.commit()
        return product.id


def media_files(settings: Settings) -> list[Path]:
    return sorted(p for p in settings.media_dir.rglob("*") if p.is_file())


async def upload(
    client: httpx.AsyncClient,
    caller: Caller,
    product_id: int,
    data: bytes,
    *,
    name: str = "photo.png",
    content_type: str = "image/png",
) -> httpx.Response:
    return await client.post(
        f"{ADMIN}/{product_id}/images", files={"file": (name, data, content_type)}, headers=caller.headers
    )


class TestUpload:
    @pytest.mark.parametrize(
        ("fmt", "content_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")]
    )
    async def test_stored_and_served_back(
        self,
        client: httpx.AsyncClient,
        db: Database,
        settings: Settings,
        operator: Caller,
        product_id: int,
        fmt: str,
        content_type: str,
    ) -> None:
        # The declared name and type are ignored: the content decides.
        response = await upload(
            client,
            operator,
            product_id,
            image_bytes(fmt),
            name="x.bin",
            content_type="application/octet-stream",
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["content_type"] == content_type
        assert (body["width"], body["height"]) == (32, 24)
        url = body["url"]
        stored = settings.media_dir / url.removeprefix("/media/")
        assert stored.is_file()
        # Content-addressed: the file name is the hash of what was stored.
        assert stored.stem == hashlib.sha256(stored.read_bytes()).hexdigest()
        assert body["size_bytes"] == stored.stat().st_size

        served = await client.get(url)
        assert served.status_code == 200
        assert served.content == stored.read_bytes()
        assert served.headers["content-type"] == content_type
        assert Image.open(io.BytesIO(served.content)).format == fmt

        product = (await client.get(f"{ADMIN}/{product_id}", headers=operator.headers)).json()
        assert product["cover_url"] == url
        assert [i["id"] for i in product["images"]] == [body["id"]]
        [event] = [e for e in await _events(db) if e.type == "catalog.product_image_added"]
        assert event.product_id == product_id
        assert event.payload["image_id"] == body["id"]

    async def test_exif_orientation_applied_and_metadata_stripped(
        self, client: httpx.AsyncClient, settings: Settings, operator: Caller, product_id: int
    ) -> None:
        # Orientation 6: the camera was turned; the picture must be rotated 90° clockwise to stand up.
        photo = image_bytes("JPEG", size=(40, 20), exif_orientation=6, gps=True)
        assert Image.open(io.BytesIO(photo)).getexif().get(0x8825)  # the original carries GPS
        response = await upload(
            client, operator, product_id, photo, name="IMG_0001.jpg", content_type="image/jpeg"
        )
        assert response.status_code == 201, response.text
        assert (response.json()["width"], response.json()["height"]) == (20, 40)
        stored = Image.open(settings.media_dir / response.json()["url"].removeprefix("/media/"))
        assert stored.size == (20, 40)
        assert not stored.getexif()  # no orientation, maker or GPS left
        assert "exif" not in stored.info
        # The top-left marker of the sideways photo is now at the top-right.
        pixels = stored.convert("RGB")
        assert pixels.getpixel((17, 2))[2] > 200
        assert pixels.getpixel((2, 2))[2] < 100

    async def test_same_image_twice_is_one_file(
        self, client: httpx.AsyncClient, settings: Settings, operator: Caller, product_id: int
    ) -> None:
        data = image_bytes("PNG")
        first = (await upload(client, operator, product_id, data)).json()
        second = (await upload(client, operator, product_id, data)).json()
        assert first["url"] == second["url"]
        assert first["id"] != second["id"]
        assert [second["position"]] == [first["position"] + 1]
        assert len(media_files(settings)) == 1

    async def test_unknown_product_is_404_and_no_file(
        self, client: httpx.AsyncClient, settings: Settings, operator: Caller
    ) -> None:
        response = await upload(client, operator, 999, image_bytes())
        assert response.status_code == 404
        assert response.json()["detail"] == "product 999 does not exist"
        assert media_files(settings) == []


async def _events(db: Database) -> list[Event]:
    from sqlalchemy import select

    async with db.sessionmaker() as session:
        return list((await session.scalars(select(Event).order_by(Event.id))).all())


class TestRefused:
    @pytest.mark.parametrize(
        ("data", "name", "status", "error", "detail"),
        [
            (b"just some text, honest\n" * 10, "menu.png", 415, "ImageTypeNotAccepted", "not an image"),
            (image_bytes("GIF"), "anim.gif", 415, "ImageTypeNotAccepted", "GIF images are not accepted"),
            (image_bytes("BMP"), "scan.bmp", 415, "ImageTypeNotAccepted", "BMP images are not accepted"),
            (image_bytes("JPEG", size=(200, 200))[:400], "cut.jpg", 422, "ImageDamaged", "damaged"),
            (png_claiming(100_000, 100_000), "bomb.png", 413, "ImageTooLarge", "too many pixels"),
            (png_claiming(8000, 6000), "big.png", 413, "ImageTooLarge", "8000×6000 pixels"),
            (b"", "empty.png", 400, "BadRequest", "empty"),
        ],
    )
    async def test_bad_file_gets_4xx_and_nothing_is_written(
        self,
        client: httpx.AsyncClient,
        db: Database,
        settings: Settings,
        operator: Caller,
        product_id: int,
        data: bytes,
        name: str,
        status: int,
        error: str,
        detail: str,
    ) -> None:
        before = await count_rows(db, ProductImage, Event)
        response = await upload(client, operator, product_id, data, name=name)
        assert response.status_code == status, response.text
        assert response.json()["error"] == error
        assert detail in response.json()["detail"]
        assert await count_rows(db, ProductImage, Event) == before
        assert media_files(settings) == []

    async def test_oversize_file_is_413(
        self, client: httpx.AsyncClient, db: Database, settings: Settings, operator: Caller, product_id: int
    ) -> None:
        settings.max_image_bytes = 2048
        noisy = Image.effect_noise((128, 128), 100).convert("RGB")
        out = io.BytesIO()
        noisy.save(out, format="PNG")
        assert len(out.getvalue()) > 2048
        response = await upload(client, operator, product_id, out.getvalue())
        assert response.status_code == 413
        assert response.json() == {
            "error": "ImageTooLarge",
            "detail": "an image may be at most 2 KB; this one is larger",
        }
        assert await count_rows(db, ProductImage, Event) == {"product_images": 0, "events": 0}
        assert media_files(settings) == []

    async def test_pixel_limit_from_settings(
        self, client: httpx.AsyncClient, settings: Settings, operator: Caller, product_id: int
    ) -> None:
        settings.max_image_pixels = 500
        response = await upload(client, operator, product_id, image_bytes(size=(30, 30)))
        assert response.status_code == 413
        assert "at most 500 pixels" in response.json()["detail"]

    async def test_at_most_nine_images(
        self, client: httpx.AsyncClient, db: Database, operator: Caller, product_id: int
    ) -> None:
        for i in range(9):
            response = await upload(client, operator, product_id, image_bytes(color=(i, i, i)))
            assert response.status_code == 201
        response = await upload(client, operator, product_id, image_bytes(color=(99, 9, 9)))
        assert response.status_code == 409
        assert "at most 9 images" in response.json()["detail"]
        assert (await count_rows(db, ProductImage))["product_images"] == 9


class TestDeleteAndOrder:
    async def test_delete_removes_row_and_file(
        self, client: httpx.AsyncClient, db: Database, settings: Settings, operator: Caller, product_id: int
    ) -> None:
        kept = (await upload(client, operator, product_id, image_bytes(color=(1, 2, 3)))).json()
        doomed = (await upload(client, operator, product_id, image_bytes(color=(4, 5, 6)))).json()
        assert len(media_files(settings)) == 2

        response = await client.delete(
            f"{ADMIN}/{product_id}/images/{doomed['id']}", headers=operator.headers
        )
        assert response.status_code == 204
        assert (await client.get(doomed["url"])).status_code == 404
        assert (await client.get(kept["url"])).status_code == 200
        product = (await client.get(f"{ADMIN}/{product_id}", headers=operator.headers)).json()
        assert [i["id"] for i in product["images"]] == [kept["id"]]
        assert "catalog.product_image_removed" in [e.type for e in await _events(db)]

        again = await client.delete(f"{ADMIN}/{product_id}/images/{doomed['id']}", headers=operator.headers)
        assert again.status_code == 404
        assert again.json()["error"] == "ProductImageNotFound"

    async def test_shared_file_survives_until_last_reference(
        self, client: httpx.AsyncClient, db: Database, settings: Settings, operator: Caller, product_id: int
    ) -> None:
        async with db.sessionmaker() as session:
            other = await make_product(session, name="另一个")
            await session.commit()
        first = (await upload(client, operator, product_id, image_bytes())).json()
        second = (await upload(client, operator, other.id, image_bytes())).json()
        await client.delete(f"{ADMIN}/{product_id}/images/{first['id']}", headers=operator.headers)
        assert (await client.get(second["url"])).status_code == 200

    async def test_reorder_sets_cover(
        self, client: httpx.AsyncClient, db: Database, operator: Caller, product_id: int
    ) -> None:
        a = (await upload(client, operator, product_id, image_bytes(color=(1, 1, 1)))).json()
        b = (await upload(client, operator, product_id, image_bytes(color=(2, 2, 2)))).json()
        response = await client.put(
            f"{ADMIN}/{product_id}/images/order",
            json={"image_ids": [b["id"], a["id"]]},
            headers=operator.headers,
        )
        assert response.status_code == 200, response.text
        assert [i["id"] for i in response.json()["images"]] == [b["id"], a["id"]]
        assert response.json()["cover_url"] == b["url"]
        reread = (await client.get(f"/api/v1/products/{product_id}")).json()
        assert reread["cover_url"] == b["url"]

        bad = await client.put(
            f"{ADMIN}/{product_id}/images/order",
            json={"image_ids": [a["id"], a["id"]]},
            headers=operator.headers,
        )
        assert bad.status_code == 422
        assert "exactly once" in bad.json()["detail"]
        async with db.sessionmaker() as session:
            product = await session.get(Product, product_id)
            assert product is not None
            assert [i.id for i in product.images] == [b["id"], a["id"]]
