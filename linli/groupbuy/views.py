"""What neighbours, leaders and operators are shown of group orders, composed once for the JSON API and the
pages: the room's progress board, an order's group status and fulfilment steps, a point's members."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community import service as community_service
from linli.community.models import Membership, PickupPoint, Store
from linli.core.i18n import DEFAULT_LOCALE, Message
from linli.groupbuy import fees, pickup
from linli.groupbuy import service as groups
from linli.groupbuy.models import Contribution, GroupOrder, GroupState, Outcome
from linli.identity.models import User
from linli.live.room.purchases import ticker_name
from linli.orders.models import Fulfilment, Order, OrderStatus

LEADING = 5


@dataclass(frozen=True)
class Progress:
    terms: groups.Terms
    mine: GroupOrder | None
    my_community_id: int | None
    my_community_name: str | None
    leading: list[GroupOrder]


def progress_entry(group: GroupOrder) -> dict[str, Any]:
    """One community's counter as the room sends it (``progress`` items, keyed by community id)."""
    return {
        "community_id": group.community_id,
        "community_name": group.community_name,
        "units": group.units,
        "threshold": group.threshold,
        "reached": group.units >= group.threshold,
    }


async def progress(session: AsyncSession, session_id: int, user: User | None) -> Progress:
    """The viewer's own community's group (None before its first paid order) and the leading ones."""
    terms = await groups.terms_of(session, session_id)
    all_groups = await groups.list_groups(session, session_id)
    community = await community_service.community_of(session, user.id) if user is not None else None
    mine = next((g for g in all_groups if community is not None and g.community_id == community.id), None)
    return Progress(
        terms=terms,
        mine=mine,
        my_community_id=community.id if community is not None else None,
        my_community_name=community.name if community is not None else None,
        leading=all_groups[:LEADING],
    )


@dataclass(frozen=True)
class Step:
    key: str
    label: str  # in the reader's locale
    at: datetime | None

    @property
    def done(self) -> bool:
        return self.at is not None


@dataclass(frozen=True)
class OrderGroupView:
    order_id: int
    order_status: str
    message: str
    group: GroupOrder | None
    code: str | None
    code_status: str | None
    units_total: int
    units_picked: int
    place_name: str
    place_address: str
    fee_fen: int
    fee_status: str | None
    fee_text: str  # the fee's state in the reader's locale ("" without a fee)
    fee_payable: bool  # due, on an order still paid: the neighbour may pay it online now
    steps: list[Step]
    promise_text: str
    units_text: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "order_status": self.order_status,
            "message": self.message,
            "group": None
            if self.group is None
            else {**progress_entry(self.group), "state": self.group.state, "outcome": self.group.outcome},
            "code": self.code,
            "code_status": self.code_status,
            "units_total": self.units_total,
            "units_picked": self.units_picked,
            "place_name": self.place_name,
            "place_address": self.place_address,
            "fee_fen": self.fee_fen,
            "fee_status": self.fee_status,
            "fee": None
            if self.fee_status is None
            else {
                "amount_fen": self.fee_fen,
                "status": self.fee_status,
                "text": self.fee_text,
                "payable": self.fee_payable,
            },
            "promise_text": self.promise_text,
            "units_text": self.units_text,
            "steps": [
                {"key": s.key, "label": s.label, "done": s.done, "at": s.at.isoformat() if s.at else None}
                for s in self.steps
            ],
        }


