"""Share (即分享): invite codes, share links, attribution, posters, recommender honours, leaderboards."""

from __future__ import annotations

from linli.core.runtime import Runtime


def register_background(runtime: Runtime) -> None:
    """The attribution consumer (orders paid and refunded, logins), the posters drawn on payment, and the
    month-end close timer."""
    from linli.referral.leaderboard import CLOSE_MONTH, close_month_job
    from linli.referral.tasks import CONSUMER, PRERENDER, attribution_consumer, poster_prerender_consumer

    if CONSUMER not in runtime.consumers.consumers:
        runtime.consumers.add(attribution_consumer())
    if PRERENDER not in runtime.consumers.consumers:
        runtime.consumers.add(poster_prerender_consumer(runtime))
    if CLOSE_MONTH not in runtime.jobs.handlers:
        runtime.jobs.add(CLOSE_MONTH, close_month_job)


async def shutdown_background(runtime: Runtime) -> None:
    """Stop the process that draws posters ahead of time (what it has not drawn is drawn on demand)."""
    from linli.referral.tasks import PRERENDER, Prerenderer

    prerenderer = runtime.extras.get(PRERENDER)
    if isinstance(prerenderer, Prerenderer):
        prerenderer.close()
