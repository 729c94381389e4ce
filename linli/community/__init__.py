"""Stores, residential communities, pickup points, memberships, each neighbour's inbox, and the community
feed (posts, pre-heat campaigns, testimonials, the WeCom group-robot bridge: ``community.feed``)."""

from __future__ import annotations

from linli.core.runtime import Runtime


def _include_inbox_routes() -> None:
    """The inbox's and the feed's JSON routes and pages join the domain's routers, which the app includes."""
    from linli.community import api, inbox_api, inbox_pages, pages
    from linli.community.feed import api as feed_api
    from linli.community.feed import pages as feed_pages

    # Appended as plain routes (not an included router) so the domain router lists only APIRoutes.
    api.router.routes.extend(inbox_api.router.routes)
    api.router.routes.extend(feed_api.router.routes)
    pages.router.routes.extend(inbox_pages.router.routes)
    pages.router.routes.extend(feed_pages.router.routes)


_include_inbox_routes()


def register_background(runtime: Runtime) -> None:
    """The feed's timers (pre-heat publications, guess reveals, WeCom sends) and consumers (system posts
    from other domains' events, review eligibility from ``order.completed``, the WeCom outbox)."""
    from linli.community.feed import preheat, reviews, system, wecom

    jobs = {
        preheat.PUBLISH_JOB: preheat.publish_item_job,
        preheat.REVEAL_JOB: preheat.reveal_topic_job,
        wecom.SEND_JOB: wecom.send_job(runtime.settings),
    }
    for kind, handler in jobs.items():
        if kind not in runtime.jobs.handlers:
            runtime.jobs.add(kind, handler, serial=kind == wecom.SEND_JOB)
    for consumer in (
        system.system_posts_consumer(),
        reviews.eligibility_consumer(),
        wecom.bridge_consumer(runtime.settings),
    ):
        if consumer.name not in runtime.consumers.consumers:
            runtime.consumers.add(consumer)
