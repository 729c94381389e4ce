"""Event types the groupbuy domain appends to the log (see /work/wt/EVENT_CONTRACTS.md for payloads), and
the other domains' event types it reacts to (by name: it may import orders, but names are the contract)."""

from __future__ import annotations

OPENED = "group_order.opened"
PROGRESSED = "group_order.progressed"
REACHED = "group_order.reached"
FELL_BELOW = "group_order.fell_below"
CLOSED = "group_order.closed"
DISPATCHED = "group_order.dispatched"
DELIVERED = "group_order.delivered"
SETTINGS_CHANGED = "groupbuy.settings_changed"
BATCH_CREATED = "delivery_batch.created"
BATCH_DISPATCHED = "delivery_batch.dispatched"
BATCH_ARRIVED = "delivery_batch.arrived"
PICKUP_VERIFIED = "pickup.verified"
# A delivery fee's transitions (see ``models.FeeStatus``); payload {"order_id", "amount_fen", ...}.
FEE_DUE = "groupbuy.fee_due"
FEE_COLLECTED = "groupbuy.fee_collected"  # in cash by the leader at pickup
FEE_PAID = "groupbuy.fee_paid"  # online; + "payment_id", "provider"
FEE_CANCELLED = "groupbuy.fee_cancelled"  # its order was refunded before it was paid
FEE_REFUND_STARTED = "groupbuy.fee_refund_started"  # + "payment_id", "refund_id"
FEE_REFUNDED = "groupbuy.fee_refunded"  # + "refund_id"
FEE_REFUND_FAILED = "groupbuy.fee_refund_failed"  # + "refund_id": it is paid online again

# What the groupbuy consumer reads.
ORDER_PAID = "order.paid"
ORDER_REFUNDED = "order.refunded"
ORDER_CANCELLED = "order.cancelled"
ORDER_EXPIRED = "order.expired"
SESSION_ENDED = "live.session_ended"
