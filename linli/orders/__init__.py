"""Orders: checkout at the live price, stock reservation that never oversells, the order state machine."""

from __future__ import annotations

from linli.core.runtime import Runtime


def register_background(runtime: Runtime) -> None:
    """The durable timer that releases an unpaid order's reservation, and the payments' own work."""
    from linli.orders.tasks import EXPIRE_RESERVATION, expire_reservation_job

    runtime.jobs.add(EXPIRE_RESERVATION, expire_reservation_job)

    from linli.orders.payments import register_background as register_payments

    register_payments(runtime)

    # The lottery's prize coupons, issued to its winners from live's ``lottery.drawn``.
    from linli.orders.coupons import CONSUMER, lottery_prize_consumer

    if CONSUMER not in runtime.consumers.consumers:
        runtime.consumers.add(lottery_prize_consumer())

    # The community feed's guessing-topic prizes, from ``feed.guess_won``.
    from linli.orders.coupons import GUESS_CONSUMER, guess_prize_consumer

    if GUESS_CONSUMER not in runtime.consumers.consumers:
        runtime.consumers.add(guess_prize_consumer())


async def shutdown_background(runtime: Runtime) -> None:
    """Place the orders still waiting in this process's checkout queue, then stop it and the payments'
    lane."""
    from linli.orders.checkout import EXTRAS_KEY, CheckoutQueue

    queue = runtime.extras.get(EXTRAS_KEY)
    if isinstance(queue, CheckoutQueue):
        await queue.close()
    from linli.core.lane import Lane
    from linli.orders.payments.api import LANE_KEY

    lane = runtime.extras.get(LANE_KEY)
    if isinstance(lane, Lane):
        await lane.close()


def _include_admin_pages() -> None:
    """The operators' order pages join the domain's page router, which the app includes."""
    from linli.orders import admin_pages, api, coupon_api, coupon_pages, pages

    pages.router.include_router(admin_pages.router)
    pages.router.include_router(coupon_pages.router)
    api.router.include_router(coupon_api.router)


_include_admin_pages()
