"""The community feed's tables: posts, likes, comments, views, mutes and invited tasters; pre-heat
campaigns with their timed items and guessing topics; testimonials; the WeCom group-robot bridge."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from linli.core.clock import utcnow
from linli.core.db import Base, BigId, IdMixin

_USER_FK = "users.id"
_COMMUNITY_FK = "communities.id"


class FeedPost(IdMixin, Base):
    """One post in one community's feed. ``kind``: ``post`` (brand, leader, taster), ``system`` (from an
    event), ``teaser`` / ``topic`` / ``reveal`` (a pre-heat campaign), ``taster`` (a KOC's review on a
    task), ``testimonial``. ``dedupe_key`` makes a post published from an at-least-once source appear once.

    ``session_id`` with the denormalised ``session_title`` / ``session_start`` links a post to a live
    session (captured when it was planned: the feed sits below the live domain and never reads it)."""

    __tablename__ = "feed_posts"

    community_id: Mapped[int] = mapped_column(BigId, ForeignKey(_COMMUNITY_FK, ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(BigId, ForeignKey(_USER_FK, ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16), default="post")
    label: Mapped[str] = mapped_column(String(16), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    image_path: Mapped[str | None] = mapped_column(String(255))
    video_url: Mapped[str | None] = mapped_column(String(500))
    session_id: Mapped[int | None] = mapped_column(BigId)
    session_title: Mapped[str] = mapped_column(String(60), default="")
    session_start: Mapped[datetime | None]
    campaign_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("feed_campaigns.id", ondelete="SET NULL")
    )
    topic_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("feed_topics.id", ondelete="SET NULL"))
    like_count: Mapped[int] = mapped_column(Integer, default=0)
    comment_count: Mapped[int] = mapped_column(Integer, default=0)
    view_count: Mapped[int] = mapped_column(Integer, default=0)
    pinned_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    dedupe_key: Mapped[str | None] = mapped_column(String(191), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_feed_posts_community_id_id", "community_id", "id"),
        Index("ix_feed_posts_campaign_id", "campaign_id"),
        CheckConstraint("like_count >= 0 AND comment_count >= 0 AND view_count >= 0", name="counts_positive"),
    )


class FeedLike(IdMixin, Base):
    __tablename__ = "feed_likes"

    post_id: Mapped[int] = mapped_column(BigId, ForeignKey("feed_posts.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey(_USER_FK, ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("post_id", "user_id"),)


class FeedComment(IdMixin, Base):
    __tablename__ = "feed_comments"

    post_id: Mapped[int] = mapped_column(BigId, ForeignKey("feed_posts.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey(_USER_FK, ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None]


class FeedView(IdMixin, Base):
    """A distinct viewer of a post (a user, else an anonymous device id): reach counts these."""

    __tablename__ = "feed_views"

    post_id: Mapped[int] = mapped_column(BigId, ForeignKey("feed_posts.id", ondelete="CASCADE"))
    viewer: Mapped[str] = mapped_column(String(80))
    user_id: Mapped[int | None] = mapped_column(BigId)
    community_id: Mapped[int] = mapped_column(BigId)
    campaign_id: Mapped[int | None] = mapped_column(BigId, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("post_id", "viewer"),)


class FeedMute(IdMixin, Base):
    """A neighbour kept from commenting in the feeds until ``until`` (by staff); lifted early by deletion."""

    __tablename__ = "feed_mutes"

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey(_USER_FK, ondelete="CASCADE"), index=True)
    until: Mapped[datetime]
    reason: Mapped[str] = mapped_column(String(120), default="")
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey(_USER_FK, ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FeedTaster(IdMixin, Base):
    """An invited taster (试吃官, KOC) of a community: may post there, gets pre-heat tasks."""

    __tablename__ = "feed_tasters"

    community_id: Mapped[int] = mapped_column(BigId, ForeignKey(_COMMUNITY_FK, ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey(_USER_FK, ondelete="CASCADE"), index=True)
    invited_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey(_USER_FK, ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("community_id", "user_id"),)


class FeedCampaign(IdMixin, Base):
    """A pre-heat campaign (预热) for one live session in some communities, planned by an operator."""

    __tablename__ = "feed_campaigns"

    session_id: Mapped[int] = mapped_column(BigId, index=True)
    session_title: Mapped[str] = mapped_column(String(60))
    session_start: Mapped[datetime]
    title: Mapped[str] = mapped_column(String(60))
    community_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    created_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey(_USER_FK, ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    cancelled_at: Mapped[datetime | None]


class FeedTopic(IdMixin, Base):
    """A guessing topic: the answer (``|``-separated alternatives) stays server-side until ``reveal_at``.
    Prize: every correct guesser (``prize_mode = all``) or ``winner_count`` drawn fairly with the committed
    ``seed`` (its hash is public from the start, the seed from the reveal)."""

    __tablename__ = "feed_topics"

    campaign_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("feed_campaigns.id", ondelete="CASCADE")
    )
    session_id: Mapped[int | None] = mapped_column(BigId)
    question: Mapped[str] = mapped_column(String(200))
    answer: Mapped[str] = mapped_column(String(200))
    reveal_text: Mapped[str] = mapped_column(String(500), default="")
    reveal_at: Mapped[datetime]
    prize_mode: Mapped[str] = mapped_column(String(8), default="all")
    winner_count: Mapped[int] = mapped_column(Integer, default=0)
    prize_name: Mapped[str] = mapped_column(String(60), default="")
    coupon_template_id: Mapped[int | None] = mapped_column(BigId)
    seed: Mapped[str] = mapped_column(String(64))
    seed_hash: Mapped[str] = mapped_column(String(64))
    revealed_at: Mapped[datetime | None]
    guess_count: Mapped[int] = mapped_column(Integer, default=0)
    correct_count: Mapped[int] = mapped_column(Integer, default=0)
    winner_ids: Mapped[list[int]] = mapped_column(JSON, default=list)

    __table_args__ = (CheckConstraint("prize_mode IN ('all', 'draw')", name="prize_mode_known"),)


class FeedGuess(IdMixin, Base):
    __tablename__ = "feed_guesses"

    topic_id: Mapped[int] = mapped_column(BigId, ForeignKey("feed_topics.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey(_USER_FK, ondelete="CASCADE"))
    community_id: Mapped[int] = mapped_column(BigId)
    text: Mapped[str] = mapped_column(String(100))
    correct: Mapped[bool | None]
    won_rank: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("topic_id", "user_id"),)


class FeedCampaignItem(IdMixin, Base):
    """One timed publication of a campaign: a ``teaser``, a ``topic`` (and its reveal, at the topic's
    ``reveal_at``) or a ``taster`` task. A durable job publishes it at ``publish_at`` in every community."""

    __tablename__ = "feed_campaign_items"

    campaign_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("feed_campaigns.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    publish_at: Mapped[datetime]
    text: Mapped[str] = mapped_column(Text, default="")
    video_url: Mapped[str | None] = mapped_column(String(500))
    image_path: Mapped[str | None] = mapped_column(String(255))
    topic_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("feed_topics.id", ondelete="SET NULL"))
    taster_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    published_at: Mapped[datetime | None]

    __table_args__ = (CheckConstraint("kind IN ('teaser', 'topic', 'taster')", name="kind_known"),)


class TasterTask(IdMixin, Base):
    """A taster's preview task in a campaign: post your review (it is labelled as a taster's)."""

    __tablename__ = "feed_taster_tasks"

    item_id: Mapped[int] = mapped_column(BigId, ForeignKey("feed_campaign_items.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey(_USER_FK, ondelete="CASCADE"), index=True)
    community_id: Mapped[int] = mapped_column(BigId)
    brief: Mapped[str] = mapped_column(Text, default="")
    post_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("feed_posts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("item_id", "user_id"),)


class ReviewEligibility(IdMixin, Base):
    """A product a neighbour picked up (from ``order.completed``): they may review it once."""

    __tablename__ = "review_eligibility"

    order_id: Mapped[int] = mapped_column(BigId)
    product_id: Mapped[int] = mapped_column(BigId)
    product_name: Mapped[str] = mapped_column(String(120), default="")
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey(_USER_FK, ondelete="CASCADE"), index=True)
    community_id: Mapped[int | None] = mapped_column(BigId)
    completed_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("order_id", "product_id"),)


class Review(IdMixin, Base):
    """A testimonial (rating 1–5, text, optional photo); shown once an operator approved it."""

    __tablename__ = "reviews"

    order_id: Mapped[int] = mapped_column(BigId)
    product_id: Mapped[int] = mapped_column(BigId, index=True)
    product_name: Mapped[str] = mapped_column(String(120), default="")
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey(_USER_FK, ondelete="CASCADE"), index=True)
    community_id: Mapped[int | None] = mapped_column(BigId)
    rating: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(String(500))
    photo_path: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey(_USER_FK, ondelete="SET NULL"))

    __table_args__ = (
        UniqueConstraint("order_id", "product_id"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
        CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status_known"),
    )


class WecomRobot(IdMixin, Base):
    """A community's WeCom group robot. ``webhook_url`` is a secret: never shown whole after saving."""

    __tablename__ = "wecom_robots"

    community_id: Mapped[int] = mapped_column(
        BigId, ForeignKey(_COMMUNITY_FK, ondelete="CASCADE"), unique=True
    )
    webhook_url: Mapped[str] = mapped_column(String(500))
    enabled: Mapped[bool] = mapped_column(default=True)
    updated_by_id: Mapped[int | None] = mapped_column(BigId, ForeignKey(_USER_FK, ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WecomDelivery(IdMixin, Base):
    """One message for one robot (the outbox): ``pending`` until sent or given up (``failed``)."""

    __tablename__ = "wecom_deliveries"

    robot_id: Mapped[int] = mapped_column(BigId, ForeignKey("wecom_robots.id", ondelete="CASCADE"))
    post_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("feed_posts.id", ondelete="SET NULL"))
    msgtype: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    dedupe_key: Mapped[str] = mapped_column(String(191), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_wecom_deliveries_robot_id_id", "robot_id", "id"),)


class WecomAttempt(IdMixin, Base):
    """One request to a robot (the delivery log); the last minute's rows are its rate-limit window."""

    __tablename__ = "wecom_attempts"

    delivery_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("wecom_deliveries.id", ondelete="CASCADE"), index=True
    )
    robot_id: Mapped[int] = mapped_column(BigId)
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    http_status: Mapped[int | None] = mapped_column(Integer)
    errcode: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(500), default="")

    __table_args__ = (Index("ix_wecom_attempts_robot_id_attempted_at", "robot_id", "attempted_at"),)


class FeedMention(IdMixin, Base):
    """Someone @mentioned in a post: their name in the text links to them, and their inbox hears once."""

    __tablename__ = "feed_mentions"

    post_id: Mapped[int] = mapped_column(BigId, ForeignKey("feed_posts.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey(_USER_FK, ondelete="CASCADE"), index=True)

    __table_args__ = (UniqueConstraint("post_id", "user_id"),)
