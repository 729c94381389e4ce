"""live room: comments, moderation, sensitive words, shared room state

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 19:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "live_sensitive_words",
        sa.Column("word", sa.String(length=50), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_live_sensitive_words_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_sensitive_words")),
        sa.UniqueConstraint("word", name=op.f("uq_live_sensitive_words_word")),
    )
    op.create_table(
        "live_comments",
        sa.Column("session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("anonymous_id", sa.String(length=64), nullable=True),
        sa.Column("text", sa.String(length=400), nullable=False),
        sa.Column("reply_to_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["deleted_by_id"], ["users.id"], name=op.f("fk_live_comments_deleted_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["reply_to_id"], ["live_comments.id"], name=op.f("fk_live_comments_reply_to_id_live_comments")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["live_sessions.id"],
            name=op.f("fk_live_comments_session_id_live_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_live_comments_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_comments")),
    )
    with op.batch_alter_table("live_comments", schema=None) as batch_op:
        batch_op.create_index("ix_live_comments_session_id_id", ["session_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_live_comments_user_id"), ["user_id"], unique=False)

    op.create_table(
        "live_moderations",
        sa.Column("session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("anonymous_id", sa.String(length=64), nullable=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("actor_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.CheckConstraint("kind IN ('mute', 'ban')", name=op.f("ck_live_moderations_kind_known")),
        sa.CheckConstraint(
            "user_id IS NOT NULL OR anonymous_id IS NOT NULL", name=op.f("ck_live_moderations_has_subject")
        ),
        sa.ForeignKeyConstraint(["actor_id"], ["users.id"], name=op.f("fk_live_moderations_actor_id_users")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["live_sessions.id"],
            name=op.f("fk_live_moderations_session_id_live_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_live_moderations_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_moderations")),
    )
    with op.batch_alter_table("live_moderations", schema=None) as batch_op:
        batch_op.create_index("ix_live_moderations_session_id_kind", ["session_id", "kind"], unique=False)

    op.create_table(
        "live_rooms",
        sa.Column("session_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("pinned_item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("like_count", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("seq >= 0 AND like_count >= 0", name=op.f("ck_live_rooms_counts_not_negative")),
        sa.ForeignKeyConstraint(
            ["pinned_item_id"],
            ["lineup_items.id"],
            name=op.f("fk_live_rooms_pinned_item_id_lineup_items"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["live_sessions.id"],
            name=op.f("fk_live_rooms_session_id_live_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_live_rooms")),
    )


def downgrade() -> None:
    op.drop_table("live_rooms")
    with op.batch_alter_table("live_moderations", schema=None) as batch_op:
        batch_op.drop_index("ix_live_moderations_session_id_kind")

    op.drop_table("live_moderations")
    with op.batch_alter_table("live_comments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_live_comments_user_id"))
        batch_op.drop_index("ix_live_comments_session_id_id")

    op.drop_table("live_comments")
    op.drop_table("live_sensitive_words")
