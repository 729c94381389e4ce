"""group orders, their contributions and history, session settings, delivery batches, pickup codes

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "delivery_batches",
        sa.Column("session_id", BIG_ID, nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("created_by", BIG_ID, nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_by", BIG_ID, nullable=True),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("arrived_by", BIG_ID, nullable=True),
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('planned', 'dispatched', 'arrived')", name=op.f("ck_delivery_batches_state_known")
        ),
        sa.ForeignKeyConstraint(
            ["arrived_by"], ["users.id"], name=op.f("fk_delivery_batches_arrived_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_delivery_batches_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["dispatched_by"], ["users.id"], name=op.f("fk_delivery_batches_dispatched_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["live_sessions.id"], name=op.f("fk_delivery_batches_session_id_live_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_batches")),
    )
    with op.batch_alter_table("delivery_batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_batches_session_id"), ["session_id"], unique=False)

    op.create_table(
        "groupbuy_settings",
        sa.Column("session_id", BIG_ID, nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("deliver_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cutoff_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("below_policy", sa.String(length=16), nullable=False),
        sa.Column("delivery_fee_fen", sa.Integer(), nullable=False),
        sa.Column("collect_fee", sa.Boolean(), nullable=False),
        sa.Column("fallback_store_id", BIG_ID, nullable=True),
        sa.Column("updated_by", BIG_ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "below_policy IN ('deliver', 'store_pickup', 'refund')",
            name=op.f("ck_groupbuy_settings_policy_known"),
        ),
        sa.CheckConstraint("delivery_fee_fen >= 0", name=op.f("ck_groupbuy_settings_fee_not_negative")),
        sa.CheckConstraint(
            "threshold BETWEEN 1 AND 100000", name=op.f("ck_groupbuy_settings_threshold_range")
        ),
        sa.ForeignKeyConstraint(
            ["fallback_store_id"], ["stores.id"], name=op.f("fk_groupbuy_settings_fallback_store_id_stores")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["live_sessions.id"], name=op.f("fk_groupbuy_settings_session_id_live_sessions")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["users.id"], name=op.f("fk_groupbuy_settings_updated_by_users")
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_groupbuy_settings")),
    )
    op.create_table(
        "group_orders",
        sa.Column("session_id", BIG_ID, nullable=False),
        sa.Column("community_id", BIG_ID, nullable=False),
        sa.Column("community_name", sa.String(length=60), nullable=False),
        sa.Column("pickup_point_id", BIG_ID, nullable=True),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("reached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("batch_id", BIG_ID, nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('free_delivery', 'delivery_fee', 'store_pickup', 'refunded')",
            name=op.f("ck_group_orders_outcome_known"),
        ),
        sa.CheckConstraint(
            "state IN ('collecting', 'reached', 'closed', 'dispatched', 'delivered')",
            name=op.f("ck_group_orders_state_known"),
        ),
        sa.CheckConstraint("units >= 0", name=op.f("ck_group_orders_units_not_negative")),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["delivery_batches.id"], name=op.f("fk_group_orders_batch_id_delivery_batches")
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["communities.id"], name=op.f("fk_group_orders_community_id_communities")
        ),
        sa.ForeignKeyConstraint(
            ["pickup_point_id"],
            ["pickup_points.id"],
            name=op.f("fk_group_orders_pickup_point_id_pickup_points"),
        ),
        sa.ForeignKeyConstraint(
            ["session_id"], ["live_sessions.id"], name=op.f("fk_group_orders_session_id_live_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_orders")),
        sa.UniqueConstraint(
            "session_id", "community_id", name=op.f("uq_group_orders_session_id_community_id")
        ),
    )
    with op.batch_alter_table("group_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_group_orders_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_group_orders_community_id"), ["community_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_group_orders_session_id"), ["session_id"], unique=False)

    op.create_table(
        "pickup_codes",
        sa.Column("order_id", BIG_ID, nullable=False),
        sa.Column("code", sa.String(length=6), nullable=False),
        sa.Column("place", sa.String(length=24), nullable=False),
        sa.Column("open_code", sa.String(length=6), nullable=True),
        sa.Column("units_total", sa.Integer(), nullable=False),
        sa.Column("units_picked", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('open', 'done', 'void')", name=op.f("ck_pickup_codes_status_known")),
        sa.CheckConstraint(
            "units_picked >= 0 AND units_picked <= units_total",
            name=op.f("ck_pickup_codes_picked_within_total"),
        ),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_pickup_codes_order_id_orders")),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_pickup_codes")),
        sa.UniqueConstraint("place", "open_code", name=op.f("uq_pickup_codes_place_open_code")),
    )
    with op.batch_alter_table("pickup_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pickup_codes_place"), ["place"], unique=False)

    op.create_table(
        "pickups",
        sa.Column("order_id", BIG_ID, nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("verified_by", BIG_ID, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.CheckConstraint("units > 0", name=op.f("ck_pickups_units_positive")),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_pickups_order_id_orders")),
        sa.ForeignKeyConstraint(["verified_by"], ["users.id"], name=op.f("fk_pickups_verified_by_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pickups")),
    )
    with op.batch_alter_table("pickups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pickups_order_id"), ["order_id"], unique=False)

    op.create_table(
        "group_order_changes",
        sa.Column("group_order_id", BIG_ID, nullable=False),
        sa.Column("from_state", sa.String(length=12), nullable=True),
        sa.Column("to_state", sa.String(length=12), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", BIG_ID, nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_group_order_changes_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["group_order_id"],
            ["group_orders.id"],
            name=op.f("fk_group_order_changes_group_order_id_group_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_order_changes")),
    )
    with op.batch_alter_table("group_order_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_group_order_changes_group_order_id"), ["group_order_id"], unique=False
        )

    op.create_table(
        "group_order_contributions",
        sa.Column("order_id", BIG_ID, nullable=False),
        sa.Column("group_order_id", BIG_ID, nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uncounted_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("units > 0", name=op.f("ck_group_order_contributions_units_positive")),
        sa.ForeignKeyConstraint(
            ["group_order_id"],
            ["group_orders.id"],
            name=op.f("fk_group_order_contributions_group_order_id_group_orders"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_group_order_contributions_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_group_order_contributions")),
    )
    with op.batch_alter_table("group_order_contributions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_group_order_contributions_group_order_id"), ["group_order_id"], unique=False
        )

    op.create_table(
        "groupbuy_delivery_fees",
        sa.Column("order_id", BIG_ID, nullable=False),
        sa.Column("group_order_id", BIG_ID, nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("collected_by", BIG_ID, nullable=True),
        sa.Column("collected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('waived', 'due', 'collected')", name=op.f("ck_groupbuy_delivery_fees_status_known")
        ),
        sa.CheckConstraint("amount_fen >= 0", name=op.f("ck_groupbuy_delivery_fees_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["collected_by"], ["users.id"], name=op.f("fk_groupbuy_delivery_fees_collected_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["group_order_id"],
            ["group_orders.id"],
            name=op.f("fk_groupbuy_delivery_fees_group_order_id_group_orders"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_groupbuy_delivery_fees_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_groupbuy_delivery_fees")),
    )
    with op.batch_alter_table("groupbuy_delivery_fees", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_groupbuy_delivery_fees_group_order_id"), ["group_order_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("groupbuy_delivery_fees", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_groupbuy_delivery_fees_group_order_id"))

    op.drop_table("groupbuy_delivery_fees")
    with op.batch_alter_table("group_order_contributions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_order_contributions_group_order_id"))

    op.drop_table("group_order_contributions")
    with op.batch_alter_table("group_order_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_order_changes_group_order_id"))

    op.drop_table("group_order_changes")
    with op.batch_alter_table("pickups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pickups_order_id"))

    op.drop_table("pickups")
    with op.batch_alter_table("pickup_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pickup_codes_place"))

    op.drop_table("pickup_codes")
    with op.batch_alter_table("group_orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_orders_session_id"))
        batch_op.drop_index(batch_op.f("ix_group_orders_community_id"))
        batch_op.drop_index(batch_op.f("ix_group_orders_batch_id"))

    op.drop_table("group_orders")
    op.drop_table("groupbuy_settings")
    with op.batch_alter_table("delivery_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_batches_session_id"))

    op.drop_table("delivery_batches")
