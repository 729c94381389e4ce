"""Community test data, inserted through the models."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from linli.community.models import Community, PickupPoint, Store
from linli.core.clock import utcnow


async def make_store(
    session: AsyncSession,
    *,
    name: str = "麦香邻里·静安店",
    address: str = "南京西路 100 号",
    archived: bool = False,
) -> Store:
    store = Store(
        name=name,
        address=address,
        district="静安区",
        phone="021-6000-0000",
        opening_hours="07:00–21:00",
        archived_at=utcnow() if archived else None,
    )
    session.add(store)
    await session.flush()
    return store


async def make_community(
    session: AsyncSession,
    *,
    name: str = "梧桐苑",
    address: str = "梧桐路 88 弄",
    district: str = "徐汇区",
    archived: bool = False,
) -> Community:
    community = Community(
        name=name,
        address=address,
        district=district,
        archived_at=utcnow() if archived else None,
        pickup_points=[],
    )
    session.add(community)
    await session.flush()
    return community


async def make_pickup_point(
    session: AsyncSession,
    *,
    community: Community,
    name: str = "1 号门岗",
    address: str = "梧桐路 88 弄 1 号",
    leader_id: int | None = None,
    archived: bool = False,
) -> PickupPoint:
    point = PickupPoint(
        community=community,
        name=name,
        address=address,
        opening_hours="08:00–20:00",
        leader_id=leader_id,
        archived_at=utcnow() if archived else None,
    )
    session.add(point)
    await session.flush()
    return point
