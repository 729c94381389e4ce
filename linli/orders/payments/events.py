"""Event types payments append to the log."""

from __future__ import annotations

PAYMENT_CREATED = "payment.created"
PAYMENT_SUCCEEDED = "payment.succeeded"
PAYMENT_FAILED = "payment.failed"
NOTIFICATION_REJECTED = "payment.notification_rejected"
REFUND_REQUESTED = "refund.requested"
REFUND_SUCCEEDED = "refund.succeeded"
REFUND_FAILED = "refund.failed"