def _message(
    order: Order, group: GroupOrder | None, terms: groups.Terms, picked: int, total: int
) -> Message | None:
    """The order's one status line (``groupbuy.status.*``); None for an order not paid yet."""

    def status(key: str, **params: object) -> Message:
        return Message(f"groupbuy.status.{key}", params)

    if order.status == OrderStatus.completed.value:
        return status("completed")
    if order.status in (OrderStatus.refunded.value, OrderStatus.refund_requested.value):
        refunded_group = group is not None and group.outcome == Outcome.refunded
        return status("refunded_group" if refunded_group else "refunded")
    if order.status != OrderStatus.paid.value:
        return None
    if 0 < picked < total:
        return status("picked_partly", picked=picked, left=total - picked)
    if group is None:
        return status("store_paid" if order.fulfilment == Fulfilment.store.value else "paid")
    left = max(group.threshold - group.units, 0)
    if group.state == GroupState.collecting:
        return status("collecting", threshold=group.threshold, units=group.units, left=left)
    if group.state == GroupState.reached:
        return status("reached", threshold=group.threshold, promise=terms.promise)
    if group.state == GroupState.delivered:
        return status("delivered")
    if group.state == GroupState.dispatched:
        return status("dispatched")
    if group.outcome == Outcome.store_pickup:
        return status("store_pickup")
    if group.outcome == Outcome.delivery_fee:
        return status("delivery_fee")
    return status("closed")


async def order_view(session: AsyncSession, order: Order, *, locale: str = DEFAULT_LOCALE) -> OrderGroupView:
    """The order's group progress, pickup code, delivery fee and fulfilment steps, as its owner sees them,
    in ``locale``."""
    terms = await groups.terms_of(session, order.session_id)
    group = await session.scalar(
        select(GroupOrder)
        .join(Contribution, Contribution.group_order_id == GroupOrder.id)
        .where(Contribution.order_id == order.id)
        .execution_options(populate_existing=True)
    )
    code = await pickup.code_of(session, order.id)
    fee = await fees.fee_of(session, order.id, fresh=True)
    if order.fulfilment == Fulfilment.store.value and order.store_id is not None:
        store = await session.get(Store, order.store_id)
        place_name, place_address = (store.name, store.address) if store else ("", "")
    elif order.pickup_point_id is not None:
        point = await session.get(PickupPoint, order.pickup_point_id)
        place_name, place_address = (point.name, point.address) if point else ("", "")
    else:
        place_name = place_address = ""
    picked = code.units_picked if code is not None else 0
    total = code.units_total if code is not None else order.units

    def step(key: str, at: datetime | None) -> Step:
        return Step(key, Message(f"groupbuy.step.{key}").render(locale), at)

    steps = [step("paid", order.paid_at)]
    if group is not None:
        settled = group.closed_at if group.outcome is not None else None
        steps += [
            step("reached", group.reached_at or settled),
            step("dispatched", group.dispatched_at),
            step("delivered", group.delivered_at),
        ]
    steps.append(step("picked_up", order.completed_at))
    show_code = code is not None and order.status == OrderStatus.paid.value
    return OrderGroupView(
        order_id=order.id,
        order_status=order.status,
        message=line.render(locale) if (line := _message(order, group, terms, picked, total)) else "",
        group=group,
        code=code.code if show_code and code is not None else None,
        code_status=code.status if code is not None else None,
        units_total=total,
        units_picked=picked,
        place_name=place_name,
        place_address=place_address,
        fee_fen=fee.amount_fen if fee is not None else 0,
        fee_status=fee.status if fee is not None else None,
        fee_text=fees.fee_text(fee, locale) if fee is not None else "",
        fee_payable=fees.is_payable(fee, order),
        steps=steps,
        promise_text=terms.promise.render(locale),
        units_text=Message(
            "groupbuy.order.units",
            {"name": group.community_name, "units": group.units, "threshold": group.threshold},
        ).render(locale)
        if group is not None
        else "",
    )


@dataclass(frozen=True)
class Member:
    user_id: int
    name: str
    phone_tail: str
    source: str
    joined_at: datetime


async def members_of(session: AsyncSession, community_id: int, *, mask: bool) -> list[Member]:
    """The community's members, newest first; leaders see masked names (operators full ones)."""
    rows = (
        await session.execute(
            select(Membership, User)
            .join(User, User.id == Membership.user_id)
            .where(Membership.community_id == community_id)
            .order_by(Membership.joined_at.desc(), User.id)
        )
    ).all()
    return [
        Member(
            user_id=user.id,
            name=ticker_name(user.display_name) if mask else user.display_name,
            phone_tail=user.phone[-4:] if user.phone else "",
            source=membership.source,
            joined_at=membership.joined_at,
        )
        for membership, user in rows
    ]
