"""Every domain's tables, imported in one place for migrations and tests."""

from __future__ import annotations


def import_all_models() -> None:
    import linli.catalog.models
    import linli.community.feed.models
    import linli.community.models
    import linli.core.consumers
    import linli.core.events
    import linli.core.jobs
    import linli.core.ratelimit
    import linli.groupbuy.models
    import linli.identity.models
    import linli.live.models
    import linli.orders.models
    import linli.orders.payments.models
    import linli.referral.models  # noqa: F401
