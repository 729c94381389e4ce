"""The payment-success moment: a neighbour's poster for their paid order, the share line they edit, and
what they do with it (shown, saved, shared — each an event), timed from the payment.

A poster is the owner's own: their order, their nickname and avatar, their invite code and a QR code of
their share link to the order's session. The share line is at most ``SHARE_LINE_MAX`` characters and
passes the operators' sensitive-word filter (the room's), else 422 and nothing rendered.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from linli.catalog import service as catalog_service
from linli.core.clock import as_utc
from linli.core.events import Event, Subjects, record_event
from linli.core.runtime import Runtime
from linli.identity.models import User
from linli.live import comments
from linli.orders import service as orders_service
from linli.orders.errors import InvalidOrderTransition, OrderNotFound
from linli.orders.models import Order, OrderStatus
from linli.referral import events, posters, service
from linli.referral.errors import InvalidPosterFormat, InvalidShareLine

SHARE_LINE_DEFAULT = "刚抢到麦香邻里的春季限定青团,太好吃了!你也来试试吧!"
SHARE_LINE_MAX = 40
KINDS = {"shown": events.POSTER_SHOWN, "saved": events.POSTER_SAVED, "shared": events.SHARED}
CHANNELS = frozenset({"friend", "moments", "group", "link", "system"})
SHAREABLE = frozenset({OrderStatus.paid, OrderStatus.completed, OrderStatus.refund_requested})


def default_line(product_name: str) -> str:
    """The default share line, naming the product bought (the issue's own words for 青团)."""
    if product_name == "春季限定青团" or not product_name:
        return SHARE_LINE_DEFAULT
    return f"刚抢到麦香邻里的{product_name},太好吃了!你也来试试吧!"[:SHARE_LINE_MAX]


async def clean_share_line(
    session: AsyncSession, runtime: Runtime | None, raw: str | None, fallback: str
) -> str:
    """The line as drawn: whitespace collapsed, ``fallback`` when empty; ``InvalidShareLine`` when too
    long or holding a refused word."""
    line = " ".join((raw or "").split()) or fallback
    if len(line) > SHARE_LINE_MAX:
        raise InvalidShareLine(
            f"the share line is at most {SHARE_LINE_MAX} characters", field="line", max_length=SHARE_LINE_MAX
        )
    if (await comments.word_filter(session, runtime)).matches(line):
        raise InvalidShareLine("the share line holds a word that is not allowed", field="line")
    return line


def check_format(raw: str) -> str:
    if raw not in posters.FORMATS:
        raise InvalidPosterFormat(
            f"a poster is one of {', '.join(posters.FORMATS)}", field="format", formats=list(posters.FORMATS)
        )
    return raw


async def shareable_order(session: AsyncSession, order_id: int, user: User) -> Order:
    """The neighbour's own paid order (someone else's is not found; an unpaid one cannot be shared)."""
    order = await orders_service.get_order_of(session, order_id, user.id)
    if order.status not in SHAREABLE:
        raise InvalidOrderTransition(
            "only a paid order has a share poster", order_id=order.id, status=order.status
        )
    return order


@dataclass(frozen=True)
class ShareKit:
    """What the share sheet needs: the code and link, the default line and the product drawn."""

    order: Order
    code: str
    share_url: str
    share_path: str
    default_line: str
    product_name: str
    photo_path: str | None


async def share_kit(session: AsyncSession, runtime: Runtime, order: Order, user: User) -> ShareKit:
    line = order.lines[0]
    code = await service.invite_code_of(session, user.id)
    product = await catalog_service.get_product(session, line.product_id)
    photo = str(runtime.settings.media_dir / product.images[0].path) if product.images else None
    return ShareKit(
        order=order,
        code=code,
        share_url=service.share_url(runtime.settings.public_base_url, code, session_id=order.session_id),
        share_path=service.share_path(code, session_id=order.session_id),
        default_line=default_line(line.product_name),
        product_name=line.product_name,
        photo_path=photo,
    )


def poster_spec(kit: ShareKit, user: User, fmt: str, line: str, media_dir: Path) -> posters.PosterSpec:
    first = kit.order.lines[0]
    return posters.PosterSpec(
        format=fmt,
        product_name=kit.product_name,
        price_fen=first.unit_price_fen,
        store_price_fen=first.store_price_fen,
        line=line,
        nickname=user.display_name,
        code=kit.code,
        share_url=kit.share_url,
        photo_path=kit.photo_path,
        avatar_path=str(media_dir / user.avatar_path) if user.avatar_path else None,
    )


def cached_poster(runtime: Runtime, order_id: int, user: User, fmt: str, line: str = "") -> Path:
    """Where the poster of the neighbour's order in ``fmt`` with ``line`` ("" for the default) is cached."""
    return posters.poster_path(
        runtime.settings.media_dir, order_id, fmt, line, user.display_name, user.avatar_path
    )


def _line_key(raw: str | None) -> str:
    return " ".join((raw or "").split())


async def _owned_status(session: AsyncSession, order_id: int, user: User) -> str:
    """The status of the neighbour's own order, in one narrow query (the cached poster's hot path)."""
    row = (
        await session.execute(select(Order.user_id, Order.status).where(Order.id == order_id))
    ).one_or_none()
    if row is None or row[0] != user.id:
        raise OrderNotFound(f"no order with id {order_id}", order_id=order_id)
    if row[1] not in SHAREABLE:
        raise InvalidOrderTransition("only a paid order has a share poster", order_id=order_id, status=row[1])
    return str(row[1])


async def poster_plan(
    session: AsyncSession, runtime: Runtime, order_id: int, user: User, *, fmt: str, line: str | None
) -> tuple[Path, posters.PosterSpec | None]:
    """Where the poster's file is, and what to draw there (None when it is cached already) for this
    (order, format, text). Raises 404 (not theirs), 409 (not paid), 422 (format, line: too long, refused
    word). A cached poster costs one narrow query: its line passed the filter when it was drawn."""
    return (await poster_plans(session, runtime, order_id, user, formats=(fmt,), line=line))[0]


async def poster_plans(
    session: AsyncSession,
    runtime: Runtime,
    order_id: int,
    user: User,
    *,
    formats: Sequence[str],
    line: str | None = None,
) -> list[tuple[Path, posters.PosterSpec | None]]:
    """``poster_plan`` for several formats of one order, in their order: the order, its share kit and
    the line are read and checked once for all of them."""
    formats = [check_format(fmt) for fmt in formats]
    key = _line_key(line)
    if len(key) > SHARE_LINE_MAX:
        raise InvalidShareLine(
            f"the share line is at most {SHARE_LINE_MAX} characters", field="line", max_length=SHARE_LINE_MAX
        )
    paths = [cached_poster(runtime, order_id, user, fmt, key) for fmt in formats]
    if all(path.exists() for path in paths):
        await _owned_status(session, order_id, user)  # whose and whether paid, before anything is answered
        return [(path, None) for path in paths]
    order = await shareable_order(session, order_id, user)  # the same checks, with the order read whole
    kit = await share_kit(session, runtime, order, user)
    text = await clean_share_line(session, runtime, key, kit.default_line)
    media = runtime.settings.media_dir
    return [
        (path, None if path.exists() else poster_spec(kit, user, fmt, text, media))
        for fmt, path in zip(formats, paths, strict=True)
    ]


async def poster_file(
    session: AsyncSession, runtime: Runtime, order_id: int, user: User, *, fmt: str, line: str | None
) -> Path:
    """The poster's file on disk, rendered first (off the event loop) unless cached (``poster_plan``)."""
    path, spec = await poster_plan(session, runtime, order_id, user, fmt=fmt, line=line)
    if spec is not None:
        pool = runtime.extras.get("referral.poster_pool")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(pool, posters.render_to, path, spec)
    return path


async def record_share(
    session: AsyncSession, order_id: int, user: User, *, kind: str, fmt: str, channel: str | None
) -> Event:
    """The neighbour showed, saved or shared their poster (``share.poster_shown`` / ``_saved`` /
    ``share.shared``), about their own paid order."""
    if kind not in KINDS:
        raise InvalidShareLine(f"kind is one of {', '.join(KINDS)}", field="kind")
    fmt = check_format(fmt)
    if channel is not None and channel not in CHANNELS:
        raise InvalidShareLine(f"channel is one of {', '.join(sorted(CHANNELS))}", field="channel")
    order = await shareable_order(session, order_id, user)
    payload: dict[str, Any] = {"format": fmt}
    if channel is not None:
        payload["channel"] = channel
    event = record_event(
        session,
        KINDS[kind],
        actor_id=user.id,
        subjects=Subjects(user_id=user.id, order_id=order.id, session_id=order.session_id),
        payload=payload,
    )
    await session.flush()
    return event


# --- time from payment to first share --------------------------------------------------------------


@dataclass(frozen=True)
class ShareTiming:
    order_id: int
    paid_at: datetime
    first_shown_seconds: float | None
    first_share_seconds: float | None  # to the first save or share, None when never


async def share_timing(session: AsyncSession, order_id: int) -> ShareTiming | None:
    """Seconds from the order's ``order.paid`` event to its first poster shown and to its first save or
    share, read off the event log."""
    return (await share_timings(session, order_ids=[order_id])).get(order_id)


async def share_timings(
    session: AsyncSession,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    order_ids: list[int] | None = None,
    limit: int = 10_000,
) -> dict[int, ShareTiming]:
    """``share_timing`` for every order paid in ``[since, until)`` (or the given orders)."""
    paid = select(Event.order_id, func.min(Event.occurred_at)).where(
        Event.type == events.ORDER_PAID, Event.order_id.is_not(None)
    )
    if since is not None:
        paid = paid.where(Event.occurred_at >= since)
    if until is not None:
        paid = paid.where(Event.occurred_at < until)
    if order_ids is not None:
        paid = paid.where(Event.order_id.in_(order_ids))
    paid_rows = (await session.execute(paid.group_by(Event.order_id).limit(limit))).all()
    if not paid_rows:
        return {}
    ids = [row[0] for row in paid_rows]
    firsts = (
        await session.execute(
            select(Event.order_id, Event.type, func.min(Event.occurred_at))
            .where(Event.type.in_(sorted(events.SHARE_EVENTS)), Event.order_id.in_(ids))
            .group_by(Event.order_id, Event.type)
        )
    ).all()
    shown: dict[int, datetime] = {}
    shared: dict[int, datetime] = {}
    for order_id, type_, at in firsts:
        if order_id is None:
            continue
        at = as_utc(at)
        target = shown if type_ == events.POSTER_SHOWN else shared
        if order_id not in target or at < target[order_id]:
            target[order_id] = at
    result: dict[int, ShareTiming] = {}
    for order_id, paid_at in paid_rows:
        if order_id is None:
            continue
        paid_at = as_utc(paid_at)
        result[order_id] = ShareTiming(
            order_id=order_id,
            paid_at=paid_at,
            first_shown_seconds=(shown[order_id] - paid_at).total_seconds() if order_id in shown else None,
            first_share_seconds=(shared[order_id] - paid_at).total_seconds() if order_id in shared else None,
        )
    return result


def summarise(timings: list[ShareTiming]) -> dict[str, Any]:
    """Pay→share conversion and the median seconds, for BI and the operators' page."""
    shared = sorted(t.first_share_seconds for t in timings if t.first_share_seconds is not None)
    shown = sorted(t.first_shown_seconds for t in timings if t.first_shown_seconds is not None)
    return {
        "paid_orders": len(timings),
        "shown_orders": len(shown),
        "shared_orders": len(shared),
        "pay_to_share_rate": round(len(shared) / len(timings), 4) if timings else 0.0,
        "median_seconds_to_poster": statistics.median(shown) if shown else None,
        "median_seconds_to_first_share": statistics.median(shared) if shared else None,
    }
