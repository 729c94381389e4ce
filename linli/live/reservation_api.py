"""Reservations as JSON: anyone may see a session's count; a logged-in neighbour reserves or cancels.

``PUT`` and ``DELETE`` are idempotent, so a double tap or a retried request changes nothing more."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.deps import SessionDep
from linli.identity.deps import CurrentUser, OptionalUser
from linli.identity.models import User
from linli.live import reservations, service
from linli.live.models import LiveSession

router = APIRouter(prefix="/api/v1/sessions", tags=["live sessions"])
SessionId = Annotated[int, Path(ge=1, le=2**62)]


class ReservationState(BaseModel):
    session_id: int
    count: int
    reserved: bool
    # Whether the session still takes reservations (it is upcoming, not live or over).
    open: bool


async def _state(session: AsyncSession, live_session: LiveSession, user: User | None) -> ReservationState:
    return ReservationState(
        session_id=live_session.id,
        count=await reservations.count(session, live_session.id),
        reserved=user is not None and await reservations.has_reserved(session, live_session.id, user.id),
        open=live_session.status == "scheduled",
    )


@router.get("/{session_id}/reservation")
async def get_reservation(session: SessionDep, user: OptionalUser, session_id: SessionId) -> ReservationState:
    """How many neighbours reserved the session, and whether I did."""
    live_session = await service.get_public_session(session, session_id)
    return await _state(session, live_session, user)


@router.put("/{session_id}/reservation")
async def reserve(session: SessionDep, user: CurrentUser, session_id: SessionId) -> ReservationState:
    """Reserve an upcoming session (409 once it is live or over); my inbox gets a reminder 10 minutes
    before it starts and a message when the host goes live."""
    live_session = await service.get_public_session(session, session_id)
    await reservations.reserve(session, live_session, user)
    return await _state(session, live_session, user)


@router.delete("/{session_id}/reservation")
async def cancel_reservation(
    session: SessionDep, user: CurrentUser, session_id: SessionId
) -> ReservationState:
    """Withdraw my reservation; without one this changes nothing."""
    live_session = await service.get_public_session(session, session_id)
    await reservations.cancel(session, live_session, user)
    return await _state(session, live_session, user)
