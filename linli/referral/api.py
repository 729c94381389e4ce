"""The referral domain's JSON API: visits, the share kit and poster of a paid order, share events, the
leaderboard, and the operators' settings, ledger and pay→share timing."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community import service as community_service
from linli.core.clock import as_utc
from linli.core.deps import RuntimeDep, SessionDep
from linli.core.errors import NotFound
from linli.identity.deps import CurrentUser, OperatorUser, OptionalUser
from linli.identity.models import User
from linli.referral import leaderboard, service, shares
from linli.referral.models import LeaderboardClose
from linli.referral.schemas import (
    LeaderboardRead,
    MonthClose,
    MyReferralRead,
    PosterLinks,
    ReferralSettingsRead,
    ReferralSettingsUpdate,
    RewardRead,
    ShareEventCreate,
    ShareEventRead,
    ShareKitRead,
    ShareTimingRead,
    StandingRead,
    VisitCreate,
    VisitRead,
)

router = APIRouter(prefix="/api/v1/referral", tags=["referral"])
OrderId = Annotated[int, Path(ge=1, le=2**62)]
MonthQuery = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]


@router.post("/visits", response_model=VisitRead)
async def visit(request: Request, data: VisitCreate, session: SessionDep, user: OptionalUser) -> VisitRead:
    """Open a share link: binds this visitor (the anonymous id cookie, and the user when logged in) to the
    code's owner, unless refused or already bound (first-touch)."""
    result = await service.record_visit(
        session,
        code=data.code,
        anonymous_id=getattr(request.state, "anonymous_id", None),
        user=user,
        session_id=data.session_id,
        product_id=data.product_id,
    )
    return visit_read(result)


def visit_read(result: service.Visit) -> VisitRead:
    binding = result.binding
    return VisitRead(
        sharer_id=result.sharer.id,
        sharer_name=result.sharer.display_name,
        code=result.code,
        bound=binding is not None and binding.sharer_id == result.sharer.id,
        binding_sharer_id=binding.sharer_id if binding is not None else None,
        refused=result.refused,
        kept=result.kept,
        expires_at=binding.expires_at if binding is not None else None,
    )


@router.get("/me", response_model=MyReferralRead)
async def me(session: SessionDep, runtime: RuntimeDep, user: CurrentUser) -> MyReferralRead:
    """My invite code, my share link, and how many neighbours I brought."""
    code = await service.invite_code_of(session, user.id)
    conversions = await service.conversions_of(session, user.id)
    return MyReferralRead(
        code=code,
        share_url=service.share_url(runtime.settings.public_base_url, code),
        conversions=sum(1 for c in conversions if c.reversed_at is None),
        reversed=sum(1 for c in conversions if c.reversed_at is not None),
    )


def poster_url(order_id: int, fmt: str) -> str:
    return f"/api/v1/referral/orders/{order_id}/poster.jpg?format={fmt}"


FORMATS = ("chat", "moments", "group")


@router.get("/orders/{order_id}/share", response_model=ShareKitRead)
async def share_kit(
    order_id: OrderId, session: SessionDep, runtime: RuntimeDep, user: CurrentUser
) -> ShareKitRead:
    """What the share sheet of my paid order shows: code, link, default line and the poster URLs."""
    order = await shares.shareable_order(session, order_id, user)
    kit = await shares.share_kit(session, runtime, order, user)
    return ShareKitRead(
        order_id=order.id,
        session_id=order.session_id,
        code=kit.code,
        share_url=kit.share_url,
        share_path=kit.share_path,
        default_line=kit.default_line,
        line_max=shares.SHARE_LINE_MAX,
        product_name=kit.product_name,
        posters=PosterLinks(**{fmt: poster_url(order.id, fmt) for fmt in FORMATS}),
    )


