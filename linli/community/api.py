"""Community JSON API: operators manage stores, communities and pickup points; neighbours find a community
and join it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community import service
from linli.community.schemas import (
    CommunityCreate,
    CommunityPage,
    CommunityPublic,
    CommunityPublicPage,
    CommunityRead,
    CommunityUpdate,
    LeaderRead,
    MembershipChange,
    MembershipSource,
    MyCommunity,
    PickupPointCreate,
    PickupPointPage,
    PickupPointRead,
    PickupPointUpdate,
    StoreCreate,
    StorePage,
    StoreRead,
    StoreUpdate,
)
from linli.core.deps import SessionDep
from linli.identity.deps import CurrentUser, OperatorUser

router = APIRouter()
STORES = "/api/v1/admin/stores"
COMMUNITIES = "/api/v1/admin/communities"
POINTS = "/api/v1/admin/pickup-points"

Q = Annotated[str, Query(max_length=100)]
Offset = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)]


# -- stores ---------------------------------------------------------------------------------------------


@router.get(STORES, tags=["community: operator"])
async def list_stores(
    session: SessionDep,
    operator: OperatorUser,
    q: Q = "",
    include_archived: bool = False,
    offset: Offset = 0,
    limit: Limit = 20,
) -> StorePage:
    """Stores, newest first; ``q`` searches name, address and district."""
    rows, total = await service.list_stores(
        session, q=q, include_archived=include_archived, offset=offset, limit=limit
    )
    return StorePage(
        items=[StoreRead.model_validate(s) for s in rows], total=total, offset=offset, limit=limit
    )


@router.post(STORES, status_code=201, tags=["community: operator"])
async def create_store(session: SessionDep, operator: OperatorUser, body: StoreCreate) -> StoreRead:
    """Add a store."""
    return StoreRead.model_validate(await service.create_store(session, body, actor_id=operator.id))


@router.get(STORES + "/{store_id}", tags=["community: operator"])
async def get_store(session: SessionDep, operator: OperatorUser, store_id: int) -> StoreRead:
    """One store, archived or not."""
    return StoreRead.model_validate(await service.get_store(session, store_id))


@router.patch(STORES + "/{store_id}", tags=["community: operator"])
async def update_store(
    session: SessionDep, operator: OperatorUser, store_id: int, body: StoreUpdate
) -> StoreRead:
    """Change some fields of a store."""
    return StoreRead.model_validate(await service.update_store(session, store_id, body, actor_id=operator.id))


@router.post(STORES + "/{store_id}/archive", tags=["community: operator"])
async def archive_store(session: SessionDep, operator: OperatorUser, store_id: int) -> StoreRead:
    """Archive a store."""
    return StoreRead.model_validate(await service.archive_store(session, store_id, actor_id=operator.id))


@router.post(STORES + "/{store_id}/unarchive", tags=["community: operator"])
async def unarchive_store(session: SessionDep, operator: OperatorUser, store_id: int) -> StoreRead:
    """Restore an archived store."""
    return StoreRead.model_validate(await service.unarchive_store(session, store_id, actor_id=operator.id))


# -- communities ----------------------------------------------------------------------------------------


@router.get(COMMUNITIES, tags=["community: operator"])
async def list_communities(
    session: SessionDep,
    operator: OperatorUser,
    q: Q = "",
    include_archived: bool = False,
    offset: Offset = 0,
    limit: Limit = 20,
) -> CommunityPage:
    """Communities with all their pickup points, newest first; ``q`` searches name, address and district."""
    rows, total = await service.list_communities(
        session, q=q, include_archived=include_archived, offset=offset, limit=limit
    )
    return CommunityPage(
        items=[CommunityRead.model_validate(c) for c in rows], total=total, offset=offset, limit=limit
    )


@router.post(COMMUNITIES, status_code=201, tags=["community: operator"])
async def create_community(
    session: SessionDep, operator: OperatorUser, body: CommunityCreate
) -> CommunityRead:
    """Add a residential community."""
    return CommunityRead.model_validate(await service.create_community(session, body, actor_id=operator.id))


@router.get(COMMUNITIES + "/{community_id}", tags=["community: operator"])
async def get_community(session: SessionDep, operator: OperatorUser, community_id: int) -> CommunityRead:
    """One community with its pickup points, archived or not."""
    return CommunityRead.model_validate(await service.get_community(session, community_id))


@router.patch(COMMUNITIES + "/{community_id}", tags=["community: operator"])
async def update_community(
    session: SessionDep, operator: OperatorUser, community_id: int, body: CommunityUpdate
) -> CommunityRead:
    """Change some fields of a community."""
    return CommunityRead.model_validate(
        await service.update_community(session, community_id, body, actor_id=operator.id)
    )


@router.post(COMMUNITIES + "/{community_id}/archive", tags=["community: operator"])
async def archive_community(session: SessionDep, operator: OperatorUser, community_id: int) -> CommunityRead:
    """Hide a community from neighbours."""
    return CommunityRead.model_validate(
        await service.archive_community(session, community_id, actor_id=operator.id)
    )


@router.post(COMMUNITIES + "/{community_id}/unarchive", tags=["community: operator"])
async def unarchive_community(
    session: SessionDep, operator: OperatorUser, community_id: int
) -> CommunityRead:
    """Restore an archived community."""
    return CommunityRead.model_validate(
        await service.unarchive_community(session, community_id, actor_id=operator.id)
    )


# -- pickup points --------------------------------------------------------------------------------------


@router.get(POINTS, tags=["community: operator"])
async def list_pickup_points(
    session: SessionDep,
    operator: OperatorUser,
    q: Q = "",
    community_id: int | None = None,
    include_archived: bool = False,
    offset: Offset = 0,
    limit: Limit = 20,
) -> PickupPointPage:
    """Pickup points, newest first, optionally of one community; ``q`` searches name and address."""
    rows, total = await service.list_pickup_points(
        session,
        q=q,
        community_id=community_id,
        include_archived=include_archived,
        offset=offset,
        limit=limit,
    )
    return PickupPointPage(
        items=[PickupPointRead.model_validate(p) for p in rows], total=total, offset=offset, limit=limit
    )


@router.post(POINTS, status_code=201, tags=["community: operator"])
async def create_pickup_point(
    session: SessionDep, operator: OperatorUser, body: PickupPointCreate
) -> PickupPointRead:
    """Add a pickup point: 404 for an unknown community, 422 for a leader without the leader role."""
    return PickupPointRead.model_validate(
        await service.create_pickup_point(session, body, actor_id=operator.id)
    )


@router.get(POINTS + "/{pickup_point_id}", tags=["community: operator"])
async def get_pickup_point(
    session: SessionDep, operator: OperatorUser, pickup_point_id: int
) -> PickupPointRead:
    """One pickup point, archived or not."""
    return PickupPointRead.model_validate(await service.get_pickup_point(session, pickup_point_id))


@router.patch(POINTS + "/{pickup_point_id}", tags=["community: operator"])
async def update_pickup_point(
    session: SessionDep, operator: OperatorUser, pickup_point_id: int, body: PickupPointUpdate
) -> PickupPointRead:
    """Change some fields of a pickup point; ``leader_id: null`` removes its leader."""
    return PickupPointRead.model_validate(
        await service.update_pickup_point(session, pickup_point_id, body, actor_id=operator.id)
    )


@router.post(POINTS + "/{pickup_point_id}/archive", tags=["community: operator"])
async def archive_pickup_point(
    session: SessionDep, operator: OperatorUser, pickup_point_id: int
) -> PickupPointRead:
    """Close a pickup point."""
    return PickupPointRead.model_validate(
        await service.archive_pickup_point(session, pickup_point_id, actor_id=operator.id)
    )


@router.post(POINTS + "/{pickup_point_id}/unarchive", tags=["community: operator"])
async def unarchive_pickup_point(
    session: SessionDep, operator: OperatorUser, pickup_point_id: int
) -> PickupPointRead:
    """Reopen a closed pickup point."""
    return PickupPointRead.model_validate(
        await service.unarchive_pickup_point(session, pickup_point_id, actor_id=operator.id)
    )


@router.get("/api/v1/admin/leaders", tags=["community: operator"])
async def list_leaders(session: SessionDep, operator: OperatorUser) -> list[LeaderRead]:
    """Users who may lead a pickup point (holders of the leader role)."""
    return [
        LeaderRead(id=u.id, name=u.display_name, phone=u.phone) for u in await service.list_leaders(session)
    ]


# -- neighbours -----------------------------------------------------------------------------------------


@router.get("/api/v1/communities", tags=["community"])
async def list_open_communities(
    session: SessionDep, q: Q = "", offset: Offset = 0, limit: Limit = 20
) -> CommunityPublicPage:
    """Communities a neighbour can choose, with their open pickup points; ``q`` searches name, address and
    district."""
    rows, total = await service.list_open_communities(session, q=q, offset=offset, limit=limit)
    return CommunityPublicPage(
        items=[CommunityPublic.model_validate(c) for c in rows], total=total, offset=offset, limit=limit
    )


@router.get("/api/v1/communities/{community_id}", tags=["community"])
async def read_community(session: SessionDep, community_id: int) -> CommunityPublic:
    """One open community with its open pickup points."""
    return CommunityPublic.model_validate(
        await service.get_community(session, community_id, include_archived=False)
    )


@router.get("/api/v1/me/community", tags=["community"])
async def my_community(session: SessionDep, user: CurrentUser) -> MyCommunity:
    """The logged-in neighbour's community, or ``{"community": null}``."""
    return await _my_community(session, user.id)


@router.put("/api/v1/me/community", tags=["community"])
async def choose_community(session: SessionDep, user: CurrentUser, body: MembershipChange) -> MyCommunity:
    """Join a community (or move to another one: a neighbour belongs to one at a time)."""
    await service.join_community(session, user.id, body.community_id, MembershipSource.chosen)
    return await _my_community(session, user.id)


async def _my_community(session: AsyncSession, user_id: int) -> MyCommunity:
    membership = await service.membership_of(session, user_id)
    if membership is None:
        return MyCommunity(community=None)
    community = await service.get_community(session, membership.community_id)
    return MyCommunity(
        community=CommunityPublic.model_validate(community),
        source=MembershipSource(membership.source),
        joined_at=membership.joined_at,
    )
