"""Event types the orders domain appends to the log (each in the transaction of its change)."""

from __future__ import annotations

ORDER_CREATED = "order.created"
ORDER_CANCELLED = "order.cancelled"
ORDER_EXPIRED = "order.expired"
ORDER_PAID = "order.paid"
ORDER_REFUND_REQUESTED = "order.refund_requested"
ORDER_REFUNDED = "order.refunded"
ORDER_COMPLETED = "order.completed"
ORDER_FULFILMENT_CHANGED = "order.fulfilment_changed"
COUPON_TEMPLATE_CREATED = "coupon_template.created"
COUPON_TEMPLATE_UPDATED = "coupon_template.updated"
COUPON_ISSUED = "coupon.issued"
COUPON_USED = "coupon.used"
COUPON_RELEASED = "coupon.released"