@router.get("/orders/{order_id}/poster.jpg", response_class=Response)
async def poster(
    order_id: OrderId,
    session: SessionDep,
    runtime: RuntimeDep,
    user: CurrentUser,
    format: Annotated[str, Query(max_length=16)] = "moments",
    line: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """My paid order's poster (JPEG) in ``format`` with the share ``line`` (the default when left out);
    rendered once per (order, format, text), then served from the cache."""
    path = await shares.poster_file(session, runtime, order_id, user, fmt=format, line=line)
    # A poster is ~100-150 kB: one read from the page cache beats a streamed file response's thread hops.
    return Response(
        path.read_bytes(),
        media_type="image/jpeg",
        headers={
            "Cache-Control": "private, max-age=86400",
            "Content-Disposition": f'inline; filename="linli-{format}-{order_id}.jpg"',
        },
    )


@router.post("/orders/{order_id}/share-events", response_model=ShareEventRead, status_code=201)
async def share_event(
    order_id: OrderId, data: ShareEventCreate, session: SessionDep, user: CurrentUser
) -> ShareEventRead:
    """I showed, saved or shared my poster (``share.poster_shown`` / ``share.poster_saved`` /
    ``share.shared``)."""
    event = await shares.record_share(
        session, order_id, user, kind=data.kind, fmt=data.format, channel=data.channel
    )
    return ShareEventRead(id=event.id, type=event.type, order_id=order_id, occurred_at=event.occurred_at)


async def board(
    session: AsyncSession, user: User, community_id: int | None, month: str | None
) -> LeaderboardRead:
    """The 分享达人榜 of the neighbour's community (operators: any community) for ``month`` (default now)."""
    from linli.identity.models import Role

    if community_id is None or not user.has_role(Role.operator):
        own = await community_service.community_of(session, user.id)
        if community_id is not None and (own is None or own.id != community_id):
            raise NotFound("you can see the leaderboard of your own community", community_id=community_id)
        if own is None:
            raise NotFound("join a community to see its leaderboard")
        community_id = own.id
    community = await community_service.get_community(session, community_id)
    month = month or leaderboard.current_month()
    rows = await leaderboard.standings(session, community.id, month)
    closed = await session.get(LeaderboardClose, (community.id, month)) is not None
    return LeaderboardRead(
        community_id=community.id,
        community_name=community.name,
        month=month,
        closed=closed,
        standings=[StandingRead(**vars(s), me=s.user_id == user.id) for s in rows],
    )


@router.get("/leaderboard", response_model=LeaderboardRead)
async def get_leaderboard(
    session: SessionDep,
    user: CurrentUser,
    month: MonthQuery = None,
    community_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> LeaderboardRead:
    """The monthly 分享达人榜: conversions, then the revenue they brought, ties to who got there first."""
    return await board(session, user, community_id, month)


# --- operators -------------------------------------------------------------------------------------


@router.get("/admin/settings", response_model=ReferralSettingsRead, tags=["referral (operators)"])
async def get_settings(session: SessionDep, user: OperatorUser) -> ReferralSettingsRead:
    return ReferralSettingsRead.model_validate(await service.get_referral_settings(session))


@router.put("/admin/settings", response_model=ReferralSettingsRead, tags=["referral (operators)"])
async def put_settings(
    data: ReferralSettingsUpdate, session: SessionDep, user: OperatorUser
) -> ReferralSettingsRead:
    """The attribution window, first or last touch, the leaderboard's top N and a coupon template per rank."""
    row = await service.update_referral_settings(session, actor=user, **data.model_dump(exclude_none=True))
    return ReferralSettingsRead.model_validate(row)


@router.get("/admin/rewards", response_model=list[RewardRead], tags=["referral (operators)"])
async def rewards(session: SessionDep, user: OperatorUser, month: MonthQuery = None) -> list[RewardRead]:
    """The rewards ledger, newest first."""
    return [RewardRead.model_validate(r) for r in await leaderboard.ledger(session, month=month)]


@router.post("/admin/close-month", tags=["referral (operators)"])
async def close_month(data: MonthClose, session: SessionDep, user: OperatorUser) -> dict[str, int]:
    """Close a past month now (what its timer does at month end); closing it again grants nothing."""
    if data.month >= leaderboard.current_month():
        from linli.referral.errors import InvalidReferralSettings

        raise InvalidReferralSettings("only a past month can be closed", field="month")
    return {"closed": await leaderboard.close_month(session, data.month)}


@router.get("/admin/share-timing", response_model=ShareTimingRead, tags=["referral (operators)"])
async def share_timing(
    session: SessionDep,
    user: OperatorUser,
    since: datetime | None = None,
    until: datetime | None = None,
) -> ShareTimingRead:
    """Pay→share: of the orders paid in the period, how many showed and shared their poster, and the
    median seconds from the payment to each (from the event log)."""
    timings = await shares.share_timings(
        session, since=as_utc(since) if since else None, until=as_utc(until) if until else None
    )
    return ShareTimingRead(**shares.summarise(list(timings.values())))
