"""API shapes of the catalog. Money is integer fen; names are trimmed before their length is checked."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from linli.core.schemas import CleanText, NoNullUpdate

MAX_STORE_PRICE_FEN = 10_000_000  # ¥100,000: far above any bakery item, low enough to catch a typo

ProductName = Annotated[str, CleanText(min_length=1, max_length=60)]
Description = Annotated[str, CleanText(max_length=2000, multiline=True)]
Note = Annotated[str, CleanText(max_length=200)]
PriceFen = Annotated[int, Field(strict=True, ge=0, le=MAX_STORE_PRICE_FEN)]


class ProductCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ProductName
    description: Description = ""
    store_price_fen: PriceFen
    storage_note: Note = ""
    shelf_life_note: Note = ""


class ProductUpdate(NoNullUpdate):
    name: ProductName | None = None
    description: Description | None = None
    store_price_fen: PriceFen | None = None
    storage_note: Note | None = None
    shelf_life_note: Note | None = None


class ProductImageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    content_type: str
    width: int
    height: int
    size_bytes: int
    position: int


class ProductRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    store_price_fen: int
    storage_note: str
    shelf_life_note: str
    cover_url: str | None
    images: list[ProductImageRead]
    archived_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ProductPublic(BaseModel):
    """What a neighbour sees of a product."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    store_price_fen: int
    storage_note: str
    shelf_life_note: str
    cover_url: str | None
    images: list[ProductImageRead]


class ProductPage(BaseModel):
    items: list[ProductRead]
    total: int
    offset: int
    limit: int


class ImageOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_ids: list[int] = Field(max_length=50)
