"""Products, their images and regular store prices."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from linli.core.clock import utcnow
from linli.core.db import Base, BigId, IdMixin, TimestampMixin


class Product(IdMixin, TimestampMixin, Base):
    __tablename__ = "products"

    name: Mapped[str] = mapped_column(String(60), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    store_price_fen: Mapped[int] = mapped_column(Integer)
    storage_note: Mapped[str] = mapped_column(String(200), default="")
    shelf_life_note: Mapped[str] = mapped_column(String(200), default="")
    archived_at: Mapped[datetime | None]

    images: Mapped[list[ProductImage]] = relationship(
        back_populates="product",
        cascade="all, delete-orphan",
        order_by="[ProductImage.position, ProductImage.id]",
        lazy="selectin",
    )

    __table_args__ = (CheckConstraint("store_price_fen >= 0", name="store_price_not_negative"),)

    @property
    def cover_url(self) -> str | None:
        return self.images[0].url if self.images else None


class ProductImage(IdMixin, Base):
    __tablename__ = "product_images"

    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("products.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    product: Mapped[Product] = relationship(back_populates="images")

    @property
    def url(self) -> str:
        return f"/media/{self.path}"
