"""Rows for live tests, inserted straight through the models (no other domain's services needed)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from linli.catalog.models import Product, ProductImage
from linli.community.models import Community
from linli.core.clock import utcnow
from linli.identity.models import Role, User
from linli.live.models import LineupItem, LiveSession, SessionCommunity, SessionStatus
from tests.factories import make_user

_names = itertools.count(1)


async def make_product(
    session: AsyncSession,
    *,
    name: str | None = None,
    store_price_fen: int = 3000,
    archived: bool = False,
    photo: str | None = None,
) -> Product:
    product = Product(
        name=name or f"商品{next(_names)}",
        store_price_fen=store_price_fen,
        archived_at=utcnow() if archived else None,
        images=[],
    )
    if photo:
        product.images = [
            ProductImage(path=photo, content_type="image/jpeg", width=10, height=10, size_bytes=100)
        ]
    session.add(product)
    await session.flush()
    return product


async def make_community(
    session: AsyncSession, *, name: str | None = None, archived: bool = False
) -> Community:
    community = Community(
        name=name or f"小区{next(_names)}",
        address="上海市某路1号",
        archived_at=utcnow() if archived else None,
        pickup_points=[],
    )
    session.add(community)
    await session.flush()
    return community


async def make_host(session: AsyncSession, *, nickname: str = "主播小麦") -> User:
    return await make_user(session, nickname=nickname, roles=(Role.host,))


async def make_session(
    session: AsyncSession,
    *,
    title: str | None = None,
    status: SessionStatus = SessionStatus.draft,
    host: User | None = None,
    scheduled_start: datetime | None = None,
    started_at: datetime | None = None,
    community_ids: tuple[int, ...] = (),
    archived: bool = False,
    playback_url: str = "",
) -> LiveSession:
    now = utcnow()
    live_session = LiveSession(
        title=title or f"直播{next(_names)}",
        host=host,
        scheduled_start=scheduled_start or now + timedelta(days=1),
        status=status.value,
        playback_url=playback_url,
        started_at=started_at or (now if status in (SessionStatus.live, SessionStatus.ended) else None),
        ended_at=now if status is SessionStatus.ended else None,
        archived_at=now if archived else None,
        lineup=[],
        communities=[SessionCommunity(community_id=c) for c in community_ids],
    )
    session.add(live_session)
    await session.flush()
    return live_session


async def make_lineup_item(
    session: AsyncSession,
    *,
    live_session: LiveSession,
    product: Product | None = None,
    live_price_fen: int = 2500,
    stock: int = 5000,
    reserved: int = 0,
    sold: int = 0,
    per_user_limit: int = 10,
    position: int = 0,
) -> LineupItem:
    product = product or await make_product(session, store_price_fen=max(live_price_fen, 3000))
    item = LineupItem(
        session=live_session,
        product=product,
        live_price_fen=live_price_fen,
        stock=stock,
        reserved=reserved,
        sold=sold,
        per_user_limit=per_user_limit,
        position=position,
    )
    session.add(item)
    await session.flush()
    return item
