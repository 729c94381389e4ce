"""Stores, residential communities, their pickup points and who belongs where."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from linli.core.clock import utcnow
from linli.core.db import Base, BigId, IdMixin, TimestampMixin
from linli.identity.models import User


class Store(IdMixin, TimestampMixin, Base):
    __tablename__ = "stores"

    name: Mapped[str] = mapped_column(String(60), index=True)
    address: Mapped[str] = mapped_column(String(200))
    district: Mapped[str] = mapped_column(String(40), default="")
    phone: Mapped[str] = mapped_column(String(20), default="")
    opening_hours: Mapped[str] = mapped_column(String(60), default="")
    archived_at: Mapped[datetime | None]


class Community(IdMixin, TimestampMixin, Base):
    __tablename__ = "communities"

    name: Mapped[str] = mapped_column(String(60), index=True)
    address: Mapped[str] = mapped_column(String(200))
    district: Mapped[str] = mapped_column(String(40), default="")
    archived_at: Mapped[datetime | None]

    pickup_points: Mapped[list[PickupPoint]] = relationship(
        back_populates="community", lazy="selectin", order_by="PickupPoint.id"
    )

    @property
    def open_pickup_points(self) -> list[PickupPoint]:
        return [p for p in self.pickup_points if p.archived_at is None]


class PickupPoint(IdMixin, TimestampMixin, Base):
    __tablename__ = "pickup_points"

    community_id: Mapped[int] = mapped_column(BigId, ForeignKey("communities.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    address: Mapped[str] = mapped_column(String(200))
    opening_hours: Mapped[str] = mapped_column(String(60), default="")
    leader_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    archived_at: Mapped[datetime | None]

    community: Mapped[Community] = relationship(back_populates="pickup_points", lazy="joined")
    leader: Mapped[User | None] = relationship(lazy="joined")

    @property
    def community_name(self) -> str:
        return self.community.name

    @property
    def leader_name(self) -> str | None:
        return self.leader.display_name if self.leader is not None else None


class Membership(Base):
    """A neighbour belongs to one community at a time."""

    __tablename__ = "memberships"

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    community_id: Mapped[int] = mapped_column(BigId, ForeignKey("communities.id"), index=True)
    source: Mapped[str] = mapped_column(String(16), default="chosen")
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)


class InboxItem(IdMixin, Base):
    """One message in a neighbour's in-app inbox (a mention, a reminder, an honour, a win, an order update).

    ``dedupe_key`` is unique per user, so a consumer delivering the same thing twice adds one item. An
    item written from a message key (``message_key`` with ``message_params``) is rendered in the
    reader's locale when read; ``title`` and ``body`` keep its zh-CN text as written (and are all that
    older items have)."""

    __tablename__ = "inbox_items"

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(String(500), default="")
    message_key: Mapped[str | None] = mapped_column(String(80))
    message_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    link: Mapped[str | None] = mapped_column(String(255))
    dedupe_key: Mapped[str | None] = mapped_column(String(191))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("user_id", "dedupe_key"),
        Index("ix_inbox_items_user_id_id", "user_id", "id"),
        Index("ix_inbox_items_user_id_read_at", "user_id", "read_at"),
    )
