"""Orders: checkout at the live price, stock reservation that never oversells, the order state machine."""

from __future__ import annotations

from linli.core.runtime import Runtime


def register_background(runtime: Runtime) -> None:
    """The durable timer that releases an unpaid order's reservation, and the payments' own work."""
    from linli.orders.tasks import EXPIRE_RESERVATION, expire_reservation_job

    runtime.jobs.add(EXPIRE_RESERVATION, expire_reservation_job)

    from linli.orders.payments import register_background as register_payments

    register_payments(runtime)
