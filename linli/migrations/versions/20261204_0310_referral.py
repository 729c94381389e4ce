"""referral: invite codes, bindings, conversions, honours, the rewards ledger and settings

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 03:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "referral_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("last_touch", sa.Boolean(), nullable=False),
        sa.Column("top_n", sa.Integer(), nullable=False),
        sa.Column("reward_template_ids", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", BIG_ID, nullable=True),
        sa.CheckConstraint("top_n BETWEEN 0 AND 50", name=op.f("ck_referral_settings_top_n_in_range")),
        sa.CheckConstraint("window_days BETWEEN 1 AND 90", name=op.f("ck_referral_settings_window_in_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_settings")),
    )
    op.create_table(
        "referral_bindings",
        sa.Column("sharer_id", BIG_ID, nullable=False),
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("user_id", BIG_ID, nullable=True),
        sa.Column("anonymous_id", sa.String(length=64), nullable=True),
        sa.Column("session_id", BIG_ID, nullable=True),
        sa.Column("product_id", BIG_ID, nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("refused_reason", sa.String(length=32), nullable=True),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'converted', 'superseded', 'refused')",
            name=op.f("ck_referral_bindings_status_known"),
        ),
        sa.CheckConstraint(
            "user_id IS NOT NULL OR anonymous_id IS NOT NULL", name=op.f("ck_referral_bindings_has_visitor")
        ),
        sa.ForeignKeyConstraint(
            ["sharer_id"], ["users.id"], name=op.f("fk_referral_bindings_sharer_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_referral_bindings_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_bindings")),
    )
    with op.batch_alter_table("referral_bindings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referral_bindings_anonymous_id"), ["anonymous_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_referral_bindings_sharer_id"), ["sharer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_referral_bindings_user_id"), ["user_id"], unique=False)

    op.create_table(
        "referral_honours",
        sa.Column("referrer_id", BIG_ID, nullable=False),
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("community_id", BIG_ID, nullable=True),
        sa.Column("conversions", sa.Integer(), nullable=False),
        sa.Column("honoured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_referral_honours_community_id_communities")
        ),
        sa.ForeignKeyConstraint(
            ["referrer_id"],
            ["users.id"],
            name=op.f("fk_referral_honours_referrer_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_honours")),
        sa.UniqueConstraint("referrer_id", "week", name=op.f("uq_referral_honours_referrer_id_week")),
    )
    op.create_table(
        "referral_invite_codes",
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_referral_invite_codes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_referral_invite_codes")),
        sa.UniqueConstraint("code", name=op.f("uq_referral_invite_codes_code")),
    )
    op.create_table(
        "referral_leaderboard_closes",
        sa.Column("community_id", BIG_ID, nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("winners", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_referral_leaderboard_closes_community_id_communities"),
        ),
        sa.PrimaryKeyConstraint("community_id", "month", name=op.f("pk_referral_leaderboard_closes")),
    )
    op.create_table(
        "referral_rewards",
        sa.Column("community_id", BIG_ID, nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("conversions", sa.Integer(), nullable=False),
        sa.Column("revenue_fen", sa.Integer(), nullable=False),
        sa.Column("coupon_template_id", BIG_ID, nullable=True),
        sa.Column("coupon_id", BIG_ID, nullable=True),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.CheckConstraint("rank >= 1", name=op.f("ck_referral_rewards_rank_positive")),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_referral_rewards_community_id_communities")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_referral_rewards_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_rewards")),
        sa.UniqueConstraint(
            "community_id", "month", "rank", name=op.f("uq_referral_rewards_community_id_month_rank")
        ),
        sa.UniqueConstraint(
            "community_id", "month", "user_id", name=op.f("uq_referral_rewards_community_id_month_user_id")
        ),
    )
    with op.batch_alter_table("referral_rewards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referral_rewards_user_id"), ["user_id"], unique=False)

    op.create_table(
        "referral_conversions",
        sa.Column("binding_id", BIG_ID, nullable=False),
        sa.Column("referrer_id", BIG_ID, nullable=False),
        sa.Column("referee_id", BIG_ID, nullable=False),
        sa.Column("order_id", BIG_ID, nullable=False),
        sa.Column("session_id", BIG_ID, nullable=True),
        sa.Column("community_id", BIG_ID, nullable=True),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("revenue_fen", sa.Integer(), nullable=False),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reversed_reason", sa.String(length=64), nullable=True),
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.CheckConstraint("revenue_fen >= 0", name=op.f("ck_referral_conversions_revenue_not_negative")),
        sa.ForeignKeyConstraint(
            ["binding_id"],
            ["referral_bindings.id"],
            name=op.f("fk_referral_conversions_binding_id_referral_bindings"),
        ),
        sa.ForeignKeyConstraint(
            ["community_id"],
            ["communities.id"],
            name=op.f("fk_referral_conversions_community_id_communities"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_referral_conversions_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["referee_id"], ["users.id"], name=op.f("fk_referral_conversions_referee_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["referrer_id"], ["users.id"], name=op.f("fk_referral_conversions_referrer_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_conversions")),
        sa.UniqueConstraint("order_id", name=op.f("uq_referral_conversions_order_id")),
        sa.UniqueConstraint("referee_id", name=op.f("uq_referral_conversions_referee_id")),
    )
    with op.batch_alter_table("referral_conversions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_referral_conversions_community_id_month", ["community_id", "month"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_referral_conversions_referrer_id"), ["referrer_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("referral_conversions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_conversions_referrer_id"))
        batch_op.drop_index("ix_referral_conversions_community_id_month")

    op.drop_table("referral_conversions")
    with op.batch_alter_table("referral_rewards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_rewards_user_id"))

    op.drop_table("referral_rewards")
    op.drop_table("referral_leaderboard_closes")
    op.drop_table("referral_invite_codes")
    op.drop_table("referral_honours")
    with op.batch_alter_table("referral_bindings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_bindings_user_id"))
        batch_op.drop_index(batch_op.f("ix_referral_bindings_sharer_id"))
        batch_op.drop_index(batch_op.f("ix_referral_bindings_anonymous_id"))

    op.drop_table("referral_bindings")
    op.drop_table("referral_settings")
