"""The community domain's verbs: stores, residential communities, pickup points, leaders and memberships.

Every verb validates first, then changes rows and appends its event in the caller's transaction; it
flushes and never commits.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, TypeVar

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, joinedload

from linli.community import events
from linli.community.models import Community, Membership, PickupPoint, Store
from linli.community.schemas import (
    CommunityCreate,
    CommunityUpdate,
    MembershipSource,
    PickupPointCreate,
    PickupPointUpdate,
    StoreCreate,
    StoreUpdate,
)
from linli.core.clock import utcnow
from linli.core.errors import Conflict, NotFound, Unprocessable
from linli.core.events import Subjects, record_event
from linli.identity.errors import UserNotFound
from linli.identity.models import Role, User, UserRole

MAX_PAGE_SIZE = 100

Row = TypeVar("Row", Store, Community, PickupPoint)


class StoreNotFound(NotFound):
    pass


class CommunityNotFound(NotFound):
    pass


class CommunityArchived(Conflict):
    pass


class PickupPointNotFound(NotFound):
    pass


class LeaderNotFound(NotFound):
    pass


class LeaderRoleMissing(Unprocessable):
    pass


# -- shared shapes of the three kinds of record -----------------------------------------------------------


async def _page(
    session: AsyncSession,
    model: type[Row],
    *,
    search: tuple[InstrumentedAttribute[str], ...],
    q: str,
    include_archived: bool,
    offset: int,
    limit: int,
    extra: tuple[Any, ...] = (),
    newest_first: bool = True,
) -> tuple[list[Row], int]:
    conditions: list[Any] = list(extra)
    if q.strip():
        conditions.append(or_(*(column.icontains(q.strip(), autoescape=True) for column in search)))
    if not include_archived:
        conditions.append(model.archived_at.is_(None))
    total = await session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0
    order = model.id.desc() if newest_first else model.id
    rows = await session.scalars(
        select(model)
        .where(*conditions)
        .order_by(order)
        .offset(max(offset, 0))
        .limit(min(max(limit, 1), MAX_PAGE_SIZE))
    )
    return list(rows.unique().all()), total


async def _apply_changes(
    session: AsyncSession,
    row: Row,
    changes: dict[str, Any],
    event_type: str,
    *,
    actor_id: int | None,
    subjects: Subjects,
) -> Row:
    """Set what differs, and record one event listing it (no event when nothing changed)."""
    changes = {k: v for k, v in changes.items() if getattr(row, k) != v}
    if not changes:
        return row
    for name, value in changes.items():
        setattr(row, name, value)
    await session.flush()
    record_event(session, event_type, actor_id=actor_id, subjects=subjects, payload={"changes": changes})
    return row


async def _set_archived(
    session: AsyncSession,
    row: Row,
    archived: bool,
    event_type: str,
    *,
    actor_id: int | None,
    subjects: Subjects,
) -> Row:
    """Archive or restore; idempotent (no event when already in that state)."""
    if (row.archived_at is not None) == archived:
        return row
    row.archived_at = utcnow() if archived else None
    await session.flush()
    record_event(session, event_type, actor_id=actor_id, subjects=subjects, payload={"id": row.id})
    return row


# -- stores ---------------------------------------------------------------------------------------------


async def create_store(session: AsyncSession, data: StoreCreate, *, actor_id: int | None) -> Store:
    """Open a store record; records ``community.store_created``."""
    store = Store(**data.model_dump())
    session.add(store)
    await session.flush()
    record_event(
        session, events.STORE_CREATED, actor_id=actor_id, payload={"store_id": store.id, "name": store.name}
    )
    return store


async def get_store(session: AsyncSession, store_id: int) -> Store:
    """The store, archived or not; StoreNotFound if missing."""
    store = await session.get(Store, store_id)
    if store is None:
        raise StoreNotFound(f"store {store_id} does not exist")
    return store


async def list_stores(
    session: AsyncSession, *, q: str = "", include_archived: bool = False, offset: int = 0, limit: int = 20
) -> tuple[list[Store], int]:
    """One page of stores, newest first; ``q`` matches name, address or district."""
    return await _page(
        session,
        Store,
        search=(Store.name, Store.address, Store.district),
        q=q,
        include_archived=include_archived,
        offset=offset,
        limit=limit,
    )


async def update_store(
    session: AsyncSession, store_id: int, data: StoreUpdate, *, actor_id: int | None
) -> Store:
    """Change some fields of a store; records ``community.store_updated`` with what changed."""
    store = await get_store(session, store_id)
    return await _apply_changes(
        session, store, data.changes(), events.STORE_UPDATED, actor_id=actor_id, subjects=Subjects()
    )


async def archive_store(session: AsyncSession, store_id: int, *, actor_id: int | None) -> Store:
    """Archive a store; idempotent."""
    store = await get_store(session, store_id)
    return await _set_archived(
        session, store, True, events.STORE_ARCHIVED, actor_id=actor_id, subjects=Subjects()
    )


async def unarchive_store(session: AsyncSession, store_id: int, *, actor_id: int | None) -> Store:
    """Restore an archived store; idempotent."""
    store = await get_store(session, store_id)
    return await _set_archived(
        session, store, False, events.STORE_UNARCHIVED, actor_id=actor_id, subjects=Subjects()
    )


# -- communities ----------------------------------------------------------------------------------------


async def create_community(
    session: AsyncSession, data: CommunityCreate, *, actor_id: int | None
) -> Community:
    """Add a residential community; records ``community.community_created``."""
    community = Community(**data.model_dump(), pickup_points=[])
    session.add(community)
    await session.flush()
    record_event(
        session,
        events.COMMUNITY_CREATED,
        actor_id=actor_id,
        subjects=Subjects(community_id=community.id),
        payload={"name": community.name, "district": community.district},
    )
    return community


async def get_community(
    session: AsyncSession, community_id: int, *, include_archived: bool = True
) -> Community:
    """The community with its pickup points; CommunityNotFound if missing (or archived, unless asked for)."""
    community = await session.get(Community, community_id)
    if community is None or (community.archived_at is not None and not include_archived):
        raise CommunityNotFound(f"community {community_id} does not exist", field="community_id")
    return community


async def list_communities(
    session: AsyncSession, *, q: str = "", include_archived: bool = False, offset: int = 0, limit: int = 20
) -> tuple[list[Community], int]:
    """One page of communities (with their pickup points), newest first; ``q`` matches name, address or
    district."""
    return await _page(
        session,
        Community,
        search=(Community.name, Community.address, Community.district),
        q=q,
        include_archived=include_archived,
        offset=offset,
        limit=limit,
    )


async def list_open_communities(
    session: AsyncSession, *, q: str = "", offset: int = 0, limit: int = 20
) -> tuple[list[Community], int]:
    """Communities neighbours can choose, in the order they were added; archived ones never."""
    return await _page(
        session,
        Community,
        search=(Community.name, Community.address, Community.district),
        q=q,
        include_archived=False,
        offset=offset,
        limit=limit,
        newest_first=False,
    )


async def community_names(session: AsyncSession) -> list[tuple[int, str, str, bool]]:
    """Every community as (id, name, district, archived), by name: the choices of a community picker."""
    rows = await session.execute(
        select(Community.id, Community.name, Community.district, Community.archived_at.is_not(None)).order_by(
            Community.name, Community.id
        )
    )
    return [(row[0], row[1], row[2], bool(row[3])) for row in rows]


async def update_community(
    session: AsyncSession, community_id: int, data: CommunityUpdate, *, actor_id: int | None
) -> Community:
    """Change some fields of a community; records ``community.community_updated`` with what changed."""
    community = await get_community(session, community_id)
    return await _apply_changes(
        session,
        community,
        data.changes(),
        events.COMMUNITY_UPDATED,
        actor_id=actor_id,
        subjects=Subjects(community_id=community.id),
    )


async def archive_community(session: AsyncSession, community_id: int, *, actor_id: int | None) -> Community:
    """Hide a community from neighbours (members keep their membership); idempotent."""
    community = await get_community(session, community_id)
    return await _set_archived(
        session,
        community,
        True,
        events.COMMUNITY_ARCHIVED,
        actor_id=actor_id,
        subjects=Subjects(community_id=community.id),
    )


async def unarchive_community(session: AsyncSession, community_id: int, *, actor_id: int | None) -> Community:
    """Restore an archived community; idempotent."""
    community = await get_community(session, community_id)
    return await _set_archived(
        session,
        community,
        False,
        events.COMMUNITY_UNARCHIVED,
        actor_id=actor_id,
        subjects=Subjects(community_id=community.id),
    )


# -- leaders --------------------------------------------------------------------------------------------


async def get_leader(session: AsyncSession, user_id: int) -> User:
    """An active user holding the leader role; LeaderNotFound (404) or LeaderRoleMissing (422) otherwise."""
    user = await session.get(User, user_id)
    if user is None:
        raise LeaderNotFound(f"user {user_id} does not exist", field="leader_id")
    if not user.is_active or not user.has_role(Role.leader):
        raise LeaderRoleMissing(
            f"user {user_id} ({user.display_name}) does not hold the leader role", field="leader_id"
        )
    return user


async def list_leaders(session: AsyncSession) -> list[User]:
    """Active users holding the leader role, by id (the choices for a pickup point's leader)."""
    rows = await session.scalars(
        select(User)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == Role.leader.value, User.is_active.is_(True))
        .order_by(User.id)
    )
    return list(rows.unique().all())


