"""System posts: what other domains announce becomes a post in the community's feed, by event type name
(the community domain sits below them and never imports them; payload keys per EVENT_CONTRACTS).

- ``group_order.progressed``: a post when a group order first passes half and four fifths of its threshold;
  ``group_order.reached``: the threshold reached, with its delivery promise (once per group order).
- ``lottery.drawn``: the winners, @mentioned, in each winner's community.
- ``referral.honoured``: the recommender's honour ("恭喜@张哥 ..."), the referrer @mentioned.
- ``live.session_started``: "正在直播" in every community of a pre-heat campaign of that session (the feed
  knows a session only through the campaigns planned for it; sessions without one post nothing).

Every post is keyed by its source (``dedupe_key``), so a redelivered event adds nothing and an @mention
reaches the inbox once. All of them are bridged to the community's WeCom group robot.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from linli.community.feed import posts, preheat
from linli.community.models import Community, Membership
from linli.core.consumers import Consumer
from linli.core.events import Event

CONSUMER = "community.feed_system_posts"
GROUP_PROGRESSED, GROUP_REACHED = "group_order.progressed", "group_order.reached"
LOTTERY_DRAWN = "lottery.drawn"
HONOURED = "referral.honoured"
SESSION_STARTED = "live.session_started"
MILESTONES = (50, 80)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def _community_ok(session: AsyncSession, community_id: int | None) -> bool:
    if community_id is None:
        return False
    community = await session.get(Community, community_id)
    return community is not None and community.archived_at is None


async def _on_progress(session: AsyncSession, event: Event) -> None:
    p = event.payload or {}
    units, threshold, group_id = _int(p.get("units")), _int(p.get("threshold")), _int(p.get("group_order_id"))
    if units is None or not threshold or group_id is None or p.get("reached"):
        return
    if not await _community_ok(session, event.community_id):
        return
    assert event.community_id is not None
    passed = [m for m in MILESTONES if units * 100 >= threshold * m]
    if not passed:
        return
    milestone = passed[-1]
    left = max(threshold - units, 0)
    await posts.publish_post(
        session,
        community_id=event.community_id,
        text=f"【拼团进度】{p.get('community_name', '')}拼团进度 {units}/{threshold} 份,已过{milestone}%,"
        f"还差 {left} 份就能免费送到小区自提点!",
        kind="system",
        label="group",
        session_id=event.session_id,
        dedupe_key=f"group_progress:{group_id}:{milestone}",
        bridge=True,
    )


async def _on_reached(session: AsyncSession, event: Event) -> None:
    p = event.payload or {}
    group_id = _int(p.get("group_order_id"))
    if group_id is None or not await _community_ok(session, event.community_id):
        return
    assert event.community_id is not None
    promise = str(p.get("promise_text") or "")
    await posts.publish_post(
        session,
        community_id=event.community_id,
        text=f"【成团】{p.get('community_name', '')}拼团成团啦!"
        f"已拼 {p.get('units', '')} 份(满 {p.get('threshold', '')} 份)。"
        + (f"\n{promise}" if promise else ""),
        kind="system",
        label="group",
        session_id=event.session_id,
        dedupe_key=f"group_reached:{group_id}",
        bridge=True,
    )


async def _on_lottery(session: AsyncSession, event: Event) -> None:
    p = event.payload or {}
    lottery_id = _int(p.get("lottery_id"))
    winners = [u for u in (p.get("winner_user_ids") or []) if _int(u) is not None]
    if lottery_id is None or not winners:
        return
    names = await posts.names_of(session, winners)
    by_community: dict[int, list[int]] = {}
    for user_id in winners:
        membership = await session.get(Membership, user_id)
        if membership is not None:
            by_community.setdefault(membership.community_id, []).append(user_id)
    prize = str(p.get("prize_name") or "")
    for community_id, here in by_community.items():
        if not await _community_ok(session, community_id):
            continue
        await posts.publish_post(
            session,
            community_id=community_id,
            text="【开奖】直播间抽奖:恭喜"
            + " ".join(f"@{names.get(u, '')}" for u in here)
            + f" 抽中{prize}!",
            kind="system",
            label="lottery",
            session_id=event.session_id,
            mention_ids=here,
            dedupe_key=f"lottery:{lottery_id}:{community_id}",
            bridge=True,
        )


async def _on_honoured(session: AsyncSession, event: Event) -> None:
    p = event.payload or {}
    referrer = _int(p.get("referrer_id")) or event.user_id
    community_id = _int(p.get("community_id")) or event.community_id
    if referrer is None or not await _community_ok(session, community_id):
        return
    assert community_id is not None
    name = str(p.get("referrer_name") or (await posts.names_of(session, [referrer])).get(referrer, ""))
    text = str(p.get("text") or f"恭喜@{name}成为本周的'社区美食推荐官'!")
    if f"@{name}" not in text:
        text = f"@{name} {text}"
    await posts.publish_post(
        session,
        community_id=community_id,
        text="【荣誉】" + text,
        kind="system",
        label="honour",
        session_id=event.session_id,
        mention_ids=[referrer],
        dedupe_key=f"honour:{referrer}:{p.get('week', event.id)}",
        bridge=True,
    )


async def _on_started(session: AsyncSession, event: Event) -> None:
    if event.session_id is None:
        return
    for campaign in await preheat.campaigns_for_session(session, event.session_id):
        for community_id in campaign.community_ids:
            if not await _community_ok(session, community_id):
                continue
            await posts.publish_post(
                session,
                community_id=community_id,
                text=f"【直播中】{campaign.session_title},点击进入直播间,边看边买!",
                kind="system",
                label="live",
                session_id=campaign.session_id,
                session_title=campaign.session_title,
                session_start=campaign.session_start,
                campaign_id=campaign.id,
                dedupe_key=f"live_started:{event.session_id}:{community_id}",
                bridge=True,
            )


_HANDLERS = {
    GROUP_PROGRESSED: _on_progress,
    GROUP_REACHED: _on_reached,
    LOTTERY_DRAWN: _on_lottery,
    HONOURED: _on_honoured,
    SESSION_STARTED: _on_started,
}


async def _on_event(session: AsyncSession, event: Event) -> None:
    handler = _HANDLERS.get(event.type)
    if handler is not None:
        await handler(session, event)


def system_posts_consumer() -> Consumer:
    # From the end of the log: a new install should not flood feeds with last month's announcements.
    return Consumer(name=CONSUMER, handler=_on_event, types=frozenset(_HANDLERS), from_beginning=False)
