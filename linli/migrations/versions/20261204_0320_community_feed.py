"""community feed, pre-heat campaigns, testimonials and the WeCom bridge

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 03:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feed_campaigns",
        sa.Column("session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("session_title", sa.String(length=60), nullable=False),
        sa.Column("session_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("title", sa.String(length=60), nullable=False),
        sa.Column("community_ids", sa.JSON(), nullable=False),
        sa.Column("created_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_feed_campaigns_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_campaigns")),
    )
    with op.batch_alter_table("feed_campaigns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feed_campaigns_session_id"), ["session_id"], unique=False)

    op.create_table(
        "feed_mutes",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=120), nullable=False),
        sa.Column("created_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_feed_mutes_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_feed_mutes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_mutes")),
    )
    with op.batch_alter_table("feed_mutes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feed_mutes_user_id"), ["user_id"], unique=False)

    op.create_table(
        "feed_tasters",
        sa.Column("community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("invited_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_feed_tasters_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invited_by_id"],
            ["users.id"],
            name=op.f("fk_feed_tasters_invited_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_feed_tasters_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_tasters")),
        sa.UniqueConstraint("community_id", "user_id", name=op.f("uq_feed_tasters_community_id_user_id")),
    )
    with op.batch_alter_table("feed_tasters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feed_tasters_user_id"), ["user_id"], unique=False)

    op.create_table(
        "review_eligibility",
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("product_name", sa.String(length=120), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_review_eligibility_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_eligibility")),
        sa.UniqueConstraint("order_id", "product_id", name=op.f("uq_review_eligibility_order_id_product_id")),
    )
    with op.batch_alter_table("review_eligibility", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_eligibility_user_id"), ["user_id"], unique=False)

    op.create_table(
        "reviews",
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("product_name", sa.String(length=120), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("photo_path", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected')", name=op.f("ck_reviews_status_known")
        ),
        sa.CheckConstraint("rating BETWEEN 1 AND 5", name=op.f("ck_reviews_rating_range")),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_reviews_decided_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_reviews_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("order_id", "product_id", name=op.f("uq_reviews_order_id_product_id")),
    )
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reviews_product_id"), ["product_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reviews_user_id"), ["user_id"], unique=False)

    op.create_table(
        "wecom_robots",
        sa.Column("community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("webhook_url", sa.String(length=500), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_wecom_robots_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"],
            ["users.id"],
            name=op.f("fk_wecom_robots_updated_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wecom_robots")),
        sa.UniqueConstraint("community_id", name=op.f("uq_wecom_robots_community_id")),
    )
    op.create_table(
        "feed_topics",
        sa.Column("campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("question", sa.String(length=200), nullable=False),
        sa.Column("answer", sa.String(length=200), nullable=False),
        sa.Column("reveal_text", sa.String(length=500), nullable=False),
        sa.Column("reveal_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prize_mode", sa.String(length=8), nullable=False),
        sa.Column("winner_count", sa.Integer(), nullable=False),
        sa.Column("prize_name", sa.String(length=60), nullable=False),
        sa.Column("coupon_template_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("seed_hash", sa.String(length=64), nullable=False),
        sa.Column("revealed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("guess_count", sa.Integer(), nullable=False),
        sa.Column("correct_count", sa.Integer(), nullable=False),
        sa.Column("winner_ids", sa.JSON(), nullable=False),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.CheckConstraint("prize_mode IN ('all', 'draw')", name=op.f("ck_feed_topics_prize_mode_known")),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["feed_campaigns.id"],
            name=op.f("fk_feed_topics_campaign_id_feed_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_topics")),
    )
    op.create_table(
        "feed_campaign_items",
        sa.Column("campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("publish_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("video_url", sa.String(length=500), nullable=True),
        sa.Column("image_path", sa.String(length=255), nullable=True),
        sa.Column("topic_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("taster_ids", sa.JSON(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.CheckConstraint(
            "kind IN ('teaser', 'topic', 'taster')", name=op.f("ck_feed_campaign_items_kind_known")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["feed_campaigns.id"],
            name=op.f("fk_feed_campaign_items_campaign_id_feed_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["topic_id"],
            ["feed_topics.id"],
            name=op.f("fk_feed_campaign_items_topic_id_feed_topics"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_campaign_items")),
    )
    with op.batch_alter_table("feed_campaign_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feed_campaign_items_campaign_id"), ["campaign_id"], unique=False)

    op.create_table(
        "feed_guesses",
        sa.Column("topic_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("text", sa.String(length=100), nullable=False),
        sa.Column("correct", sa.Boolean(), nullable=True),
        sa.Column("won_rank", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["topic_id"],
            ["feed_topics.id"],
            name=op.f("fk_feed_guesses_topic_id_feed_topics"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_feed_guesses_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_guesses")),
        sa.UniqueConstraint("topic_id", "user_id", name=op.f("uq_feed_guesses_topic_id_user_id")),
    )
    op.create_table(
        "feed_posts",
        sa.Column("community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("author_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("image_path", sa.String(length=255), nullable=True),
        sa.Column("video_url", sa.String(length=500), nullable=True),
        sa.Column("session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("session_title", sa.String(length=60), nullable=False),
        sa.Column("session_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("topic_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("like_count", sa.Integer(), nullable=False),
        sa.Column("comment_count", sa.Integer(), nullable=False),
        sa.Column("view_count", sa.Integer(), nullable=False),
        sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dedupe_key", sa.String(length=191), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.CheckConstraint(
            "like_count >= 0 AND comment_count >= 0 AND view_count >= 0",
            name=op.f("ck_feed_posts_counts_positive"),
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_feed_posts_author_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["feed_campaigns.id"],
            name=op.f("fk_feed_posts_campaign_id_feed_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_feed_posts_community_id_communities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["topic_id"],
            ["feed_topics.id"],
            name=op.f("fk_feed_posts_topic_id_feed_topics"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_posts")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_feed_posts_dedupe_key")),
    )
    with op.batch_alter_table("feed_posts", schema=None) as batch_op:
        batch_op.create_index("ix_feed_posts_campaign_id", ["campaign_id"], unique=False)
        batch_op.create_index("ix_feed_posts_community_id_id", ["community_id", "id"], unique=False)

    op.create_table(
        "feed_comments",
        sa.Column("post_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["feed_posts.id"],
            name=op.f("fk_feed_comments_post_id_feed_posts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_feed_comments_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_comments")),
    )
    with op.batch_alter_table("feed_comments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feed_comments_post_id"), ["post_id"], unique=False)

    op.create_table(
        "feed_likes",
        sa.Column("post_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["feed_posts.id"], name=op.f("fk_feed_likes_post_id_feed_posts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_feed_likes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_likes")),
        sa.UniqueConstraint("post_id", "user_id", name=op.f("uq_feed_likes_post_id_user_id")),
    )
    op.create_table(
        "feed_mentions",
        sa.Column("post_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["feed_posts.id"],
            name=op.f("fk_feed_mentions_post_id_feed_posts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_feed_mentions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_mentions")),
        sa.UniqueConstraint("post_id", "user_id", name=op.f("uq_feed_mentions_post_id_user_id")),
    )
    with op.batch_alter_table("feed_mentions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feed_mentions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "feed_taster_tasks",
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("brief", sa.Text(), nullable=False),
        sa.Column("post_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["feed_campaign_items.id"],
            name=op.f("fk_feed_taster_tasks_item_id_feed_campaign_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["feed_posts.id"],
            name=op.f("fk_feed_taster_tasks_post_id_feed_posts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_feed_taster_tasks_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_taster_tasks")),
        sa.UniqueConstraint("item_id", "user_id", name=op.f("uq_feed_taster_tasks_item_id_user_id")),
    )
    with op.batch_alter_table("feed_taster_tasks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feed_taster_tasks_user_id"), ["user_id"], unique=False)

    op.create_table(
        "feed_views",
        sa.Column("post_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("viewer", sa.String(length=80), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("community_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["feed_posts.id"], name=op.f("fk_feed_views_post_id_feed_posts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_views")),
        sa.UniqueConstraint("post_id", "viewer", name=op.f("uq_feed_views_post_id_viewer")),
    )
    with op.batch_alter_table("feed_views", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feed_views_campaign_id"), ["campaign_id"], unique=False)

    op.create_table(
        "wecom_deliveries",
        sa.Column("robot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("post_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("msgtype", sa.String(length=16), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("dedupe_key", sa.String(length=191), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["feed_posts.id"],
            name=op.f("fk_wecom_deliveries_post_id_feed_posts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["robot_id"],
            ["wecom_robots.id"],
            name=op.f("fk_wecom_deliveries_robot_id_wecom_robots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wecom_deliveries")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_wecom_deliveries_dedupe_key")),
    )
    with op.batch_alter_table("wecom_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_wecom_deliveries_robot_id_id", ["robot_id", "id"], unique=False)

    op.create_table(
        "wecom_attempts",
        sa.Column("delivery_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("robot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("errcode", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["wecom_deliveries.id"],
            name=op.f("fk_wecom_attempts_delivery_id_wecom_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wecom_attempts")),
    )
    with op.batch_alter_table("wecom_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wecom_attempts_delivery_id"), ["delivery_id"], unique=False)
        batch_op.create_index(
            "ix_wecom_attempts_robot_id_attempted_at", ["robot_id", "attempted_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("wecom_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_wecom_attempts_robot_id_attempted_at")
        batch_op.drop_index(batch_op.f("ix_wecom_attempts_delivery_id"))

    op.drop_table("wecom_attempts")
    with op.batch_alter_table("wecom_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_wecom_deliveries_robot_id_id")

    op.drop_table("wecom_deliveries")
    with op.batch_alter_table("feed_views", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feed_views_campaign_id"))

    op.drop_table("feed_views")
    with op.batch_alter_table("feed_taster_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feed_taster_tasks_user_id"))

    op.drop_table("feed_taster_tasks")
    with op.batch_alter_table("feed_mentions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feed_mentions_user_id"))

    op.drop_table("feed_mentions")
    op.drop_table("feed_likes")
    with op.batch_alter_table("feed_comments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feed_comments_post_id"))

    op.drop_table("feed_comments")
    with op.batch_alter_table("feed_posts", schema=None) as batch_op:
        batch_op.drop_index("ix_feed_posts_community_id_id")
        batch_op.drop_index("ix_feed_posts_campaign_id")

    op.drop_table("feed_posts")
    op.drop_table("feed_guesses")
    with op.batch_alter_table("feed_campaign_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feed_campaign_items_campaign_id"))

    op.drop_table("feed_campaign_items")
    op.drop_table("feed_topics")
    op.drop_table("wecom_robots")
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reviews_user_id"))
        batch_op.drop_index(batch_op.f("ix_reviews_product_id"))

    op.drop_table("reviews")
    with op.batch_alter_table("review_eligibility", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_eligibility_user_id"))

    op.drop_table("review_eligibility")
    with op.batch_alter_table("feed_tasters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feed_tasters_user_id"))

    op.drop_table("feed_tasters")
    with op.batch_alter_table("feed_mutes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feed_mutes_user_id"))

    op.drop_table("feed_mutes")
    with op.batch_alter_table("feed_campaigns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feed_campaigns_session_id"))

    op.drop_table("feed_campaigns")
