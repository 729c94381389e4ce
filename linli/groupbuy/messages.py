"""The texts groupbuy writes for people to read later — the delivery promise, its inbox items — as
message keys and parameters (``core.i18n.Message``), rendered in the reader's locale when read.

The catalog of this domain is loaded here, on import: inbox items keep their zh-CN text as written, and
the consumers and timers that write them also run in ``linli worker``, which serves no pages."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from linli.community import inbox
from linli.core.clock import to_local
from linli.core.i18n import Message, catalog
from linli.core.money import format_fen
from linli.orders.models import Order

catalog.load_dir(Path(__file__).parent / "locales")

INBOX_KIND = "groupbuy"


def promise(scheduled_start: datetime, deliver_by: datetime) -> Message:
    """ "明天上午10点前免费配送到小区自提点": the day relative to the session, the hour in Shanghai."""
    local = to_local(deliver_by)
    offset = (local.date() - to_local(scheduled_start).date()).days
    days = {0: "today", 1: "tomorrow", 2: "after_tomorrow"}
    day = (
        Message(f"groupbuy.promise.{days[offset]}")
        if offset in days
        else Message("groupbuy.promise.date", {"month": local.month, "day": local.day})
    )
    half = "am" if local.hour < 12 else "pm"
    shown = local.hour if local.hour <= 12 else local.hour - 12
    time = Message(
        f"groupbuy.promise.{half}_minutes" if local.minute else f"groupbuy.promise.{half}",
        {"hour": shown, "minute": local.minute},
    )
    return Message("groupbuy.promise.text", {"day": day, "time": time})


def _short(name: str, units: int, threshold: int) -> dict[str, object]:
    return {"name": name, "units": units, "threshold": threshold}


def reached(name: str, threshold: int, promised: Message) -> Message:
    return Message("groupbuy.inbox.reached", {"name": name, "threshold": threshold, "promise": promised})


def fee_due(name: str, units: int, threshold: int, fee_fen: int) -> Message:
    return Message("groupbuy.inbox.fee_due", {**_short(name, units, threshold), "fee": format_fen(fee_fen)})


def fee_waived(name: str, units: int, threshold: int, fee_fen: int) -> Message:
    return Message(
        "groupbuy.inbox.fee_waived", {**_short(name, units, threshold), "fee": format_fen(fee_fen)}
    )


def store_pickup(name: str, units: int, threshold: int, store: str, address: str) -> Message:
    return Message(
        "groupbuy.inbox.store_pickup", {**_short(name, units, threshold), "store": store, "address": address}
    )


def refunded(name: str, units: int, threshold: int, amount_fen: int) -> Message:
    return Message(
        "groupbuy.inbox.refunded", {**_short(name, units, threshold), "amount": format_fen(amount_fen)}
    )


def delivered(point_name: str | None, address: str = "") -> Message:
    where = (
        Message("groupbuy.place.point", {"name": point_name, "address": address})
        if point_name is not None
        else Message("groupbuy.place.the_point")
    )
    return Message("groupbuy.inbox.delivered", {"where": where})


def fee_paid(order_id: int, fee_fen: int) -> Message:
    return Message("groupbuy.inbox.fee_paid", {"order_id": order_id, "fee": format_fen(fee_fen)})


def fee_refunded(order_id: int, fee_fen: int) -> Message:
    return Message("groupbuy.inbox.fee_refunded", {"order_id": order_id, "fee": format_fen(fee_fen)})


def fee_returned(order_id: int, fee_fen: int) -> Message:
    """A fee paid online that was no longer due (collected in cash, or its order refunded meanwhile)."""
    return Message("groupbuy.inbox.fee_returned", {"order_id": order_id, "fee": format_fen(fee_fen)})


def member_moved(from_name: str, to_name: str, reason: str) -> Message:
    return Message("groupbuy.inbox.member_moved", {"from": from_name, "to": to_name, "reason": reason})


def member_removed(name: str, reason: str) -> Message:
    return Message("groupbuy.inbox.member_removed", {"name": name, "reason": reason})


async def tell_buyer(session: AsyncSession, order: Order, message: Message, *, key: str) -> None:
    """One inbox item to the order's buyer (once per ``key`` and order), linking to the order."""
    await tell(session, order.user_id, order.id, message, key=key)


async def tell(session: AsyncSession, user_id: int, order_id: int, message: Message, *, key: str) -> None:
    await inbox.notify(
        session,
        user_id=user_id,
        kind=INBOX_KIND,
        message=message,
        link=f"/orders/{order_id}",
        dedupe_key=f"{key}:{order_id}",
    )
