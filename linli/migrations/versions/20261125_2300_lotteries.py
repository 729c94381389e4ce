"""lotteries: keyword lotteries, entries and winners

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "live_lotteries",
        sa.Column("session_id", BigId, nullable=False),
        sa.Column("keyword", sa.String(length=20), nullable=False),
        sa.Column("prize_name", sa.String(length=60), nullable=False),
        sa.Column("prize_coupon_template_id", BigId, nullable=True),
        sa.Column("winner_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("seed_hash", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("entry_count", sa.Integer(), nullable=True),
        sa.Column("created_by_id", BigId, nullable=True),
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.CheckConstraint("status IN ('running', 'drawn')", name=op.f("ck_live_lotteries_status_known")),
        sa.CheckConstraint("ends_at > started_at", name=op.f("ck_live_lotteries_window_ordered")),
        sa.CheckConstraint("winner_count >= 1", name=op.f("ck_live_lotteries_winner_count_positive")),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_live_lotteries_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["live_sessions.id"],
            name=op.f("fk_live_lotteries_session_id_live_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_lotteries")),
    )
    with op.batch_alter_table("live_lotteries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_live_lotteries_session_id"), ["session_id"], unique=False)

    op.create_table(
        "live_lottery_entries",
        sa.Column("lottery_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.ForeignKeyConstraint(
            ["lottery_id"],
            ["live_lotteries.id"],
            name=op.f("fk_live_lottery_entries_lottery_id_live_lotteries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_live_lottery_entries_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("lottery_id", "user_id", name=op.f("pk_live_lottery_entries")),
    )
    op.create_table(
        "live_lottery_winners",
        sa.Column("lottery_id", BigId, nullable=False),
        sa.Column("user_id", BigId, nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.CheckConstraint("rank >= 1", name=op.f("ck_live_lottery_winners_rank_positive")),
        sa.ForeignKeyConstraint(
            ["lottery_id", "user_id"],
            ["live_lottery_entries.lottery_id", "live_lottery_entries.user_id"],
            name=op.f("fk_live_lottery_winners_lottery_id_live_lottery_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("lottery_id", "user_id", name=op.f("pk_live_lottery_winners")),
        sa.UniqueConstraint("lottery_id", "rank", name=op.f("uq_live_lottery_winners_lottery_id_rank")),
    )


def downgrade() -> None:
    op.drop_table("live_lottery_winners")
    op.drop_table("live_lottery_entries")
    with op.batch_alter_table("live_lotteries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_live_lotteries_session_id"))
    op.drop_table("live_lotteries")
