"""The live domain's verbs: sessions, their status, their lineups, and what neighbours may see of them.

Every verb validates first, then changes rows, then appends its event in the same transaction; it flushes
and never commits. The session's status moves only through ``transition_session`` and a lineup item's stock
only through ``_set_stock``, both conditional updates, so a concurrent change cannot slip past their checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from linli.catalog import service as catalog_service
from linli.catalog.models import Product
from linli.community import service as community_service
from linli.core.clock import utcnow
from linli.core.config import Settings
from linli.core.events import Subjects, record_event
from linli.core.media import discard_after_commit, store_image
from linli.core.money import format_fen
from linli.identity.models import Role, User, UserRole
from linli.live.errors import (
    CommunityArchived,
    CommunityNotFound,
    InvalidHost,
    InvalidLineupOrder,
    InvalidSaleWindow,
    InvalidTransition,
    LineupClosed,
    LineupItemNotFound,
    LivePriceAboveStorePrice,
    ProductAlreadyInLineup,
    ProductArchived,
    ProductNotFound,
    SessionLocked,
    SessionNotFound,
    StockBelowCommitted,
)
from linli.live.models import LineupItem, LiveSession, SessionCommunity, SessionStatus
from linli.live.schemas import LineupItemCreate, LineupItemUpdate, LiveSessionCreate, LiveSessionUpdate

# The only moves a session's status can make, and the event each one records.
TRANSITIONS: dict[tuple[SessionStatus, SessionStatus], str] = {
    (SessionStatus.draft, SessionStatus.scheduled): "live.session_scheduled",
    (SessionStatus.scheduled, SessionStatus.draft): "live.session_unscheduled",
    (SessionStatus.scheduled, SessionStatus.live): "live.session_started",
    (SessionStatus.live, SessionStatus.ended): "live.session_ended",
}

MAX_CHOICES = 1000  # rows offered in an admin form's select
Row = TypeVar("Row")

# Once a session has gone live these would break it: the stream, the viewers' communities, its history.
FIXED_ONCE_LIVE = ("scheduled_start", "host_id", "push_url", "community_ids")


def allowed_transitions(status: str) -> list[SessionStatus]:
    return [to for (frm, to) in TRANSITIONS if frm == status]


def _actor_id(actor: User | None) -> int | None:
    return actor.id if actor is not None else None


# --- other domains, read only ---------------------------------------------------------------------


async def _host(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise InvalidHost(
            f"no active user with id {user_id} to host the session", host_id=user_id, field="host_id"
        )
    if not user.has_role(Role.host):
        raise InvalidHost(
            f"{user.display_name} does not have the host role", host_id=user_id, field="host_id"
        )
    return user


async def _check_communities(session: AsyncSession, community_ids: list[int]) -> list[int]:
    for community_id in community_ids:
        try:
            community = await community_service.get_community(session, community_id)
        except community_service.CommunityNotFound:
            raise CommunityNotFound(
                f"no community with id {community_id}", community_id=community_id, field="community_ids"
            ) from None
        if community.archived_at is not None:
            raise CommunityArchived(
                f"{community.name} (community {community_id}) is archived",
                community_id=community_id,
                field="community_ids",
            )
    return community_ids


async def _product(session: AsyncSession, product_id: int) -> Product:
    try:
        product = await catalog_service.get_product(session, product_id)
    except catalog_service.ProductNotFound:
        raise ProductNotFound(
            f"no product with id {product_id}", product_id=product_id, field="product_id"
        ) from None
    if product.archived_at is not None:
        raise ProductArchived(
            f"{product.name} is archived and cannot be sold live", product_id=product_id, field="product_id"
        )
    return product


# --- sessions -------------------------------------------------------------------------------------


async def create_session(
    session: AsyncSession, data: LiveSessionCreate, *, actor: User | None
) -> LiveSession:
    """A new draft session; its host must hold the host role and its target communities must exist."""
    host = await _host(session, data.host_id) if data.host_id is not None else None
    community_ids = await _check_communities(session, data.community_ids)
    live_session = LiveSession(
        title=data.title,
        description=data.description,
        host=host,
        scheduled_start=data.scheduled_start,
        status=SessionStatus.draft.value,
        push_url=data.push_url,
        playback_url=data.playback_url,
        lineup=[],
        communities=[SessionCommunity(community_id=c) for c in community_ids],
    )
    session.add(live_session)
    await session.flush()
    record_event(
        session,
        "live.session_created",
        actor_id=_actor_id(actor),
        subjects=Subjects(session_id=live_session.id),
        payload={"title": live_session.title, "community_ids": community_ids},
    )
    return live_session


async def get_session(session: AsyncSession, session_id: int, *, fresh: bool = False) -> LiveSession:
    """The session with this id, archived or not; ``SessionNotFound`` otherwise. ``fresh`` reloads it and
    its lineup from the database (after a rolled-back savepoint left them expired)."""
    live_session = await session.get(LiveSession, session_id, populate_existing=fresh)
    if live_session is None:
        raise SessionNotFound(f"no live session with id {session_id}", session_id=session_id)
    return live_session


@dataclass(frozen=True)
class SessionPage:
    items: list[LiveSession]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_sessions(
    session: AsyncSession,
    *,
    q: str | None = None,
    status: SessionStatus | None = None,
    archived: bool = False,
    page: int = 1,
    per_page: int = 20,
) -> SessionPage:
    """Sessions for operators, latest scheduled first: archived ones only when ``archived`` is true,
    filtered by title words ``q`` and ``status``."""
    page, per_page = max(page, 1), min(max(per_page, 1), 100)
    conditions: list[ColumnElement[bool]] = [
        LiveSession.archived_at.is_not(None) if archived else LiveSession.archived_at.is_(None)
    ]
    if status is not None:
        conditions.append(LiveSession.status == status.value)
    if q and q.strip():
        conditions.append(LiveSession.title.ilike(_like(q.strip()), escape="\\"))
    total = await session.scalar(select(func.count()).select_from(LiveSession).where(*conditions)) or 0
    items = (
        await session.scalars(
            select(LiveSession)
            .where(*conditions)
            .order_by(LiveSession.scheduled_start.desc(), LiveSession.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    ).all()
    return SessionPage(items=list(items), total=total, page=page, per_page=per_page)


def _refuse_if_archived(live_session: LiveSession) -> None:
    if live_session.archived_at is not None:
        raise SessionLocked("this session is archived; restore it before changing it")


def _current_value(live_session: LiveSession, field: str) -> Any:
    if field == "community_ids":
        return sorted(c.community_id for c in live_session.communities)
    return getattr(live_session, field)


async def update_session(
    session: AsyncSession, live_session: LiveSession, data: LiveSessionUpdate, *, actor: User | None
) -> LiveSession:
    """Change the fields sent. Once live or ended, start time, host, push URL and target communities are
    fixed; a scheduled session keeps a host. Unchanged values are not changes."""
    _refuse_if_archived(live_session)
    sent = data.model_dump(exclude_unset=True)
    changes = {
        field: value
        for field, value in sent.items()
        if (sorted(value) if field == "community_ids" else value) != _current_value(live_session, field)
    }
    if not changes:
        return live_session
    status = SessionStatus(live_session.status)
    if status in (SessionStatus.live, SessionStatus.ended):
        fixed = [field for field in FIXED_ONCE_LIVE if field in changes]
        if fixed:
            raise SessionLocked(
                f"the session is {status.value}: {', '.join(fixed)} can no longer change", fields=fixed
            )
    host: User | None = None
    if changes.get("host_id") is not None:
        host = await _host(session, changes["host_id"])
    elif "host_id" in changes and status is not SessionStatus.draft:
        raise SessionLocked("a scheduled session needs a host; unschedule it first")
    if "community_ids" in changes:
        await _check_communities(session, changes["community_ids"])

    for field, value in changes.items():
        if field == "host_id":
            live_session.host = host
        elif field == "community_ids":
            # Keep the rows that stay: deleting and re-inserting the same key in one flush collides.
            had = {c.community_id: c for c in live_session.communities}
            live_session.communities = [had.get(c) or SessionCommunity(community_id=c) for c in value]
        else:
            setattr(live_session, field, value)
    await session.flush()
    record_event(
        session,
        "live.session_updated",
        actor_id=_actor_id(actor),
        subjects=Subjects(session_id=live_session.id),
        payload={"fields": sorted(changes)},
    )
    return live_session


async def replace_session_cover(
    session: AsyncSession,
    live_session: LiveSession,
    data: bytes,
    *,
    settings: Settings,
    actor: User | None,
) -> LiveSession:
    """Store ``data`` as the cover (its real type and size checked by decoding, see ``core.media``); the
    old file goes once this commits, unless another session still shows the same image."""
    _refuse_if_archived(live_session)
    stored = await asyncio.to_thread(
        store_image,
        data,
        media_dir=settings.media_dir,
        folder="sessions",
        max_bytes=settings.max_image_bytes,
        max_pixels=settings.max_image_pixels,
    )
    old = live_session.cover_path
    live_session.cover_path = stored.path
    await session.flush()
    if old and old != stored.path:
        await _discard_cover_if_unused(session, old, settings)
    record_event(
        session,
        "live.session_updated",
        actor_id=_actor_id(actor),
        subjects=Subjects(session_id=live_session.id),
        payload={"fields": ["cover"], "cover_path": stored.path},
    )
    return live_session


async def remove_session_cover(
    session: AsyncSession, live_session: LiveSession, *, settings: Settings, actor: User | None
) -> LiveSession:
    """Drop the cover; the file goes once this commits if no other session shows it."""
    _refuse_if_archived(live_session)
    old = live_session.cover_path
    if old is None:
        return live_session
    live_session.cover_path = None
    await session.flush()
    await _discard_cover_if_unused(session, old, settings)
    record_event(
        session,
        "live.session_updated",
        actor_id=_actor_id(actor),
        subjects=Subjects(session_id=live_session.id),
        payload={"fields": ["cover"], "cover_path": None},
    )
    return live_session


async def _discard_cover_if_unused(session: AsyncSession, path: str, settings: Settings) -> None:
    # Files are named by content hash, so two sessions may share one.
    still_used = await session.scalar(
        select(func.count()).select_from(LiveSession).where(LiveSession.cover_path == path)
    )
    if not still_used:
        discard_after_commit(session, settings.media_dir, path)


async def transition_session(
    session: AsyncSession, live_session: LiveSession, to: SessionStatus | str, actor: User | None
) -> LiveSession:
    """Move the status along ``TRANSITIONS`` (stamping ``started_at`` / ``ended_at``) or raise
    ``InvalidTransition``. A conditional update on the status read makes a concurrent move lose cleanly."""
    try:
        target = SessionStatus(to)
    except ValueError:
        raise InvalidTransition(f"unknown status {to!r}") from None
    current = SessionStatus(live_session.status)
    if live_session.archived_at is not None:
        raise InvalidTransition("an archived session cannot change status; restore it first")
    event_type = TRANSITIONS.get((current, target))
    if event_type is None:
        allowed = allowed_transitions(current)
        hint = f"; it can become {' or '.join(a.value for a in allowed)}" if allowed else ""
        raise InvalidTransition(
            f"a {current.value} session cannot become {target.value}{hint}",
            status=current.value,
            allowed=[a.value for a in allowed],
        )
    if target in (SessionStatus.scheduled, SessionStatus.live) and live_session.host_id is None:
        raise InvalidTransition("assign a host first")

    await session.flush()
    now = utcnow()
    values: dict[str, Any] = {"status": target.value, "updated_at": now}
    if target is SessionStatus.live:
        values["started_at"] = now
    elif target is SessionStatus.ended:
        values["ended_at"] = now
    moved = await session.scalar(
        update(LiveSession)
        .where(
            LiveSession.id == live_session.id,
            LiveSession.status == current.value,
            LiveSession.archived_at.is_(None),
        )
        .values(**values)
        .returning(LiveSession.id)
        .execution_options(synchronize_session=False)
    )
    if moved is None:
        raise InvalidTransition("the session changed meanwhile; reload it and try again")
    for field, value in values.items():
        set_committed_value(live_session, field, value)
    record_event(
        session,
        event_type,
        actor_id=_actor_id(actor),
        subjects=Subjects(session_id=live_session.id),
        payload={"from": current.value, "to": target.value},
        occurred_at=now,
    )
    return live_session


async def archive_session(
    session: AsyncSession, live_session: LiveSession, *, actor: User | None
) -> LiveSession:
    """Hide the session from lists and neighbours; a live session must end first. Archiving twice is a
    no-op."""
    if live_session.archived_at is not None:
        return live_session
    if live_session.status == SessionStatus.live:
        raise SessionLocked("the session is live; end it before archiving it")
    live_session.archived_at = utcnow()
    await session.flush()
    record_event(
        session,
        "live.session_archived",
        actor_id=_actor_id(actor),
        subjects=Subjects(session_id=live_session.id),
    )
    return live_session


async def unarchive_session(
    session: AsyncSession, live_session: LiveSession, *, actor: User | None
) -> LiveSession:
    """Bring an archived session back, in the status it had."""
    if live_session.archived_at is None:
        return live_session
    live_session.archived_at = None
    await session.flush()
    record_event(
        session,
        "live.session_unarchived",
        actor_id=_actor_id(actor),
        subjects=Subjects(session_id=live_session.id),
    )
    return live_session


# --- lineup ---------------------------------------------------------------------------------------


def list_lineup(live_session: LiveSession, *, include_archived: bool = False) -> list[LineupItem]:
    """The lineup in display order (position, then id)."""
    if not include_archived:
        return live_session.current_lineup
    return sorted(live_session.lineup, key=lambda i: (i.archived_at is not None, i.position, i.id))


def get_lineup_item(live_session: LiveSession, item_id: int) -> LineupItem:
    for item in live_session.lineup:
        if item.id == item_id:
            return item
    raise LineupItemNotFound(
        f"no lineup item {item_id} in session {live_session.id}", session_id=live_session.id, item_id=item_id
    )


def _lineup_open(live_session: LiveSession) -> None:
    if live_session.archived_at is not None:
        raise LineupClosed("this session is archived; restore it before changing its lineup")
    if live_session.status == SessionStatus.ended:
        raise LineupClosed("the session has ended; its lineup no longer changes")


def _check_live_price(live_price_fen: int, product: Product) -> None:
    if live_price_fen > product.store_price_fen:
        raise LivePriceAboveStorePrice(
            f"the live price {format_fen(live_price_fen)} is above {product.name}'s store price "
            f"{format_fen(product.store_price_fen)}; a live price is an exclusive discount",
            live_price_fen=live_price_fen,
            store_price_fen=product.store_price_fen,
            field="live_price_fen",
        )


def _check_window(starts: datetime | None, ends: datetime | None) -> None:
    if starts is not None and ends is not None and ends <= starts:
        raise InvalidSaleWindow("the sale window must end after it starts", field="sale_ends_at")


async def _set_stock(session: AsyncSession, item: LineupItem, stock: int) -> None:
    """The one way operators change stock: a conditional update that never goes below reserved + sold,
    checked by the database at the moment of writing (and backed by the ``no_oversell`` CHECK)."""
    row = (
        await session.execute(
            update(LineupItem)
            .where(LineupItem.id == item.id, LineupItem.reserved + LineupItem.sold <= stock)
            .values(stock=stock, updated_at=utcnow())
            .returning(LineupItem.stock, LineupItem.reserved, LineupItem.sold, LineupItem.updated_at)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if row is None:
        reserved, sold = (
            await session.execute(
                select(LineupItem.reserved, LineupItem.sold).where(LineupItem.id == item.id)
            )
        ).one()
        raise StockBelowCommitted(
            f"stock cannot go below the {reserved + sold} units already committed "
            f"({reserved} reserved, {sold} sold)",
            reserved=reserved,
            sold=sold,
            stock=stock,
            field="stock",
        )
    for field in ("stock", "reserved", "sold", "updated_at"):
        set_committed_value(item, field, getattr(row, field))


async def add_lineup_item(
    session: AsyncSession, live_session: LiveSession, data: LineupItemCreate, *, actor: User | None
) -> LineupItem:
    """Put a product (existing, not archived) into the lineup once, at a live price not above its store
    price. A product archived from this lineup earlier comes back with the new terms."""
    _lineup_open(live_session)
    product = await _product(session, data.product_id)
    _check_live_price(data.live_price_fen, product)
    _check_window(data.sale_starts_at, data.sale_ends_at)
    await session.flush()
    existing = await session.scalar(
        select(LineupItem).where(
            LineupItem.session_id == live_session.id, LineupItem.product_id == product.id
        )
    )
    if existing is not None and existing.archived_at is None:
        raise ProductAlreadyInLineup(
            f"{product.name} is already in this lineup",
            product_id=product.id,
            item_id=existing.id,
            field="product_id",
        )
    active = [i for i in live_session.lineup if i.archived_at is None]
    position = (
        data.position if data.position is not None else max((i.position for i in active), default=-1) + 1
    )
    terms = {
        "live_price_fen": data.live_price_fen,
        "per_user_limit": data.per_user_limit,
        "sale_starts_at": data.sale_starts_at,
        "sale_ends_at": data.sale_ends_at,
        "position": position,
    }
    if existing is not None:
        item = existing
        for field, value in terms.items():
            setattr(item, field, value)
        item.archived_at = None
        await session.flush()
        await _set_stock(session, item, data.stock)
    else:
        item = LineupItem(
            session_id=live_session.id, product=product, stock=data.stock, reserved=0, sold=0, **terms
        )
        try:
            async with session.begin_nested():
                session.add(item)
                await session.flush()
        except IntegrityError:
            # Another operator added the same product between our check and our insert.
            raise ProductAlreadyInLineup(
                f"{product.name} is already in this lineup", product_id=product.id, field="product_id"
            ) from None
        set_committed_value(live_session, "lineup", [*live_session.lineup, item])
    record_event(
        session,
        "live.lineup_item_added",
        actor_id=_actor_id(actor),
        subjects=Subjects(session_id=live_session.id, product_id=product.id),
        payload={
            "item_id": item.id,
            "live_price_fen": item.live_price_fen,
            "stock": item.stock,
            "per_user_limit": item.per_user_limit,
            "restored": existing is not None,
        },
    )
    return item


async def update_lineup_item(
    session: AsyncSession,
    live_session: LiveSession,
    item: LineupItem,
    data: LineupItemUpdate,
    *,
    actor: User | None,
) -> LineupItem:
    """Change an item's terms: the live price stays at or below the store price, the sale window stays
    ordered, and stock never drops below reserved + sold (``_set_stock``)."""
    _lineup_open(live_session)
    if item.archived_at is not None:
        raise LineupClosed("this lineup item was removed; add the product again instead")
    changes = {
        field: value
        for field, value in data.model_dump(exclude_unset=True).items()
        if value != getattr(item, field)
    }
    if not changes:
        return item
    if "live_price_fen" in changes:
        _check_live_price(changes["live_price_fen"], item.product)
    _check_window(
        changes.get("sale_starts_at", item.sale_starts_at), changes.get("sale_ends_at", item.sale_ends_at)
    )
    stock = changes.pop("stock", None)
    for field, value in changes.items():
        setattr(item, field, value)
    await session.flush()
    if stock is not None:
        await _set_stock(session, item, stock)
        changes["stock"] = stock
    record_event(
        session,
        "live.lineup_item_updated",
        actor_id=_actor_id(actor),
        subjects=Subjects(session_id=live_session.id, product_id=item.product_id),
        payload={"item_id": item.id, "changes": {k: _jsonable(v) for k, v in sorted(changes.items())}},
    )
    return item


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


async def remove_lineup_item(
    session: AsyncSession, live_session: LiveSession, item: LineupItem, *, actor: User | None
) -> str:
    """Delete the item when nothing of it was ever reserved or sold (checked in the delete itself);
    otherwise archive it so orders keep their line. Returns ``"removed"`` or ``"archived"``."""
    _lineup_open(live_session)
    if item.archived_at is not None:
        return "archived"
    await session.flush()
    deleted = None
    try:
        async with session.begin_nested():
            deleted = await session.scalar(
                delete(LineupItem)
                .where(LineupItem.id == item.id, LineupItem.reserved == 0, LineupItem.sold == 0)
                .returning(LineupItem.id)
                .execution_options(synchronize_session=False)
            )
    except IntegrityError:
        deleted = None  # something else (an order line) still points at it
    item_id, product_id = item.id, item.product_id
    if deleted is not None:
        set_committed_value(live_session, "lineup", [i for i in live_session.lineup if i is not item])
        session.expunge(item)
        outcome = "removed"
    else:
        item.archived_at = utcnow()
        await session.flush()
        outcome = "archived"
    record_event(
        session,
        "live.lineup_item_removed",
        actor_id=_actor_id(actor),
        subjects=Subjects(session_id=live_session.id, product_id=product_id),
        payload={"item_id": item_id, "outcome": outcome},
    )
    return outcome


async def reorder_lineup(
    session: AsyncSession, live_session: LiveSession, item_ids: list[int], *, actor: User | None
) -> list[LineupItem]:
    """Set display positions from ``item_ids``, which must name every current item exactly once."""
    _lineup_open(live_session)
    active = {i.id: i for i in live_session.lineup if i.archived_at is None}
    if len(item_ids) != len(set(item_ids)) or set(item_ids) != set(active):
        raise InvalidLineupOrder(
            "list every current item of the lineup exactly once", expected=sorted(active), got=item_ids
        )
    for position, item_id in enumerate(item_ids):
        active[item_id].position = position
    await session.flush()
    record_event(
        session,
        "live.lineup_reordered",
        actor_id=_actor_id(actor),
        subjects=Subjects(session_id=live_session.id),
        payload={"item_ids": item_ids},
    )
    return list_lineup(live_session)


async def move_lineup_item(
    session: AsyncSession, live_session: LiveSession, item: LineupItem, step: int, *, actor: User | None
) -> list[LineupItem]:
    """Move one item up (``step`` < 0) or down the lineup, by way of ``reorder_lineup``."""
    order = [i.id for i in list_lineup(live_session)]
    if item.id not in order:
        raise LineupClosed("this lineup item was removed")
    index = order.index(item.id)
    target = min(max(index + step, 0), len(order) - 1)
    order.insert(target, order.pop(index))
    return await reorder_lineup(session, live_session, order, actor=actor)


def sale_window(live_session: LiveSession, item: LineupItem) -> tuple[datetime | None, datetime | None]:
    """The item's effective sale window: its own bounds, open ends following the session's live period."""
    return (item.sale_starts_at or live_session.started_at, item.sale_ends_at or live_session.ended_at)


def is_on_sale(live_session: LiveSession, item: LineupItem, at: datetime | None = None) -> bool:
    """Whether the live price applies at ``at`` (now): a visible session, a current item, inside its
    window. A window with no start opens when the session goes live."""
    if live_session.archived_at is not None or item.archived_at is not None:
        return False
    if live_session.status == SessionStatus.draft:
        return False
    at = at or utcnow()
    starts, ends = sale_window(live_session, item)
    return starts is not None and starts <= at and (ends is None or at < ends)


# --- what neighbours see --------------------------------------------------------------------------


def _aimed_at(community_id: int | None) -> ColumnElement[bool]:
    """Sessions for everyone (no targets), plus those aimed at ``community_id``."""
    for_everyone = ~exists().where(SessionCommunity.session_id == LiveSession.id)
    if community_id is None:
        return for_everyone
    return or_(
        for_everyone,
        exists().where(
            SessionCommunity.session_id == LiveSession.id, SessionCommunity.community_id == community_id
        ),
    )


async def list_home_sessions(
    session: AsyncSession, community_id: int | None, *, limit: int = 20
) -> list[LiveSession]:
    """Live sessions (latest started first), then scheduled ones (soonest first), aimed at the community
    or at every community; without a community only those for everyone. Never drafts, ended or archived."""
    base = select(LiveSession).where(LiveSession.archived_at.is_(None), _aimed_at(community_id))
    live = (
        await session.scalars(
            base.where(LiveSession.status == SessionStatus.live.value)
            .order_by(LiveSession.started_at.desc(), LiveSession.id.desc())
            .limit(limit)
        )
    ).all()
    upcoming = (
        await session.scalars(
            base.where(LiveSession.status == SessionStatus.scheduled.value)
            .order_by(LiveSession.scheduled_start, LiveSession.id)
            .limit(max(limit - len(live), 0))
        )
    ).all()
    return [*live, *upcoming]


async def get_public_session(session: AsyncSession, session_id: int) -> LiveSession:
    """A session neighbours may open (scheduled, live or ended, not archived); drafts do not exist for
    them."""
    live_session = await session.get(LiveSession, session_id)
    if (
        live_session is None
        or live_session.archived_at is not None
        or live_session.status == SessionStatus.draft
    ):
        raise SessionNotFound(f"no live session with id {session_id}", session_id=session_id)
    return live_session


# --- choices for the admin forms (other domains read only) ----------------------------------------


async def host_choices(session: AsyncSession) -> list[tuple[str, str]]:
    """Active users holding the host role, as (id, "name · phone tail") pairs."""
    hosts = await session.scalars(
        select(User)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == Role.host.value, User.is_active.is_(True))
        .order_by(User.id)
    )
    return [(str(u.id), f"{u.display_name} · {u.phone[-4:]}") for u in hosts]


async def _all_pages(fetch: Callable[[int, int], Awaitable[tuple[list[Row], int]]], cap: int) -> list[Row]:
    """Walk another domain's paged list (its pages are capped) up to ``cap`` rows."""
    rows: list[Row] = []
    while len(rows) < cap:
        page, total = await fetch(len(rows), 100)
        rows.extend(page)
        if not page or len(rows) >= total:
            break
    return rows[:cap]


async def community_choices(session: AsyncSession) -> list[tuple[int, str]]:
    """Communities a session can be aimed at (not archived), in the order they were added."""
    communities = await _all_pages(
        lambda offset, limit: community_service.list_open_communities(session, offset=offset, limit=limit),
        MAX_CHOICES,
    )
    return [(c.id, c.name) for c in communities]


async def community_names(session: AsyncSession, community_ids: list[int]) -> dict[int, str]:
    names = {}
    for community_id in community_ids:
        try:
            names[community_id] = (await community_service.get_community(session, community_id)).name
        except community_service.CommunityNotFound:
            continue
    return names


async def product_choices(session: AsyncSession, live_session: LiveSession) -> list[tuple[str, str]]:
    """Products that can still join this lineup: not archived, not already in it."""
    taken = {i.product_id for i in live_session.lineup if i.archived_at is None}
    products = await _all_pages(
        lambda offset, limit: catalog_service.list_products(session, offset=offset, limit=limit),
        MAX_CHOICES,
    )
    return [
        (str(p.id), f"{p.name}({format_fen(p.store_price_fen)})")
        for p in sorted(products, key=lambda p: (p.name, p.id))
        if p.id not in taken
    ]
