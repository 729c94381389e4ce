"""Recommender honours: when a referred neighbour pays, the referrer's community hears of it.

"恭喜@张哥成为本周的'社区美食推荐官'!" goes out at most once per referrer per ISO week (Asia/Shanghai; the
unique ``(referrer_id, week)`` row decides, also between concurrent deliveries) — as a system notice in the
room where the friend bought while it is live, into the referrer's inbox, and as ``referral.honoured``
for the community feed. Later conversions that week are counted on the same row.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community import inbox
from linli.community.models import Community
from linli.core.clock import to_local
from linli.core.events import Subjects, record_event
from linli.core.i18n import Message, catalog
from linli.identity.models import User
from linli.live import service as live_service
from linli.live.models import SessionStatus
from linli.live.room import service as room_service
from linli.referral import events
from linli.referral.models import Conversion, Honour

# Inbox texts are message keys: this domain's catalog must be there wherever they are written (the
# worker process serves no pages).
catalog.load_dir(Path(__file__).parent / "locales")

TITLE = "社区美食推荐官"  # zh-CN, as the room's notice and the feed's post say it
INBOX_KIND = "honour"


def week_of(conversion: Conversion) -> str:
    year, week, _ = to_local(conversion.converted_at).isocalendar()
    return f"{year}-W{week:02d}"


def honour_text(name: str) -> str:
    return f"恭喜@{name}成为本周的'{TITLE}'!"


async def honour_conversion(
    session: AsyncSession, conversion: Conversion, referrer: User, community: Community | None
) -> Honour:
    """Count the conversion in the referrer's week; the week's first one is announced (see module)."""
    week = week_of(conversion)
    existing = await session.scalar(
        select(Honour).where(Honour.referrer_id == referrer.id, Honour.week == week)
    )
    if existing is None:
        honour = Honour(
            referrer_id=referrer.id,
            week=week,
            community_id=conversion.community_id,
            conversions=1,
            honoured_at=conversion.converted_at,
        )
        try:
            async with session.begin_nested():
                session.add(honour)
        except IntegrityError:
            existing = await session.scalar(
                select(Honour).where(Honour.referrer_id == referrer.id, Honour.week == week)
            )
            assert existing is not None
        else:
            await _announce(session, honour, conversion, referrer, community)
            return honour
    await session.execute(
        update(Honour).where(Honour.id == existing.id).values(conversions=Honour.conversions + 1)
    )
    await session.refresh(existing)
    return existing


async def uncount_conversion(session: AsyncSession, conversion: Conversion) -> None:
    """A reversed conversion leaves the referrer's weekly count (the title, once announced, stays)."""
    await session.execute(
        update(Honour)
        .where(
            Honour.referrer_id == conversion.referrer_id,
            Honour.week == week_of(conversion),
            Honour.conversions > 0,
        )
        .values(conversions=Honour.conversions - 1)
    )


async def _announce(
    session: AsyncSession, honour: Honour, conversion: Conversion, referrer: User, community: Community | None
) -> None:
    name = referrer.display_name
    text = honour_text(name)
    live_session_id = None
    if conversion.session_id is not None:
        live_session = await live_service.get_session(session, conversion.session_id)
        if live_session.status == SessionStatus.live:
            live_session_id = live_session.id
            room_service.post_system_notice(
                session,
                live_session.id,
                text,
                kind="honour",
                subjects=Subjects(user_id=referrer.id, community_id=conversion.community_id),
            )
    await inbox.notify(
        session,
        user_id=referrer.id,
        kind=INBOX_KIND,
        message=Message(
            "referral.inbox.honour",
            {"name": name, "honour": Message("referral.inbox.honour_title"), "week": honour.week},
        ),
        link="/referral/leaderboard",
        dedupe_key=f"referral.honour:{honour.week}",
    )
    record_event(
        session,
        events.HONOURED,
        subjects=Subjects(
            user_id=referrer.id, community_id=conversion.community_id, session_id=live_session_id
        ),
        payload={
            "referrer_id": referrer.id,
            "referrer_name": name,
            "community_id": conversion.community_id,
            "community_name": community.name if community is not None else None,
            "week": honour.week,
            "conversions": honour.conversions,
            "text": text,
            "order_id": conversion.order_id,
        },
    )
