"""JSON routes: operators manage sessions and lineups; neighbours (and their clients) read them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Path, Query, Request, Response, UploadFile

from linli.core.deps import RuntimeDep, SessionDep, SettingsDep
from linli.identity.deps import CurrentUser, HostUser, OperatorUser
from linli.live import comments, service
from linli.live.models import LiveSession, ModerationKind, SessionStatus
from linli.live.room import service as room_service
from linli.live.room.ws import router as ws_router
from linli.live.schemas import (
    BanCreate,
    CommentCreate,
    CommentList,
    CommentRead,
    HostTransition,
    LineupItemCreate,
    LineupItemRead,
    LineupItemUpdate,
    LineupOrder,
    LineupRemoval,
    LiveSessionCreate,
    LiveSessionPage,
    LiveSessionRead,
    LiveSessionUpdate,
    ModerationRead,
    MuteCreate,
    NoticeCreate,
    PinRead,
    PinUpdate,
    PublicLineupItemRead,
    PublicSessionDetail,
    PublicSessionList,
    PublicSessionRead,
    SensitiveWordCreate,
    SensitiveWordRead,
    SessionTransition,
)

router = APIRouter()
admin = APIRouter(prefix="/api/v1/admin/sessions", tags=["live sessions (operators)"])
public = APIRouter(prefix="/api/v1/sessions", tags=["live sessions"])
host = APIRouter(prefix="/api/v1/host/sessions", tags=["live room (hosts and operators)"])
words = APIRouter(prefix="/api/v1/admin/sensitive-words", tags=["live room (operators)"])

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


# --- the room: comments ---------------------------------------------------------------------------

CommentId = Annotated[int, Path(ge=1, le=2**62)]
UserId = Annotated[int, Path(ge=1, le=2**62)]


@public.get("/{session_id}/comments", response_model=CommentList)
async def list_comments(session: SessionDep, session_id: SessionId) -> CommentList:
    """The latest 50 comments, oldest first (what the room shows on joining)."""
    live_session = await service.get_public_session(session, session_id)
    recent = await comments.recent_comments(session, live_session.id)
    return CommentList(items=[CommentRead.model_validate(comments.comment_payload(c)) for c in recent])


@public.post("/{session_id}/comments", response_model=CommentRead, status_code=201)
async def post_comment(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: CurrentUser,
    session_id: SessionId,
    data: CommentCreate,
) -> CommentRead:
    """Post to the room (logged in). 422 for an empty, over-long or refused text; 403 when muted or
    banned; 429 past 5 comments in 10 seconds (hosts and operators are exempt). ``reply_to_id`` is for
    the host or an operator answering a comment: the room shows it as "@name ..." under the question."""
    live_session = await comments.room_for_comments(session, session_id)
    comment = await comments.post_comment(
        session,
        live_session,
        user,
        data.text,
        anonymous_id=getattr(request.state, "anonymous_id", None),
        reply_to_id=data.reply_to_id,
        runtime=runtime,
    )
    return CommentRead.model_validate(comments.comment_payload(comment))


# --- the room: the host's controls ----------------------------------------------------------------


async def _moderated_session(session: SessionDep, user: HostUser, session_id: int) -> LiveSession:
    live_session = await service.get_session(session, session_id)
    comments.require_moderator(live_session, user)
    return live_session


@host.post("/{session_id}/transition", response_model=LiveSessionRead)
async def host_transition(
    session: SessionDep, user: HostUser, session_id: SessionId, data: HostTransition
) -> LiveSessionRead:
    """Go live (a scheduled session) or end it (a live one); the session's host or an operator."""
    live_session = await _moderated_session(session, user, session_id)
    return LiveSessionRead.of(await service.transition_session(session, live_session, data.to, user))


@host.put("/{session_id}/pin", response_model=PinRead)
async def pin_item(session: SessionDep, user: HostUser, session_id: SessionId, data: PinUpdate) -> PinRead:
    """Pin a lineup item as "正在讲解" on every viewer's screen; ``item_id: null`` unpins."""
    live_session = await _moderated_session(session, user, session_id)
    item = await room_service.pin_item(session, live_session, data.item_id, actor=user)
    return PinRead(item_id=item.id if item else None)


