"""API shapes of live sessions and lineups: what operators send and read, and what neighbours read."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from linli.core.clock import as_utc
from linli.live.models import LineupItem, LiveSession, SessionStatus

STREAM_SCHEMES = frozenset({"http", "https", "rtmp", "webrtc"})
MAX_PRICE_FEN = 100_000_000  # ¥1,000,000: far above any food item, well inside a 32-bit column
MAX_STOCK = 10_000_000
MAX_PER_USER_LIMIT = 9_999
MAX_POSITION = 100_000
MAX_TARGET_COMMUNITIES = 500


def check_stream_url(value: str) -> str:
    """An empty string (not set) or an absolute http/https/rtmp/webrtc URL without whitespace."""
    if value == "":
        return value
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ValueError("a stream URL cannot contain spaces or control characters")
    parts = urlsplit(value)
    if parts.scheme.lower() not in STREAM_SCHEMES:
        raise ValueError("a stream URL must start with http://, https://, rtmp:// or webrtc://")
    if not parts.netloc:
        raise ValueError("a stream URL needs a host")
    return value


def _unique_ids(value: list[int]) -> list[int]:
    return list(dict.fromkeys(value))


# Stored and echoed back in UTC whatever offset the client sent.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(as_utc)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
StreamUrl = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=500), AfterValidator(check_stream_url)
]
Id = Annotated[int, Field(ge=1, le=2**62)]
CommunityIds = Annotated[list[Id], Field(max_length=MAX_TARGET_COMMUNITIES), AfterValidator(_unique_ids)]
PriceFen = Annotated[int, Field(ge=0, le=MAX_PRICE_FEN)]
Stock = Annotated[int, Field(ge=0, le=MAX_STOCK)]
PerUserLimit = Annotated[int, Field(ge=1, le=MAX_PER_USER_LIMIT)]
Position = Annotated[int, Field(ge=0, le=MAX_POSITION)]


def _refuse_nulls(model: BaseModel, nullable: frozenset[str]) -> None:
    """In an update, a field left out means "keep"; an explicit null only clears nullable fields."""
    for name in model.model_fields_set - nullable:
        if getattr(model, name) is None:
            raise ValueError(f"{name} cannot be null")


def _check_window(starts: datetime | None, ends: datetime | None) -> None:
    if starts is not None and ends is not None and ends <= starts:
        raise ValueError("the sale window must end after it starts")


# --- sessions -------------------------------------------------------------------------------------


class LiveSessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description = ""
    host_id: Id | None = None
    scheduled_start: UtcDatetime
    push_url: StreamUrl = ""
    playback_url: StreamUrl = ""
    community_ids: CommunityIds = Field(
        default_factory=list, description="Target communities; empty means every community"
    )


class LiveSessionUpdate(BaseModel):
    """Only the fields sent change; ``host_id: null`` unassigns the host."""

    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    description: Description | None = None
    host_id: Id | None = None
    scheduled_start: UtcDatetime | None = None
    push_url: StreamUrl | None = None
    playback_url: StreamUrl | None = None
    community_ids: CommunityIds | None = None

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Self:
        _refuse_nulls(self, frozenset({"host_id"}))
        return self


class SessionTransition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: SessionStatus


class LiveSessionRead(BaseModel):
    id: int
    title: str
    description: str
    cover_url: str | None
    host_id: int | None
    host_name: str | None
    scheduled_start: datetime
    status: SessionStatus
    push_url: str
    playback_url: str
    started_at: datetime | None
    ended_at: datetime | None
    archived_at: datetime | None
    community_ids: list[int]
    lineup_count: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, live_session: LiveSession) -> LiveSessionRead:
        return cls(
            id=live_session.id,
            title=live_session.title,
            description=live_session.description,
            cover_url=live_session.cover_url,
            host_id=live_session.host_id,
            host_name=live_session.host.display_name if live_session.host else None,
            scheduled_start=live_session.scheduled_start,
            status=SessionStatus(live_session.status),
            push_url=live_session.push_url,
            playback_url=live_session.playback_url,
            started_at=live_session.started_at,
            ended_at=live_session.ended_at,
            archived_at=live_session.archived_at,
            community_ids=sorted(c.community_id for c in live_session.communities),
            lineup_count=len(live_session.current_lineup),
            created_at=live_session.created_at,
            updated_at=live_session.updated_at,
        )


class LiveSessionPage(BaseModel):
    items: list[LiveSessionRead]
    total: int
    page: int
    per_page: int


# --- lineup ---------------------------------------------------------------------------------------


class LineupItemCreate(BaseModel):
    """Sale window: either end may be left open; open ends follow the session's live period."""

    model_config = ConfigDict(extra="forbid")

    product_id: Id
    live_price_fen: PriceFen
    stock: Stock
    per_user_limit: PerUserLimit = 10
    sale_starts_at: UtcDatetime | None = None
    sale_ends_at: UtcDatetime | None = None
    position: Position | None = Field(default=None, description="Defaults to the end of the lineup")

    @model_validator(mode="after")
    def _window_ordered(self) -> Self:
        _check_window(self.sale_starts_at, self.sale_ends_at)
        return self


