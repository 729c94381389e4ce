"""Live sessions and their lineups."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from linli.catalog.models import Product
from linli.core.db import Base, BigId, IdMixin, TimestampMixin
from linli.identity.models import User


class SessionStatus(enum.StrEnum):
    draft = "draft"
    scheduled = "scheduled"
    live = "live"
    ended = "ended"


class LiveSession(IdMixin, TimestampMixin, Base):
    __tablename__ = "live_sessions"

    title: Mapped[str] = mapped_column(String(60), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    cover_path: Mapped[str | None] = mapped_column(String(255))
    host_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    scheduled_start: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=SessionStatus.draft.value)
    push_url: Mapped[str] = mapped_column(String(500), default="")
    playback_url: Mapped[str] = mapped_column(String(500), default="")
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    archived_at: Mapped[datetime | None]

    host: Mapped[User | None] = relationship(lazy="selectin")
    lineup: Mapped[list[LineupItem]] = relationship(
        back_populates="session", lazy="selectin", order_by="LineupItem.position"
    )
    communities: Mapped[list[SessionCommunity]] = relationship(lazy="selectin", cascade="all, delete-orphan")

    __table_args__ = (
        CheckConstraint("status IN ('draft', 'scheduled', 'live', 'ended')", name="status_known"),
    )

    @property
    def cover_url(self) -> str | None:
        return f"/media/{self.cover_path}" if self.cover_path else None

    @property
    def current_lineup(self) -> list[LineupItem]:
        """The items on offer, in display order; items archived after sales are left out."""
        return sorted((i for i in self.lineup if i.archived_at is None), key=lambda i: (i.position, i.id))


class SessionCommunity(Base):
    """Communities a session is aimed at; a session with none is for every community."""

    __tablename__ = "live_session_communities"

    session_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("live_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    community_id: Mapped[int] = mapped_column(BigId, ForeignKey("communities.id"), primary_key=True)


class LineupItem(IdMixin, TimestampMixin, Base):
    __tablename__ = "lineup_items"

    session_id: Mapped[int] = mapped_column(BigId, ForeignKey("live_sessions.id"), index=True)
    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("products.id"), index=True)
    live_price_fen: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    sold: Mapped[int] = mapped_column(Integer, default=0)
    per_user_limit: Mapped[int] = mapped_column(Integer, default=10)
    sale_starts_at: Mapped[datetime | None]
    sale_ends_at: Mapped[datetime | None]
    position: Mapped[int] = mapped_column(Integer, default=0)
    archived_at: Mapped[datetime | None]

    session: Mapped[LiveSession] = relationship(back_populates="lineup")
    product: Mapped[Product] = relationship(lazy="joined")

    __table_args__ = (
        UniqueConstraint("session_id", "product_id"),
        CheckConstraint("live_price_fen >= 0", name="live_price_not_negative"),
        CheckConstraint("stock >= 0 AND reserved >= 0 AND sold >= 0", name="counts_not_negative"),
        # The no-oversell invariant, enforced by the database whatever the code does.
        CheckConstraint("reserved + sold <= stock", name="no_oversell"),
        CheckConstraint("per_user_limit >= 1", name="per_user_limit_positive"),
        CheckConstraint(
            "sale_ends_at IS NULL OR sale_starts_at IS NULL OR sale_ends_at > sale_starts_at",
            name="sale_window_ordered",
        ),
    )

    @property
    def stock_left(self) -> int:
        return self.stock - self.reserved - self.sold
