"""Invite codes, bindings of visitors to sharers, conversions, honours, the rewards ledger and settings."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from linli.core.clock import utcnow
from linli.core.db import Base, BigId, IdMixin


class BindingStatus(enum.StrEnum):
    active = "active"  # the visitor is bound to the sharer until ``expires_at``
    converted = "converted"  # their first paid order was credited to the sharer
    superseded = "superseded"  # a later click from another sharer took over (last-touch only)
    refused = "refused"  # self-referral, a loop, the same device or phone: logged, never credited


class InviteCode(Base):
    """Each neighbour's one short invite code (unambiguous characters)."""

    __tablename__ = "referral_invite_codes"

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Binding(IdMixin, Base):
    """A visitor (anonymous id, then user once known) bound to the sharer whose link they opened."""

    __tablename__ = "referral_bindings"

    sharer_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(12))
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    anonymous_id: Mapped[str | None] = mapped_column(String(64), index=True)
    session_id: Mapped[int | None] = mapped_column(BigId)
    product_id: Mapped[int | None] = mapped_column(BigId)
    status: Mapped[str] = mapped_column(String(12), default=BindingStatus.active.value)
    refused_reason: Mapped[str | None] = mapped_column(String(32))
    bound_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("status IN ('active', 'converted', 'superseded', 'refused')", name="status_known"),
        CheckConstraint("user_id IS NOT NULL OR anonymous_id IS NOT NULL", name="has_visitor"),
    )


class Conversion(IdMixin, Base):
    """A new customer's first paid order inside their binding's window, credited to the sharer.

    One per referee and one per order (unique): a repeated or concurrent delivery of ``order.paid`` adds
    nothing. A refund sets ``reversed_at``; reversed conversions count nowhere."""

    __tablename__ = "referral_conversions"

    binding_id: Mapped[int] = mapped_column(BigId, ForeignKey("referral_bindings.id"))
    referrer_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    referee_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), unique=True)
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id"), unique=True)
    session_id: Mapped[int | None] = mapped_column(BigId)
    # The referrer's community when it happened: the leaderboard and the honour are per community.
    community_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("communities.id"))
    month: Mapped[str] = mapped_column(String(7))  # "2026-12", Asia/Shanghai
    revenue_fen: Mapped[int] = mapped_column(Integer)
    converted_at: Mapped[datetime] = mapped_column(default=utcnow)
    reversed_at: Mapped[datetime | None]
    reversed_reason: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint("revenue_fen >= 0", name="revenue_not_negative"),
        Index("ix_referral_conversions_community_id_month", "community_id", "month"),
    )


class Honour(IdMixin, Base):
    """The weekly title "社区美食推荐官": once per referrer per ISO week, later conversions counted."""

    __tablename__ = "referral_honours"

    referrer_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    week: Mapped[str] = mapped_column(String(8))  # "2026-W49"
    community_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("communities.id"))
    conversions: Mapped[int] = mapped_column(Integer, default=1)
    honoured_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("referrer_id", "week"),)


class LeaderboardClose(Base):
    """A community's month closed: the row that makes the month-end rewards happen exactly once."""

    __tablename__ = "referral_leaderboard_closes"

    community_id: Mapped[int] = mapped_column(BigId, ForeignKey("communities.id"), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    closed_at: Mapped[datetime] = mapped_column(default=utcnow)
    winners: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class Reward(IdMixin, Base):
    """The rewards ledger: one row per (community, month, rank) granted, never edited."""

    __tablename__ = "referral_rewards"

    community_id: Mapped[int] = mapped_column(BigId, ForeignKey("communities.id"))
    month: Mapped[str] = mapped_column(String(7))
    rank: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    conversions: Mapped[int] = mapped_column(Integer)
    revenue_fen: Mapped[int] = mapped_column(Integer)
    coupon_template_id: Mapped[int | None] = mapped_column(BigId)
    coupon_id: Mapped[int | None] = mapped_column(BigId)
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("community_id", "month", "rank"),
        UniqueConstraint("community_id", "month", "user_id"),
        CheckConstraint("rank >= 1", name="rank_positive"),
    )


class ReferralSettings(Base):
    """The operator's settings: one row (id 1). ``reward_template_ids[i]`` is rank i+1's coupon template."""

    __tablename__ = "referral_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_days: Mapped[int] = mapped_column(Integer, default=7)
    last_touch: Mapped[bool] = mapped_column(Boolean, default=False)
    top_n: Mapped[int] = mapped_column(Integer, default=3)
    reward_template_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(BigId)

    __table_args__ = (
        CheckConstraint("window_days BETWEEN 1 AND 90", name="window_in_range"),
        CheckConstraint("top_n BETWEEN 0 AND 50", name="top_n_in_range"),
    )