# -- pickup points --------------------------------------------------------------------------------------


async def _open_community(session: AsyncSession, community_id: int) -> Community:
    community = await get_community(session, community_id)
    if community.archived_at is not None:
        raise CommunityArchived(
            f"community {community_id} ({community.name}) is archived; restore it first", field="community_id"
        )
    return community


async def create_pickup_point(
    session: AsyncSession, data: PickupPointCreate, *, actor_id: int | None
) -> PickupPoint:
    """Add a pickup point to an open community, optionally with its leader (who must hold the leader role);
    records ``community.pickup_point_created``."""
    community = await _open_community(session, data.community_id)
    leader = await get_leader(session, data.leader_id) if data.leader_id is not None else None
    point = PickupPoint(
        community=community,
        leader=leader,
        name=data.name,
        address=data.address,
        opening_hours=data.opening_hours,
    )
    session.add(point)
    await session.flush()
    record_event(
        session,
        events.PICKUP_POINT_CREATED,
        actor_id=actor_id,
        subjects=Subjects(community_id=community.id, user_id=point.leader_id),
        payload={"pickup_point_id": point.id, "name": point.name, "leader_id": point.leader_id},
    )
    return point


async def get_pickup_point(session: AsyncSession, pickup_point_id: int) -> PickupPoint:
    """The pickup point, archived or not; PickupPointNotFound if missing."""
    point = await session.get(PickupPoint, pickup_point_id)
    if point is None:
        raise PickupPointNotFound(f"pickup point {pickup_point_id} does not exist")
    return point


