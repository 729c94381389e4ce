"""Live sessions and their lineups; the room: its comments, moderation, words refused, and shared state."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from linli.catalog.models import Product
from linli.core.clock import utcnow
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


# --- the room -------------------------------------------------------------------------------------


class RoomState(Base):
    """What every app process must agree on about a room: the product pinned, the like total, and the
    last sequence number handed out to a room message (see ``live.room.publisher``)."""

    __tablename__ = "live_rooms"

    session_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("live_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    pinned_item_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("lineup_items.id", ondelete="SET NULL")
    )
    pinned_at: Mapped[datetime | None]
    like_count: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (CheckConstraint("seq >= 0 AND like_count >= 0", name="counts_not_negative"),)


class Comment(IdMixin, Base):
    """A comment in a room; ``reply_to_id`` makes it the host's answer to another comment."""

    __tablename__ = "live_comments"

    session_id: Mapped[int] = mapped_column(BigId, ForeignKey("live_sessions.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    # The poster's browser (anonymous id cookie): a ban covers the device as well as the account.
    anonymous_id: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(String(400))
    reply_to_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("live_comments.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]
    deleted_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")
    reply_to: Mapped[Comment | None] = relationship(remote_side="Comment.id", lazy="joined", join_depth=1)

    __table_args__ = (Index("ix_live_comments_session_id_id", "session_id", "id"),)


class ModerationKind(enum.StrEnum):
    mute = "mute"
    ban = "ban"


class Moderation(IdMixin, Base):
    """A mute (until a time) or a ban (for the whole session) of a user, or of a device by its anonymous
    id; lifted by setting ``lifted_at``."""

    __tablename__ = "live_moderations"

    session_id: Mapped[int] = mapped_column(BigId, ForeignKey("live_sessions.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    anonymous_id: Mapped[str | None] = mapped_column(String(64))
    until: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(String(200), default="")
    actor_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    lifted_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_live_moderations_session_id_kind", "session_id", "kind"),
        CheckConstraint("kind IN ('mute', 'ban')", name="kind_known"),
        CheckConstraint("user_id IS NOT NULL OR anonymous_id IS NOT NULL", name="has_subject"),
    )


class SensitiveWord(IdMixin, Base):
    """A word operators refuse in comments (matched after normalising, see ``live.wordfilter``)."""

    __tablename__ = "live_sensitive_words"

    word: Mapped[str] = mapped_column(String(50), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))


# --- reservations (预约) ----------------------------------------------------------------------------


class Reservation(IdMixin, Base):
    """A neighbour's reservation of an upcoming session; cancelling sets ``cancelled_at`` and reserving
    again clears it, so the pair stays one row."""

    __tablename__ = "live_reservations"

    session_id: Mapped[int] = mapped_column(BigId, ForeignKey("live_sessions.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("session_id", "user_id"),)


# --- keyword lotteries (弹幕抽奖) -------------------------------------------------------------------


class LotteryStatus(enum.StrEnum):
    running = "running"
    drawn = "drawn"


class Lottery(IdMixin, Base):
    """A keyword lottery in a room: neighbours who comment ``keyword`` between ``started_at`` and
    ``ends_at`` enter once each; ``winner_count`` of them win ``prize_name``. ``seed`` stays secret until
    the draw; its SHA-256, ``seed_hash``, is published at the start (see ``live.lottery``)."""

    __tablename__ = "live_lotteries"

    session_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("live_sessions.id", ondelete="CASCADE"), index=True
    )
    keyword: Mapped[str] = mapped_column(String(20))
    prize_name: Mapped[str] = mapped_column(String(60))
    # A coupon template of the orders domain (higher up, so no foreign key): orders issues the coupons.
    prize_coupon_template_id: Mapped[int | None] = mapped_column(BigId)
    winner_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=LotteryStatus.running.value)
    seed: Mapped[str] = mapped_column(String(64))
    seed_hash: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    drawn_at: Mapped[datetime | None]
    entry_count: Mapped[int | None] = mapped_column(Integer)
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id"))

    __table_args__ = (
        CheckConstraint("status IN ('running', 'drawn')", name="status_known"),
        CheckConstraint("winner_count >= 1", name="winner_count_positive"),
        CheckConstraint("ends_at > started_at", name="window_ordered"),
    )


class LotteryEntry(Base):
    """One entrant of a drawn lottery: the published entry list anyone recomputes the draw from."""

    __tablename__ = "live_lottery_entries"

    lottery_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("live_lotteries.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class LotteryWinner(Base):
    """A winner, in draw order (``rank`` from 1); the database holds that a winner is an entrant and wins
    at most once."""

    __tablename__ = "live_lottery_winners"

    lottery_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        ForeignKeyConstraint(
            ["lottery_id", "user_id"],
            ["live_lottery_entries.lottery_id", "live_lottery_entries.user_id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("lottery_id", "rank"),
        CheckConstraint("rank >= 1", name="rank_positive"),
    )
