"""delivery fees paid online (payment purposes, fee statuses), inbox items rendered in the reader's locale

- payments.purpose ("order" or "delivery_fee"), part of the one-open-payment-per-scene index;
- refunds.cause "fee_refund";
- groupbuy_delivery_fees: statuses paid_online, refunding, refunded, cancelled; the payment, paid and
  refunded times;
- inbox_items.message_key and message_params (rows written before keep their plain text).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OPEN = sa.text("status IN ('created', 'failed')")

FEE_STATUSES_BEFORE = "status IN ('waived', 'due', 'collected')"
FEE_STATUSES = "status IN ('waived', 'due', 'collected', 'paid_online', 'refunding', 'refunded', 'cancelled')"
CAUSES_BEFORE = "cause IN ('order_refund', 'paid_after_expiry', 'not_payable')"
CAUSES = "cause IN ('order_refund', 'paid_after_expiry', 'not_payable', 'fee_refund')"


def upgrade() -> None:
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("purpose", sa.String(length=16), server_default="order", nullable=False)
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_payments_purpose_known"), "purpose IN ('order', 'delivery_fee')"
        )
        batch_op.drop_index("uq_payments_open_per_scene")
        batch_op.create_index(
            "uq_payments_open_per_scene",
            ["order_id", "purpose", "provider", "scene"],
            unique=True,
            sqlite_where=OPEN,
            postgresql_where=OPEN,
        )

    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_refunds_cause_known"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_refunds_cause_known"), CAUSES)

    with op.batch_alter_table("groupbuy_delivery_fees", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payment_id", BIG_ID, nullable=True))
        batch_op.add_column(sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_groupbuy_delivery_fees_payment_id_payments"), "payments", ["payment_id"], ["id"]
        )
        batch_op.drop_constraint(batch_op.f("ck_groupbuy_delivery_fees_status_known"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_groupbuy_delivery_fees_status_known"), FEE_STATUSES)

    with op.batch_alter_table("inbox_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_key", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("message_params", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbox_items", schema=None) as batch_op:
        batch_op.drop_column("message_params")
        batch_op.drop_column("message_key")

    # Statuses the older schema does not know go back to what it can say: a fee paid online was paid
    # (collected), one whose order was refunded is no longer due (waived).
    op.execute(
        "UPDATE groupbuy_delivery_fees SET status = 'collected' WHERE status IN ('paid_online', 'refunding')"
    )
    op.execute(
        "UPDATE groupbuy_delivery_fees SET status = 'waived' WHERE status IN ('refunded', 'cancelled')"
    )
    with op.batch_alter_table("groupbuy_delivery_fees", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_groupbuy_delivery_fees_status_known"), type_="check")
        batch_op.create_check_constraint(
            batch_op.f("ck_groupbuy_delivery_fees_status_known"), FEE_STATUSES_BEFORE
        )
        batch_op.drop_constraint(
            batch_op.f("fk_groupbuy_delivery_fees_payment_id_payments"), type_="foreignkey"
        )
        batch_op.drop_column("refunded_at")
        batch_op.drop_column("paid_at")
        batch_op.drop_column("payment_id")

    op.execute("UPDATE refunds SET cause = 'not_payable' WHERE cause = 'fee_refund'")
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_refunds_cause_known"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_refunds_cause_known"), CAUSES_BEFORE)

    # Payments of other purposes stay (their money moved), but the index goes back to one open payment
    # per order and scene: a fee payment still open beside the order's own open payment in the same
    # scene took no money, and goes.
    colliding = (
        "SELECT f.id FROM payments AS f JOIN payments AS o ON o.order_id = f.order_id"
        " AND o.provider = f.provider AND o.scene = f.scene AND o.purpose = 'order'"
        " AND o.status IN ('created', 'failed')"
        " WHERE f.purpose <> 'order' AND f.status IN ('created', 'failed')"
    )
    op.execute(f"UPDATE payment_notifications SET payment_id = NULL WHERE payment_id IN ({colliding})")
    op.execute(f"DELETE FROM payments WHERE id IN ({colliding})")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_index("uq_payments_open_per_scene")
        batch_op.drop_constraint(batch_op.f("ck_payments_purpose_known"), type_="check")
        batch_op.drop_column("purpose")
        batch_op.create_index(
            "uq_payments_open_per_scene",
            ["order_id", "provider", "scene"],
            unique=True,
            sqlite_where=OPEN,
            postgresql_where=OPEN,
        )