async def list_pickup_points(
    session: AsyncSession,
    *,
    q: str = "",
    include_archived: bool = False,
    offset: int = 0,
    limit: int = 20,
    community_id: int | None = None,
) -> tuple[list[PickupPoint], int]:
    """One page of pickup points, newest first, optionally of one community; ``q`` matches name or address."""
    extra = (PickupPoint.community_id == community_id,) if community_id is not None else ()
    return await _page(
        session,
        PickupPoint,
        search=(PickupPoint.name, PickupPoint.address),
        q=q,
        include_archived=include_archived,
        offset=offset,
        limit=limit,
        extra=extra,
    )


async def update_pickup_point(
    session: AsyncSession, pickup_point_id: int, data: PickupPointUpdate, *, actor_id: int | None
) -> PickupPoint:
    """Change some fields; a new community must be open and a new leader must hold the leader role
    (``leader_id: null`` removes the leader). Records ``community.pickup_point_updated`` with what changed."""
    point = await get_pickup_point(session, pickup_point_id)
    changes = {k: v for k, v in data.changes().items() if getattr(point, k) != v}
    if not changes:
        return point
    # Everything is checked before anything is set.
    community = await _open_community(session, changes["community_id"]) if "community_id" in changes else None
    leader = await get_leader(session, changes["leader_id"]) if changes.get("leader_id") is not None else None
    if community is not None:
        point.community = community
    if "leader_id" in changes:
        point.leader = leader
    for name in ("name", "address", "opening_hours"):
        if name in changes:
            setattr(point, name, changes[name])
    await session.flush()
    record_event(
        session,
        events.PICKUP_POINT_UPDATED,
        actor_id=actor_id,
        subjects=Subjects(community_id=point.community_id, user_id=point.leader_id),
        payload={"pickup_point_id": point.id, "changes": changes},
    )
    return point


async def archive_pickup_point(
    session: AsyncSession, pickup_point_id: int, *, actor_id: int | None
) -> PickupPoint:
    """Close a pickup point (it disappears from neighbours' lists); idempotent."""
    point = await get_pickup_point(session, pickup_point_id)
    return await _set_archived(
        session,
        point,
        True,
        events.PICKUP_POINT_ARCHIVED,
        actor_id=actor_id,
        subjects=Subjects(community_id=point.community_id),
    )


