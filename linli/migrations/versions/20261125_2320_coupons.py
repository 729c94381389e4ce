"""coupons: templates and issued coupons

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
KINDS = "kind IN ('fixed', 'percent', 'free_item')"
TERMS = (
    "(kind = 'fixed' AND amount_fen > 0)"
    " OR (kind = 'percent' AND percent BETWEEN 1 AND 99)"
    " OR (kind = 'free_item' AND free_product_id IS NOT NULL)"
)


def upgrade() -> None:
    op.create_table(
        "coupon_templates",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=True),
        sa.Column("percent", sa.Integer(), nullable=True),
        sa.Column("free_product_id", BIG_ID, nullable=True),
        sa.Column("min_spend_fen", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_days", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", BIG_ID, nullable=True),
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(KINDS, name=op.f("ck_coupon_templates_kind_known")),
        sa.CheckConstraint(TERMS, name=op.f("ck_coupon_templates_terms_match_kind")),
        sa.CheckConstraint("min_spend_fen >= 0", name=op.f("ck_coupon_templates_min_spend_not_negative")),
        sa.CheckConstraint(
            "valid_until IS NOT NULL OR valid_days > 0", name=op.f("ck_coupon_templates_validity_given")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_coupon_templates_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["free_product_id"], ["products.id"], name=op.f("fk_coupon_templates_free_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_templates")),
    )

    op.create_table(
        "coupons",
        sa.Column("template_id", BIG_ID, nullable=False),
        sa.Column("user_id", BIG_ID, nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=True),
        sa.Column("percent", sa.Integer(), nullable=True),
        sa.Column("free_product_id", BIG_ID, nullable=True),
        sa.Column("min_spend_fen", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("order_id", BIG_ID, nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('available', 'locked', 'used', 'expired', 'void')",
            name=op.f("ck_coupons_status_known"),
        ),
        sa.CheckConstraint(KINDS, name=op.f("ck_coupons_kind_known")),
        sa.CheckConstraint(TERMS, name=op.f("ck_coupons_terms_match_kind")),
        sa.CheckConstraint("valid_from < valid_until", name=op.f("ck_coupons_valid_window")),
        sa.CheckConstraint(
            "status <> 'used' OR order_id IS NOT NULL", name=op.f("ck_coupons_used_by_an_order")
        ),
        sa.ForeignKeyConstraint(
            ["template_id"], ["coupon_templates.id"], name=op.f("fk_coupons_template_id_coupon_templates")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_coupons_user_id_users")),
        sa.ForeignKeyConstraint(
            ["free_product_id"], ["products.id"], name=op.f("fk_coupons_free_product_id_products")
        ),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_coupons_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint(
            "user_id", "template_id", "source", name=op.f("uq_coupons_user_id_template_id_source")
        ),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coupons_template_id"), ["template_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_coupons_user_id"), ["user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_coupons_order_id"), ["order_id"], unique=False)

    # A plain ADD COLUMN on both databases (no foreign key: SQLite would rebuild the filled orders table).
    op.add_column("orders", sa.Column("coupon_id", BIG_ID, nullable=True))
    op.create_index(op.f("ix_orders_coupon_id"), "orders", ["coupon_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_orders_coupon_id"), table_name="orders")
    op.drop_column("orders", "coupon_id")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupons_order_id"))
        batch_op.drop_index(batch_op.f("ix_coupons_user_id"))
        batch_op.drop_index(batch_op.f("ix_coupons_template_id"))
    op.drop_table("coupons")
    op.drop_table("coupon_templates")