class LineupItemUpdate(BaseModel):
    """Only the fields sent change; a null sale bound reopens that end of the window."""

    model_config = ConfigDict(extra="forbid")

    live_price_fen: PriceFen | None = None
    stock: Stock | None = None
    per_user_limit: PerUserLimit | None = None
    sale_starts_at: UtcDatetime | None = None
    sale_ends_at: UtcDatetime | None = None
    position: Position | None = None

    @model_validator(mode="after")
    def _checks(self) -> Self:
        _refuse_nulls(self, frozenset({"sale_starts_at", "sale_ends_at"}))
        _check_window(self.sale_starts_at, self.sale_ends_at)
        return self


class LineupOrder(BaseModel):
    """Every current item of the lineup, in the order wanted."""

    model_config = ConfigDict(extra="forbid")

    item_ids: Annotated[list[Id], Field(max_length=1000)]


class LineupItemRead(BaseModel):
    id: int
    session_id: int
    product_id: int
    product_name: str
    photo_url: str | None
    store_price_fen: int
    live_price_fen: int
    stock: int
    reserved: int
    sold: int
    stock_left: int
    per_user_limit: int
    sale_starts_at: datetime | None
    sale_ends_at: datetime | None
    position: int
    archived_at: datetime | None

    @classmethod
    def of(cls, item: LineupItem) -> LineupItemRead:
        return cls(
            id=item.id,
            session_id=item.session_id,
            product_id=item.product_id,
            product_name=item.product.name,
            photo_url=item.product.cover_url,
            store_price_fen=item.product.store_price_fen,
            live_price_fen=item.live_price_fen,
            stock=item.stock,
            reserved=item.reserved,
            sold=item.sold,
            stock_left=item.stock_left,
            per_user_limit=item.per_user_limit,
            sale_starts_at=item.sale_starts_at,
            sale_ends_at=item.sale_ends_at,
            position=item.position,
            archived_at=item.archived_at,
        )


class LineupRemoval(BaseModel):
    id: int
    outcome: str = Field(description="'removed', or 'archived' when units were already reserved or sold")


# --- what neighbours read -------------------------------------------------------------------------


class PublicLineupItemRead(BaseModel):
    id: int
    product_id: int
    product_name: str
    photo_url: str | None
    live_price_fen: int
    store_price_fen: int
    stock_left: int
    per_user_limit: int
    sale_starts_at: datetime | None
    sale_ends_at: datetime | None
    on_sale: bool
    position: int


class PublicSessionRead(BaseModel):
    id: int
    title: str
    description: str
    cover_url: str | None
    status: SessionStatus
    host_name: str | None
    scheduled_start: datetime
    started_at: datetime | None
    ended_at: datetime | None
    playback_url: str

    @classmethod
    def of(cls, live_session: LiveSession, **extra: Any) -> Self:
        return cls(
            id=live_session.id,
            title=live_session.title,
            description=live_session.description,
            cover_url=live_session.cover_url,
            status=SessionStatus(live_session.status),
            host_name=live_session.host.display_name if live_session.host else None,
            scheduled_start=live_session.scheduled_start,
            started_at=live_session.started_at,
            ended_at=live_session.ended_at,
            playback_url=live_session.playback_url,
            **extra,
        )


class PublicSessionList(BaseModel):
    items: list[PublicSessionRead]


class PublicSessionDetail(PublicSessionRead):
    lineup: list[PublicLineupItemRead]


# --- the room -------------------------------------------------------------------------------------


class CommentCreate(BaseModel):
    """1–200 characters once whitespace is collapsed (checked by the service, so every client gets the
    same message); ``reply_to_id`` is for the host answering a comment."""

    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(max_length=2000)]
    reply_to_id: Id | None = None


class CommentAuthor(BaseModel):
    id: int
    name: str


class CommentQuoted(BaseModel):
    id: int
    user: CommentAuthor
    text: str


class CommentRead(BaseModel):
    id: int
    user: CommentAuthor
    text: str
    at: datetime
    staff: bool
    reply_to: CommentQuoted | None


class CommentList(BaseModel):
    items: list[CommentRead]


class MuteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Id
    minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = 10
    reason: Annotated[str, Field(max_length=200)] = ""


class BanCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Id
    reason: Annotated[str, Field(max_length=200)] = ""


class ModerationRead(BaseModel):
    user_id: int
    kind: str
    until: datetime | None
    devices: int = Field(description="Browsers (anonymous ids) the ban also covers")


class PinUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: Id | None = Field(description="A current lineup item, or null to unpin")


class PinRead(BaseModel):
    item_id: int | None


class NoticeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(max_length=1000)]


class HostTransition(BaseModel):
    """What a host may do to their own session's status: go live, or end it."""

    model_config = ConfigDict(extra="forbid")

    to: Annotated[SessionStatus, AfterValidator(lambda s: _host_move(s))]


def _host_move(status: SessionStatus) -> SessionStatus:
    if status not in (SessionStatus.live, SessionStatus.ended):
        raise ValueError("a host can only go live or end the session")
    return status


class SensitiveWordCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    word: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]


class SensitiveWordRead(BaseModel):
    id: int
    word: str
    created_at: datetime