async def unarchive_pickup_point(
    session: AsyncSession, pickup_point_id: int, *, actor_id: int | None
) -> PickupPoint:
    """Reopen a closed pickup point; idempotent."""
    point = await get_pickup_point(session, pickup_point_id)
    return await _set_archived(
        session,
        point,
        False,
        events.PICKUP_POINT_UNARCHIVED,
        actor_id=actor_id,
        subjects=Subjects(community_id=point.community_id),
    )


# -- memberships ----------------------------------------------------------------------------------------


async def membership_of(session: AsyncSession, user_id: int) -> Membership | None:
    """The user's membership row, if they have joined a community."""
    return await session.get(Membership, user_id)


async def community_of(session: AsyncSession, user_id: int) -> Community | None:
    """The community the user belongs to now, or None (archived communities still count)."""
    membership = await membership_of(session, user_id)
    if membership is None:
        return None
    return await session.get(Community, membership.community_id)


async def communities_of(session: AsyncSession, user_ids: Collection[int]) -> dict[int, Community]:
    """The community of each of ``user_ids`` that has one, with its pickup points (their leaders not
    loaded): what checkout reads of a whole batch of neighbours in one query."""
    if not user_ids:
        return {}
    rows = await session.execute(
        select(Membership.user_id, Community)
        .join(Community, Community.id == Membership.community_id)
        .where(Membership.user_id.in_(sorted(set(user_ids))))
        .options(joinedload(Community.pickup_points).lazyload(PickupPoint.leader))
    )
    return {user_id: community for user_id, community in rows.unique().all()}


async def stores_by_id(session: AsyncSession, store_ids: Collection[int]) -> dict[int, Store]:
    """The stores among ``store_ids`` that exist (archived or not), by id."""
    if not store_ids:
        return {}
    stores = await session.scalars(select(Store).where(Store.id.in_(sorted(set(store_ids)))))
    return {store.id: store for store in stores}


async def join_community(
    session: AsyncSession,
    user_id: int,
    community_id: int,
    source: MembershipSource | str,
    *,
    actor_id: int | None = None,
    reason: str = "",
) -> Membership:
    """Make ``community_id`` (open, not archived) the user's one community; records
    ``community.member_joined`` the first time, ``community.member_moved`` on a change (with ``reason``
    when someone else moved them), nothing if they are already there. One row per user (primary key): a
    concurrent first join turns into a move. Orders keep the community they were placed in."""
    source = MembershipSource(source)
    community = await get_community(session, community_id, include_archived=False)
    membership = await membership_of(session, user_id)
    if membership is None:
        try:
            async with session.begin_nested():
                membership = Membership(
                    user_id=user_id, community_id=community.id, source=source.value, joined_at=utcnow()
                )
                session.add(membership)
        except IntegrityError:
            membership = await session.get(Membership, user_id, populate_existing=True)
            if membership is None:  # the other row was rolled back meanwhile; the FK is what failed
                raise UserNotFound(f"user {user_id} does not exist") from None
        else:
            record_event(
                session,
                events.MEMBER_JOINED,
                actor_id=actor_id if actor_id is not None else user_id,
                subjects=Subjects(user_id=user_id, community_id=community.id),
                payload={"source": source.value},
            )
            await session.flush()
            return membership
    if membership.community_id == community.id:
        return membership
    previous = membership.community_id
    membership.community_id = community.id
    membership.source = source.value
    membership.joined_at = utcnow()
    await session.flush()
    record_event(
        session,
        events.MEMBER_MOVED,
        actor_id=actor_id if actor_id is not None else user_id,
        subjects=Subjects(user_id=user_id, community_id=community.id),
        payload={
            "source": source.value,
            "from_community_id": previous,
            **({"reason": reason} if reason else {}),
        },
    )
    return membership


async def leave_community(
    session: AsyncSession, user_id: int, *, actor_id: int | None = None, reason: str = ""
) -> Membership | None:
    """The user belongs to no community any more (until they choose one again); records
    ``community.member_left``. Returns the membership they had, None (and nothing recorded) when they had
    none. Orders keep the community they were placed in."""
    membership = await membership_of(session, user_id)
    if membership is None:
        return None
    await session.delete(membership)
    await session.flush()
    record_event(
        session,
        events.MEMBER_LEFT,
        actor_id=actor_id if actor_id is not None else user_id,
        subjects=Subjects(user_id=user_id, community_id=membership.community_id),
        payload={"from_community_id": membership.community_id, "reason": reason},
    )
    return membership
