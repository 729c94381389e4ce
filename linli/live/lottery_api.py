"""JSON routes of keyword lotteries: the room's host (or an operator) starts one, draws it early and lists
them; anyone reads a lottery — its seed hash from the start, its entry list, seed and winners after the
draw — and can recompute the winners (see ``live.lottery`` for the exact draw)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from linli.core.deps import SessionDep
from linli.identity.deps import HostUser
from linli.live import comments, lottery, service
from linli.live.models import LiveSession, Lottery, LotteryStatus

router = APIRouter()
host = APIRouter(prefix="/api/v1/host/sessions", tags=["live room (hosts and operators)"])
public = APIRouter(prefix="/api/v1/sessions", tags=["live sessions"])

SessionId = Annotated[int, Path(ge=1, le=2**62)]
LotteryId = Annotated[int, Path(ge=1, le=2**62)]


class LotteryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keyword: str = Field(max_length=200, description="What neighbours comment to enter, e.g. 麦香青团")
    prize_name: str = Field(max_length=200, description="The prize as the room sees it")
    duration_seconds: int = Field(
        ge=lottery.MIN_DURATION_SECONDS, le=lottery.MAX_DURATION_SECONDS, description="How long entries count"
    )
    winner_count: int = Field(ge=1, le=lottery.MAX_WINNERS)
    prize_coupon_template_id: int | None = Field(
        default=None, ge=1, le=2**62, description="The coupon template the orders domain issues to winners"
    )


class LotteryWinnerRead(BaseModel):
    rank: int
    user_id: int
    name: str = Field(description="Masked for the room, e.g. 李*华")


class LotteryRead(BaseModel):
    id: int
    session_id: int
    keyword: str
    prize_name: str
    prize_coupon_template_id: int | None
    winner_count: int
    status: LotteryStatus
    seed_hash: str = Field(description="hex SHA-256 of the seed, published when the lottery starts")
    seed: str | None = Field(description="Revealed at the draw")
    algorithm: str
    started_at: datetime
    ends_at: datetime
    drawn_at: datetime | None
    entry_count: int | None
    entries: list[int] | None = Field(description="The entrants' user ids, sorted; after the draw")
    winners: list[LotteryWinnerRead]


class LotteryList(BaseModel):
    items: list[LotteryRead]


class CurrentLottery(BaseModel):
    lottery: LotteryRead | None


async def _read(session: SessionDep, row: Lottery, *, with_entries: bool = True) -> LotteryRead:
    view = lottery.public_view(row)
    drawn = row.status == LotteryStatus.drawn
    entries = await lottery.entries_of(session, row.id) if drawn and with_entries else None
    winners = await lottery.winners_of(session, row.id) if drawn else []
    return LotteryRead(
        **{k: v for k, v in view.items() if k not in ("status",)},
        status=LotteryStatus(row.status),
        entries=entries,
        winners=[LotteryWinnerRead(rank=w.rank, user_id=w.user_id, name=w.name) for w in winners],
    )


async def _moderated_session(session: SessionDep, user: HostUser, session_id: int) -> LiveSession:
    live_session = await service.get_session(session, session_id)
    comments.require_moderator(live_session, user)
    return live_session


# --- the host -------------------------------------------------------------------------------------


@host.post("/{session_id}/lotteries", response_model=LotteryRead, status_code=201)
async def start_lottery(
    session: SessionDep, user: HostUser, session_id: SessionId, data: LotteryCreate
) -> LotteryRead:
    """Start a keyword lottery in a live room (one at a time); it draws itself when the time is up."""
    live_session = await _moderated_session(session, user, session_id)
    row = await lottery.start_lottery(
        session,
        live_session,
        actor=user,
        keyword=data.keyword,
        prize_name=data.prize_name,
        duration_seconds=data.duration_seconds,
        winner_count=data.winner_count,
        prize_coupon_template_id=data.prize_coupon_template_id,
    )
    return await _read(session, row)


@host.post("/{session_id}/lotteries/{lottery_id}/draw", response_model=LotteryRead)
async def draw_lottery(
    session: SessionDep, user: HostUser, session_id: SessionId, lottery_id: LotteryId
) -> LotteryRead:
    """Draw now, before the time is up (drawing a drawn lottery returns it unchanged)."""
    await _moderated_session(session, user, session_id)
    await lottery.get_lottery(session, lottery_id, session_id=session_id)
    return await _read(session, await lottery.draw_lottery(session, lottery_id, actor=user))


@host.get("/{session_id}/lotteries", response_model=LotteryList)
async def list_lotteries(session: SessionDep, user: HostUser, session_id: SessionId) -> LotteryList:
    await _moderated_session(session, user, session_id)
    rows = await lottery.list_lotteries(session, session_id)
    return LotteryList(items=[await _read(session, r, with_entries=False) for r in rows])


# --- anyone ---------------------------------------------------------------------------------------


@public.get("/{session_id}/lotteries/current", response_model=CurrentLottery)
async def current_lottery(session: SessionDep, session_id: SessionId) -> CurrentLottery:
    """The room's running lottery, else its latest drawn one (``null`` when it has had none)."""
    await service.get_public_session(session, session_id)
    row = await lottery.current_lottery(session, session_id)
    return CurrentLottery(lottery=await _read(session, row, with_entries=False) if row else None)


@public.get("/{session_id}/lotteries/{lottery_id}", response_model=LotteryRead)
async def get_lottery(session: SessionDep, session_id: SessionId, lottery_id: LotteryId) -> LotteryRead:
    """A lottery with all it takes to check the draw: seed hash, and after the draw the seed, the entry
    list and the winners (``draw(seed, entries, winner_count)`` in ``live.lottery``)."""
    await service.get_public_session(session, session_id)
    return await _read(session, await lottery.get_lottery(session, lottery_id, session_id=session_id))


router.include_router(host)
router.include_router(public)