@host.post("/{session_id}/notices", status_code=201)
async def post_notice(
    session: SessionDep, user: HostUser, session_id: SessionId, data: NoticeCreate
) -> dict[str, str]:
    live_session = await _moderated_session(session, user, session_id)
    return {"text": await room_service.post_notice(session, live_session, data.text, actor=user)}


@host.delete("/{session_id}/comments/{comment_id}", status_code=204)
async def delete_comment(
    session: SessionDep, user: HostUser, session_id: SessionId, comment_id: CommentId
) -> Response:
    live_session = await _moderated_session(session, user, session_id)
    await comments.delete_comment(session, live_session, comment_id, actor=user)
    return Response(status_code=204)


@host.post("/{session_id}/mutes", response_model=ModerationRead, status_code=201)
async def mute_user(
    session: SessionDep, user: HostUser, session_id: SessionId, data: MuteCreate
) -> ModerationRead:
    """Stop a neighbour posting for ``minutes``; they keep watching."""
    live_session = await _moderated_session(session, user, session_id)
    mute = await comments.mute_user(
        session, live_session, data.user_id, data.minutes, actor=user, reason=data.reason
    )
    return ModerationRead(user_id=data.user_id, kind="mute", until=mute.until, devices=0)


@host.delete("/{session_id}/mutes/{user_id}")
async def unmute_user(
    session: SessionDep, user: HostUser, session_id: SessionId, user_id: UserId
) -> dict[str, int]:
    live_session = await _moderated_session(session, user, session_id)
    return {"lifted": await comments.lift(session, live_session, user_id, ModerationKind.mute, actor=user)}


@host.post("/{session_id}/bans", response_model=ModerationRead, status_code=201)
async def ban_user(
    session: SessionDep, user: HostUser, session_id: SessionId, data: BanCreate
) -> ModerationRead:
    """Remove a neighbour from the room for the rest of the session, by account and device: their
    sockets are closed (4003) and reconnecting is refused."""
    live_session = await _moderated_session(session, user, session_id)
    rows = await comments.ban_user(session, live_session, data.user_id, actor=user, reason=data.reason)
    devices = len([r for r in rows if r.anonymous_id])
    return ModerationRead(user_id=data.user_id, kind="ban", until=None, devices=devices)


@host.delete("/{session_id}/bans/{user_id}")
async def unban_user(
    session: SessionDep, user: HostUser, session_id: SessionId, user_id: UserId
) -> dict[str, int]:
    live_session = await _moderated_session(session, user, session_id)
    return {"lifted": await comments.lift(session, live_session, user_id, ModerationKind.ban, actor=user)}


# --- operators: the sensitive-word list -----------------------------------------------------------

WordId = Annotated[int, Path(ge=1, le=2**62)]


@words.get("", response_model=list[SensitiveWordRead])
async def list_words(session: SessionDep, operator: OperatorUser) -> list[SensitiveWordRead]:
    return [
        SensitiveWordRead.model_validate(w, from_attributes=True) for w in await comments.list_words(session)
    ]


@words.post("", response_model=SensitiveWordRead, status_code=201)
async def add_word(
    session: SessionDep, operator: OperatorUser, data: SensitiveWordCreate
) -> SensitiveWordRead:
    """Comments containing the word (ignoring case, width, spaces and punctuation) are refused with 422."""
    row = await comments.add_word(session, data.word, actor=operator)
    return SensitiveWordRead.model_validate(row, from_attributes=True)


@words.delete("/{word_id}", status_code=204)
async def remove_word(session: SessionDep, operator: OperatorUser, word_id: WordId) -> Response:
    await comments.remove_word(session, word_id, actor=operator)
    return Response(status_code=204)


router.include_router(admin)
router.include_router(public)
router.include_router(host)
router.include_router(words)
router.include_router(ws_router)
