"""JSON routes: operators manage sessions and lineups; neighbours (and their clients) read them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Path, Query, UploadFile

from linli.core.deps import SessionDep, SettingsDep
from linli.identity.deps import OperatorUser
from linli.live import service
from linli.live.models import LiveSession, SessionStatus
from linli.live.schemas import (
    LineupItemCreate,
    LineupItemRead,
    LineupItemUpdate,
    LineupOrder,
    LineupRemoval,
    LiveSessionCreate,
    LiveSessionPage,
    LiveSessionRead,
    LiveSessionUpdate,
    PublicLineupItemRead,
    PublicSessionDetail,
    PublicSessionList,
    PublicSessionRead,
    SessionTransition,
)

router = APIRouter()
admin = APIRouter(prefix="/api/v1/admin/sessions", tags=["live sessions (operators)"])
public = APIRouter(prefix="/api/v1/sessions", tags=["live sessions"])

# Ids beyond a bigint would reach the database as an overflow instead of a clean 404/422.
SessionId = Annotated[int, Path(ge=1, le=2**62)]
ItemId = Annotated[int, Path(ge=1, le=2**62)]


# --- operators: sessions --------------------------------------------------------------------------


@admin.get("", response_model=LiveSessionPage)
async def list_sessions(
    session: SessionDep,
    operator: OperatorUser,
    q: Annotated[str | None, Query(max_length=60, description="Words of the title")] = None,
    status: SessionStatus | None = None,
    archived: Annotated[bool, Query(description="List archived sessions instead")] = False,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
) -> LiveSessionPage:
    result = await service.list_sessions(
        session, q=q, status=status, archived=archived, page=page, per_page=per_page
    )
    return LiveSessionPage(
        items=[LiveSessionRead.of(s) for s in result.items],
        total=result.total,
        page=result.page,
        per_page=result.per_page,
    )


@admin.post("", response_model=LiveSessionRead, status_code=201)
async def create_session(
    session: SessionDep, operator: OperatorUser, data: LiveSessionCreate
) -> LiveSessionRead:
    return LiveSessionRead.of(await service.create_session(session, data, actor=operator))


@admin.get("/{session_id}", response_model=LiveSessionRead)
async def get_session(session: SessionDep, operator: OperatorUser, session_id: SessionId) -> LiveSessionRead:
    return LiveSessionRead.of(await service.get_session(session, session_id))


@admin.patch("/{session_id}", response_model=LiveSessionRead)
async def update_session(
    session: SessionDep, operator: OperatorUser, session_id: SessionId, data: LiveSessionUpdate
) -> LiveSessionRead:
    live_session = await service.get_session(session, session_id)
    return LiveSessionRead.of(await service.update_session(session, live_session, data, actor=operator))


@admin.post("/{session_id}/transition", response_model=LiveSessionRead)
async def transition_session(
    session: SessionDep, operator: OperatorUser, session_id: SessionId, data: SessionTransition
) -> LiveSessionRead:
    """draft → scheduled → live → ended (and scheduled → draft); anything else is a 409."""
    live_session = await service.get_session(session, session_id)
    return LiveSessionRead.of(await service.transition_session(session, live_session, data.to, operator))


@admin.post("/{session_id}/archive", response_model=LiveSessionRead)
async def archive_session(
    session: SessionDep, operator: OperatorUser, session_id: SessionId
) -> LiveSessionRead:
    live_session = await service.get_session(session, session_id)
    return LiveSessionRead.of(await service.archive_session(session, live_session, actor=operator))


@admin.post("/{session_id}/unarchive", response_model=LiveSessionRead)
async def unarchive_session(
    session: SessionDep, operator: OperatorUser, session_id: SessionId
) -> LiveSessionRead:
    live_session = await service.get_session(session, session_id)
    return LiveSessionRead.of(await service.unarchive_session(session, live_session, actor=operator))


@admin.post("/{session_id}/cover", response_model=LiveSessionRead)
async def upload_session_cover(
    session: SessionDep,
    settings: SettingsDep,
    operator: OperatorUser,
    session_id: SessionId,
    file: Annotated[UploadFile, File(description="JPEG, PNG or WebP")],
) -> LiveSessionRead:
    """Replace the cover; the type is checked by decoding the image, not by what the client says."""
    live_session = await service.get_session(session, session_id)
    # One byte past the limit is enough to refuse it; never read an unbounded upload into memory.
    data = await file.read(settings.max_image_bytes + 1)
    updated = await service.replace_session_cover(
        session, live_session, data, settings=settings, actor=operator
    )
    return LiveSessionRead.of(updated)


@admin.delete("/{session_id}/cover", response_model=LiveSessionRead)
async def remove_session_cover(
    session: SessionDep, settings: SettingsDep, operator: OperatorUser, session_id: SessionId
) -> LiveSessionRead:
    live_session = await service.get_session(session, session_id)
    updated = await service.remove_session_cover(session, live_session, settings=settings, actor=operator)
    return LiveSessionRead.of(updated)


# --- operators: lineup ----------------------------------------------------------------------------


@admin.get("/{session_id}/lineup", response_model=list[LineupItemRead])
async def list_lineup(
    session: SessionDep,
    operator: OperatorUser,
    session_id: SessionId,
    archived: Annotated[bool, Query(description="Include items archived after sales")] = False,
) -> list[LineupItemRead]:
    live_session = await service.get_session(session, session_id)
    return [LineupItemRead.of(i) for i in service.list_lineup(live_session, include_archived=archived)]


@admin.post("/{session_id}/lineup", response_model=LineupItemRead, status_code=201)
async def add_lineup_item(
    session: SessionDep, operator: OperatorUser, session_id: SessionId, data: LineupItemCreate
) -> LineupItemRead:
    live_session = await service.get_session(session, session_id)
    return LineupItemRead.of(await service.add_lineup_item(session, live_session, data, actor=operator))


@admin.put("/{session_id}/lineup/order", response_model=list[LineupItemRead])
async def reorder_lineup(
    session: SessionDep, operator: OperatorUser, session_id: SessionId, data: LineupOrder
) -> list[LineupItemRead]:
    live_session = await service.get_session(session, session_id)
    items = await service.reorder_lineup(session, live_session, data.item_ids, actor=operator)
    return [LineupItemRead.of(i) for i in items]


@admin.get("/{session_id}/lineup/{item_id}", response_model=LineupItemRead)
async def get_lineup_item(
    session: SessionDep, operator: OperatorUser, session_id: SessionId, item_id: ItemId
) -> LineupItemRead:
    live_session = await service.get_session(session, session_id)
    return LineupItemRead.of(service.get_lineup_item(live_session, item_id))


@admin.patch("/{session_id}/lineup/{item_id}", response_model=LineupItemRead)
async def update_lineup_item(
    session: SessionDep,
    operator: OperatorUser,
    session_id: SessionId,
    item_id: ItemId,
    data: LineupItemUpdate,
) -> LineupItemRead:
    live_session = await service.get_session(session, session_id)
    item = service.get_lineup_item(live_session, item_id)
    return LineupItemRead.of(
        await service.update_lineup_item(session, live_session, item, data, actor=operator)
    )


@admin.delete("/{session_id}/lineup/{item_id}", response_model=LineupRemoval)
async def remove_lineup_item(
    session: SessionDep, operator: OperatorUser, session_id: SessionId, item_id: ItemId
) -> LineupRemoval:
    """Deleted when nothing was reserved or sold, archived otherwise (``outcome`` says which)."""
    live_session = await service.get_session(session, session_id)
    item = service.get_lineup_item(live_session, item_id)
    outcome = await service.remove_lineup_item(session, live_session, item, actor=operator)
    return LineupRemoval(id=item_id, outcome=outcome)


# --- neighbours -----------------------------------------------------------------------------------


def public_lineup(live_session: LiveSession) -> list[PublicLineupItemRead]:
    return [
        PublicLineupItemRead(
            id=item.id,
            product_id=item.product_id,
            product_name=item.product.name,
            photo_url=item.product.cover_url,
            live_price_fen=item.live_price_fen,
            store_price_fen=item.product.store_price_fen,
            stock_left=item.stock_left,
            per_user_limit=item.per_user_limit,
            sale_starts_at=item.sale_starts_at,
            sale_ends_at=item.sale_ends_at,
            on_sale=service.is_on_sale(live_session, item),
            position=item.position,
        )
        for item in service.list_lineup(live_session)
    ]


@public.get("", response_model=PublicSessionList)
async def list_public_sessions(
    session: SessionDep,
    community_id: Annotated[
        int | None, Query(ge=1, le=2**62, description="Without it, only sessions aimed at every community")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> PublicSessionList:
    """Live sessions first, then upcoming scheduled ones, aimed at the community or at all."""
    sessions = await service.list_home_sessions(session, community_id, limit=limit)
    return PublicSessionList(items=[PublicSessionRead.of(s) for s in sessions])


@public.get("/{session_id}", response_model=PublicSessionDetail)
async def get_public_session(session: SessionDep, session_id: SessionId) -> PublicSessionDetail:
    live_session = await service.get_public_session(session, session_id)
    return PublicSessionDetail.of(live_session, lineup=public_lineup(live_session))


router.include_router(admin)
router.include_router(public)
