"""Catalog JSON API: the operator's product management and the neighbours' product read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Response, UploadFile

from linli.catalog import service
from linli.catalog.schemas import (
    ImageOrder,
    ProductCreate,
    ProductImageRead,
    ProductPage,
    ProductPublic,
    ProductRead,
    ProductUpdate,
)
from linli.core.deps import SessionDep, SettingsDep
from linli.identity.deps import OperatorUser

router = APIRouter()
ADMIN = "/api/v1/admin/products"


@router.get(ADMIN, tags=["catalog: operator"])
async def list_products(
    session: SessionDep,
    operator: OperatorUser,
    q: Annotated[str, Query(max_length=100)] = "",
    include_archived: bool = False,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)] = 20,
) -> ProductPage:
    """Products, newest first; ``q`` searches names; archived ones only when asked."""
    rows, total = await service.list_products(
        session, q=q, include_archived=include_archived, offset=offset, limit=limit
    )
    return ProductPage(
        items=[ProductRead.model_validate(p) for p in rows], total=total, offset=offset, limit=limit
    )


@router.post(ADMIN, status_code=201, tags=["catalog: operator"])
async def create_product(session: SessionDep, operator: OperatorUser, body: ProductCreate) -> ProductRead:
    """Add a product (price in fen)."""
    product = await service.create_product(session, body, actor_id=operator.id)
    return ProductRead.model_validate(product)


@router.get(ADMIN + "/{product_id}", tags=["catalog: operator"])
async def get_product(session: SessionDep, operator: OperatorUser, product_id: int) -> ProductRead:
    """One product, archived or not."""
    return ProductRead.model_validate(await service.get_product(session, product_id))


@router.patch(ADMIN + "/{product_id}", tags=["catalog: operator"])
async def update_product(
    session: SessionDep, operator: OperatorUser, product_id: int, body: ProductUpdate
) -> ProductRead:
    """Change some fields of a product."""
    product = await service.update_product(session, product_id, body, actor_id=operator.id)
    return ProductRead.model_validate(product)


@router.post(ADMIN + "/{product_id}/archive", tags=["catalog: operator"])
async def archive_product(session: SessionDep, operator: OperatorUser, product_id: int) -> ProductRead:
    """Hide a product from neighbours and from default lists."""
    return ProductRead.model_validate(
        await service.archive_product(session, product_id, actor_id=operator.id)
    )


@router.post(ADMIN + "/{product_id}/unarchive", tags=["catalog: operator"])
async def unarchive_product(session: SessionDep, operator: OperatorUser, product_id: int) -> ProductRead:
    """Bring an archived product back."""
    return ProductRead.model_validate(
        await service.unarchive_product(session, product_id, actor_id=operator.id)
    )


@router.post(ADMIN + "/{product_id}/images", status_code=201, tags=["catalog: operator"])
async def upload_product_image(
    session: SessionDep,
    settings: SettingsDep,
    operator: OperatorUser,
    product_id: int,
    file: Annotated[UploadFile, File(description="a JPEG, PNG or WebP image")],
) -> ProductImageRead:
    """Upload an image (multipart field ``file``): 415 if not JPEG/PNG/WebP, 413 if too large."""
    # One byte past the limit is enough to know it is too large, without reading it all into memory.
    data = await file.read(settings.max_image_bytes + 1)
    image = await service.add_product_image(
        session, product_id, data, settings=settings, actor_id=operator.id
    )
    return ProductImageRead.model_validate(image)


@router.delete(ADMIN + "/{product_id}/images/{image_id}", status_code=204, tags=["catalog: operator"])
async def delete_product_image(
    session: SessionDep, settings: SettingsDep, operator: OperatorUser, product_id: int, image_id: int
) -> Response:
    """Remove one image of a product."""
    await service.remove_product_image(session, product_id, image_id, settings=settings, actor_id=operator.id)
    return Response(status_code=204)


@router.put(ADMIN + "/{product_id}/images/order", tags=["catalog: operator"])
async def reorder_product_images(
    session: SessionDep, operator: OperatorUser, product_id: int, body: ImageOrder
) -> ProductRead:
    """Set the order of a product's images; the first one is the cover."""
    product = await service.reorder_product_images(session, product_id, body.image_ids, actor_id=operator.id)
    return ProductRead.model_validate(product)


@router.get("/api/v1/products/{product_id}", tags=["catalog"])
async def read_product(session: SessionDep, product_id: int) -> ProductPublic:
    """A product as neighbours see it; archived products are not found."""
    product = await service.get_product(session, product_id, include_archived=False)
    return ProductPublic.model_validate(product)
