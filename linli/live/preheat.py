"""Pre-heat campaigns (预热) seen from the live domain: planning one for an upcoming session (the feed in
the community domain stores and publishes it; this side knows the session and hands down its id, title and
start) and its reach, which adds the session's reservations per community to the feed's views, viewers
and guesses. Live sits above community, so it may import it; the feed never imports live."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from linli.community.feed import posts, preheat
from linli.community.feed.models import FeedCampaign
from linli.core.clock import as_utc
from linli.core.errors import Conflict
from linli.identity.models import User
from linli.live import reservations
from linli.live.models import LiveSession, SessionStatus


class SessionNotUpcoming(Conflict):
    """Campaigns are planned for a scheduled session that has not started."""


async def plan(
    session: AsyncSession,
    live_session: LiveSession,
    actor: User,
    *,
    title: str,
    community_ids: list[int],
    items: list[preheat.ItemPlan],
) -> FeedCampaign:
    """Plan a campaign for ``live_session`` in ``community_ids`` (default: the communities the session is
    aimed at); see ``community.feed.preheat.plan_campaign`` for the checks and the timers."""
    if live_session.status != SessionStatus.scheduled.value or live_session.archived_at is not None:
        raise SessionNotUpcoming("pre-heat a scheduled session before it starts", status=live_session.status)
    if not community_ids:
        community_ids = [c.community_id for c in live_session.communities]
    return await preheat.plan_campaign(
        session,
        actor=actor,
        session_id=live_session.id,
        session_title=live_session.title,
        session_start=as_utc(live_session.scheduled_start),
        title=title,
        community_ids=community_ids,
        items=items,
    )


async def reach(session: AsyncSession, campaign: FeedCampaign) -> list[dict[str, Any]]:
    """Per community of the campaign: posts, impressions (views), distinct viewers, guesses, the session's
    reservations by its members, its active neighbours and the share of them who saw the campaign."""
    rows = await preheat.campaign_reach(session, campaign)
    reservers = await reservations.reserver_ids(session, campaign.session_id)
    where = await posts.communities_of_users(session, reservers)
    per_community: dict[int, int] = {}
    for community_id in where.values():
        per_community[community_id] = per_community.get(community_id, 0) + 1
    return [
        {
            "community_id": r.community_id,
            "community_name": r.community_name,
            "posts": r.posts,
            "views": r.views,
            "viewers": r.viewers,
            "guesses": r.guesses,
            "reservations": per_community.get(r.community_id, 0),
            "active": r.active,
            "active_reached": r.active_reached,
            "reached_share": round(r.reached_share, 4),
        }
        for r in rows
    ]
