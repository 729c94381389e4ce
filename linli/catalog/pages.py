"""Catalog admin pages: the product list, the product form and its images."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile
from starlette.responses import Response

from linli.catalog import service
from linli.catalog.models import Product
from linli.catalog.schemas import ProductCreate, ProductUpdate
from linli.core.admin_pages import AdminResource, Column, Field, flash_redirect, mount
from linli.core.deps import SessionDep, SettingsDep
from linli.core.errors import LinliError
from linli.core.templating import register_admin_nav, translator
from linli.identity.deps import PageOperator, require_page_roles
from linli.identity.models import Role

router = APIRouter(include_in_schema=False)
PATH = "/admin/products"

register_admin_nav(PATH, "catalog.products", 30)


def _edit_url(product: Product) -> str:
    return f"{PATH}/{product.id}/edit"


products = AdminResource(
    path=PATH,
    title="catalog.products",
    noun="catalog.product",
    fields=(
        Field("name", "catalog.field.name", required=True, max_length=60),
        Field("store_price_fen", "catalog.field.store_price", kind="money", required=True),
        Field("storage_note", "catalog.field.storage_note", max_length=200, hint="catalog.hint.storage_note"),
        Field(
            "shelf_life_note", "catalog.field.shelf_life_note", max_length=200, hint="catalog.hint.shelf_life"
        ),
        Field("description", "catalog.field.description", kind="textarea", max_length=2000),
    ),
    columns=(
        Column("catalog.field.image", "cover_url", kind="thumb"),
        Column("catalog.field.name", "name", link=True),
        Column("catalog.field.store_price", "store_price_fen", kind="money"),
        Column("catalog.field.updated_at", "updated_at", kind="time"),
    ),
    create_schema=ProductCreate,
    update_schema=ProductUpdate,
    fetch=service.list_products,
    get=service.get_product,
    create=service.create_product,
    update=service.update_product,
    archive=service.archive_product,
    unarchive=service.unarchive_product,
    guard=require_page_roles(Role.operator),
    form_template="catalog/product_form.html",
    # A new product goes straight to its edit page, where images can be added.
    saved_url=_edit_url,
)
mount(router, products)


@router.post(PATH + "/{product_id}/images")
async def upload_image(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    operator: PageOperator,
    product_id: int,
    file: Annotated[UploadFile, File()],
) -> Response:
    """The edit page's upload form; problems come back as a flash message on the edit page."""
    await service.get_product(session, product_id)
    back = f"{PATH}/{product_id}/edit"
    t = translator(request)
    data = await file.read(settings.max_image_bytes + 1)
    try:
        async with session.begin_nested():
            await service.add_product_image(
                session, product_id, data, settings=settings, actor_id=operator.id
            )
    except LinliError as exc:
        return flash_redirect(request, back, t("catalog.image_refused", reason=exc.message), kind="error")
    return flash_redirect(request, back, t("catalog.image_added"))


@router.post(PATH + "/{product_id}/images/{image_id}/delete")
async def delete_image(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    operator: PageOperator,
    product_id: int,
    image_id: int,
) -> Response:
    await service.remove_product_image(session, product_id, image_id, settings=settings, actor_id=operator.id)
    return flash_redirect(request, f"{PATH}/{product_id}/edit", translator(request)("catalog.image_deleted"))
