"""The catalog's verbs: products, their images and store prices.

Every verb validates first, then changes rows and appends its event in the caller's transaction; it
flushes and never commits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from linli.catalog import events
from linli.catalog.models import Product, ProductImage
from linli.catalog.schemas import ProductCreate, ProductUpdate
from linli.core.clock import utcnow
from linli.core.config import Settings
from linli.core.errors import Conflict, NotFound, Unprocessable
from linli.core.events import Subjects, record_event
from linli.core.media import check_size, discard_after_commit, store_image

MAX_IMAGES_PER_PRODUCT = 9
MAX_PAGE_SIZE = 100
MEDIA_FOLDER = "products"


class ProductNotFound(NotFound):
    pass


class ProductImageNotFound(NotFound):
    pass


class TooManyImages(Conflict):
    pass


class ImageOrderMismatch(Unprocessable):
    pass


async def create_product(session: AsyncSession, data: ProductCreate, *, actor_id: int | None) -> Product:
    """Add a product to the catalog; records ``catalog.product_created``."""
    product = Product(**data.model_dump(), images=[])
    session.add(product)
    await session.flush()
    record_event(
        session,
        events.PRODUCT_CREATED,
        actor_id=actor_id,
        subjects=Subjects(product_id=product.id),
        payload={"name": product.name, "store_price_fen": product.store_price_fen},
    )
    return product


async def get_product(session: AsyncSession, product_id: int, *, include_archived: bool = True) -> Product:
    """The product with ``product_id``; ProductNotFound if missing (or archived, unless asked for)."""
    product = await session.get(Product, product_id)
    if product is None or (product.archived_at is not None and not include_archived):
        raise ProductNotFound(f"product {product_id} does not exist")
    return product


async def list_products(
    session: AsyncSession,
    *,
    q: str = "",
    include_archived: bool = False,
    offset: int = 0,
    limit: int = 20,
) -> tuple[list[Product], int]:
    """One page of products, newest first, with the total; ``q`` matches part of the name."""
    conditions: list[Any] = []
    if q.strip():
        conditions.append(Product.name.icontains(q.strip(), autoescape=True))
    if not include_archived:
        conditions.append(Product.archived_at.is_(None))
    total = await session.scalar(select(func.count()).select_from(Product).where(*conditions)) or 0
    rows = await session.scalars(
        select(Product)
        .where(*conditions)
        .order_by(Product.id.desc())
        .offset(max(offset, 0))
        .limit(min(max(limit, 1), MAX_PAGE_SIZE))
    )
    return list(rows.all()), total


async def update_product(
    session: AsyncSession, product_id: int, data: ProductUpdate, *, actor_id: int | None
) -> Product:
    """Change the given fields; records ``catalog.product_updated`` with what changed (nothing → no event)."""
    product = await get_product(session, product_id)
    changes = {k: v for k, v in data.changes().items() if getattr(product, k) != v}
    if not changes:
        return product
    for name, value in changes.items():
        setattr(product, name, value)
    await session.flush()
    record_event(
        session,
        events.PRODUCT_UPDATED,
        actor_id=actor_id,
        subjects=Subjects(product_id=product.id),
        payload={"changes": changes},
    )
    return product


async def archive_product(session: AsyncSession, product_id: int, *, actor_id: int | None) -> Product:
    """Hide a product from neighbours and default lists; idempotent (no event when already archived)."""
    product = await get_product(session, product_id)
    if product.archived_at is None:
        product.archived_at = utcnow()
        await session.flush()
        record_event(
            session, events.PRODUCT_ARCHIVED, actor_id=actor_id, subjects=Subjects(product_id=product.id)
        )
    return product


async def unarchive_product(session: AsyncSession, product_id: int, *, actor_id: int | None) -> Product:
    """Bring an archived product back; idempotent."""
    product = await get_product(session, product_id)
    if product.archived_at is not None:
        product.archived_at = None
        await session.flush()
        record_event(
            session, events.PRODUCT_UNARCHIVED, actor_id=actor_id, subjects=Subjects(product_id=product.id)
        )
    return product


async def add_product_image(
    session: AsyncSession, product_id: int, data: bytes, *, settings: Settings, actor_id: int | None
) -> ProductImage:
    """Validate, store and append an image to a product (at most 9); records ``catalog.product_image_added``.

    The file is checked by decoding (JPEG/PNG/WebP only), limited by ``max_image_bytes`` and
    ``max_image_pixels``, and written before the row; a rolled-back row leaves only an unreferenced file."""
    product = await get_product(session, product_id)
    check_size(len(data), max_bytes=settings.max_image_bytes)
    if len(product.images) >= MAX_IMAGES_PER_PRODUCT:
        raise TooManyImages(f"a product has at most {MAX_IMAGES_PER_PRODUCT} images; delete one first")
    # Decoding a large photo takes a while; keep it off the event loop.
    stored = await asyncio.to_thread(
        store_image,
        data,
        media_dir=settings.media_dir,
        folder=MEDIA_FOLDER,
        max_bytes=settings.max_image_bytes,
        max_pixels=settings.max_image_pixels,
    )
    image = ProductImage(
        path=stored.path,
        content_type=stored.content_type,
        width=stored.width,
        height=stored.height,
        size_bytes=stored.size_bytes,
        position=max((i.position for i in product.images), default=-1) + 1,
    )
    product.images.append(image)
    await session.flush()
    record_event(
        session,
        events.PRODUCT_IMAGE_ADDED,
        actor_id=actor_id,
        subjects=Subjects(product_id=product.id),
        payload={"image_id": image.id, "path": image.path},
    )
    return image


async def remove_product_image(
    session: AsyncSession, product_id: int, image_id: int, *, settings: Settings, actor_id: int | None
) -> Product:
    """Delete one image of a product; its file goes after the commit unless another row still uses it."""
    product = await get_product(session, product_id)
    image = next((i for i in product.images if i.id == image_id), None)
    if image is None:
        raise ProductImageNotFound(f"product {product_id} has no image {image_id}")
    product.images.remove(image)
    await session.flush()
    still_used = await session.scalar(
        select(func.count()).select_from(ProductImage).where(ProductImage.path == image.path)
    )
    if not still_used:
        discard_after_commit(session, settings.media_dir, image.path)
    record_event(
        session,
        events.PRODUCT_IMAGE_REMOVED,
        actor_id=actor_id,
        subjects=Subjects(product_id=product.id),
        payload={"image_id": image_id, "path": image.path},
    )
    return product


async def reorder_product_images(
    session: AsyncSession, product_id: int, image_ids: Sequence[int], *, actor_id: int | None
) -> Product:
    """Put a product's images in the given order (the first is the cover); ``image_ids`` lists each once."""
    product = await get_product(session, product_id)
    current = {i.id: i for i in product.images}
    if len(image_ids) != len(current) or set(image_ids) != set(current):
        raise ImageOrderMismatch(
            f"image_ids must list each of the product's {len(current)} images exactly once"
        )
    for position, image_id in enumerate(image_ids):
        current[image_id].position = position
    product.images.sort(key=lambda i: i.position)
    await session.flush()
    record_event(
        session,
        events.PRODUCT_IMAGES_REORDERED,
        actor_id=actor_id,
        subjects=Subjects(product_id=product.id),
        payload={"image_ids": list(image_ids)},
    )
    return product
