"""Payments of orders through providers: the sandbox processor and WeChat Pay API v3, their
notifications (verified, deduplicated, safe in any order) and refunds."""

from __future__ import annotations

from linli.core.runtime import Runtime


def register_background(runtime: Runtime) -> None:
    """The sandbox processor's notification deliveries and refunds at providers (durable jobs)."""
    from linli.orders.payments.tasks import register

    register(runtime)
