"""Live sessions, their lineups, and the room: its realtime channel, comments and moderation."""

from __future__ import annotations

from linli.core.runtime import Runtime


def register_background(runtime: Runtime) -> None:
    """The ``live.room`` consumer: committed room events become messages on the hub."""
    from linli.live.room.publisher import room_consumer

    if "live.room" not in runtime.consumers.consumers:
        runtime.consumers.add(room_consumer(runtime.hub))

    # The keyword lottery's draw when its window ends (a durable timer).
    from linli.live.lottery import DRAW_JOB, draw_lottery_job

    if DRAW_JOB not in runtime.jobs.handlers:
        runtime.jobs.add(DRAW_JOB, draw_lottery_job)

    # Reservations: the reminder timer, and the consumer that moves it and announces going live.
    from linli.live.reservations import CONSUMER, REMIND, remind_job, reservations_consumer

    if REMIND not in runtime.jobs.handlers:
        runtime.jobs.add(REMIND, remind_job)
    if CONSUMER not in runtime.consumers.consumers:
        runtime.consumers.add(reservations_consumer())


async def shutdown_background(runtime: Runtime) -> None:
    """Close this process's open rooms (their hub subscriptions and batchers) before the hub goes."""
    from linli.live.room.fanout import RoomRegistry

    registry = runtime.extras.get("live.rooms")
    if isinstance(registry, RoomRegistry):
        await registry.close()


def _include_reservation_routes() -> None:
    """The reservation routes join the domain's API router, which the app includes."""
    from linli.live import api, reservation_api

    api.router.include_router(reservation_api.router)


_include_reservation_routes()


def _include_console_routes() -> None:
    """The host console's panels (most-asked questions, figures) join the domain's API router."""
    from linli.live import api, console_api

    api.router.include_router(console_api.router)


_include_console_routes()


def _include_lottery_routes() -> None:
    """The keyword lotteries' routes (host: start, draw, list; anyone: read and verify) join the API."""
    from linli.live import api, lottery_api

    api.router.include_router(lottery_api.router)


_include_lottery_routes()


def _include_preheat_and_reach() -> None:
    """The room's sensitive words also guard the community feed (``core.wordfilter``'s source); the
    pre-heat campaigns' planning and reach pages, and the room's testimonials, join the routers."""
    from linli.core.wordfilter import register_source
    from linli.live import api, comments, pages, preheat_api, preheat_pages, testimonials

    register_source(comments.word_filter)
    api.router.include_router(preheat_api.router)
    pages.router.include_router(preheat_pages.router)
    testimonials.register()


_include_preheat_and_reach()
