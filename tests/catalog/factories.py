"""Catalog test data: products, and image files built with Pillow."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from linli.catalog.models import Product
from linli.core.clock import utcnow
from linli.core.db import Database


async def make_product(
    session: AsyncSession,
    *,
    name: str = "春季限定青团",
    store_price_fen: int = 3000,
    description: str = "",
    archived: bool = False,
) -> Product:
    product = Product(
        name=name,
        description=description,
        store_price_fen=store_price_fen,
        storage_note="",
        shelf_life_note="",
        archived_at=utcnow() if archived else None,
        images=[],
    )
    session.add(product)
    await session.flush()
    return product


async def count_rows(db: Database, *models: type) -> dict[str, int]:
    """How many rows each table holds, in a transaction of its own (never while a request holds one)."""
    async with db.sessionmaker() as session:
        return {
            model.__tablename__: (await session.scalar(select(func.count()).select_from(model))) or 0  # type: ignore[attr-defined]
            for model in models
        }


def image_bytes(
    fmt: str = "PNG",
    *,
    size: tuple[int, int] = (32, 24),
    color: tuple[int, int, int] = (194, 65, 12),
    exif_orientation: int | None = None,
    gps: bool = False,
) -> bytes:
    """A real image; ``exif_orientation`` and ``gps`` put the metadata a phone would."""
    image = Image.new("RGB", size, color)
    # A blue block at the top-left, to check that rotation really happened.
    image.paste((0, 0, 255), (0, 0, min(8, size[0]), min(8, size[1])))
    params: dict[str, object] = {}
    if exif_orientation is not None or gps:
        exif = Image.Exif()
        if exif_orientation is not None:
            exif[0x0112] = exif_orientation
        if gps:
            exif[0x010F] = "PhoneMaker"  # Make
            exif[0x8825] = {1: "N", 2: (31.0, 14.0, 0.0)}  # GPSInfo
        params["exif"] = exif
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG header announcing ``width``×``height`` pixels with almost no data: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )
