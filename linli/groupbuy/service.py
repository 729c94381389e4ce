"""Group orders' verbs: a session's terms, counting paid units up and down, and settling at cutoff.

Counting happens in the ``groupbuy.count`` consumer of ``order.paid`` / ``order.refunded`` /
``order.cancelled`` (groupbuy sits above orders, which cannot call it from the payment's transaction; the
consumer keeps the payment's hot path free of the group's row lock). It is exactly-once by construction
rather than by the consumer's single runner: an order's ``Contribution`` row (primary key ``order_id``) is
inserted once and taken back once, and the group's units move by one conditional ``UPDATE … RETURNING``
that the database serialises on the group's row; the crossing update is the one whose before-value was
under the threshold, and the announcement is guarded by a second ``UPDATE … WHERE reached_at IS NULL``.

States::

    collecting ⇄ reached ─cutoff─▶ closed ─dispatch─▶ dispatched ─arrive─▶ delivered

A reached group that a refund drops below the threshold before cutoff goes back to ``collecting``
(``group_order.fell_below``); reaching it again does not announce again (``reached_at`` is set once). At
cutoff a group below its threshold is settled by the session's policy (``BelowPolicy``); after cutoff
refunds still count down, but a settled group stays settled (the promise to the others is kept).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community import service as community_service
from linli.community.models import Community, PickupPoint, Store
from linli.core.clock import SHANGHAI, as_utc, to_local, utcnow
from linli.core.db import dialect_insert, insert_ignoring
from linli.core.events import Subjects, record_event
from linli.core.i18n import DEFAULT_LOCALE, Message
from linli.core.jobs import cancel_job, schedule_job
from linli.groupbuy import events, messages
from linli.groupbuy.errors import GroupOrderNotFound, InvalidSettings, NoStoreForPickup, SettingsLocked
from linli.groupbuy.models import (
    BelowPolicy,
    Contribution,
    GroupOrder,
    GroupOrderChange,
    GroupSettings,
    GroupState,
    Outcome,
)
from linli.groupbuy.schemas import SettingsUpdate
from linli.identity.models import User
from linli.live import service as live_service
from linli.live.errors import SessionNotFound
from linli.live.models import LiveSession
from linli.live.room import service as room_service
from linli.orders import service as orders
from linli.orders.errors import InvalidOrderTransition
from linli.orders.models import Fulfilment, Order, OrderStatus

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 50
DELIVER_AT = time(10, 0)  # the default promise: 10:00 Shanghai the day after the session
CUTOFF_JOB = "groupbuy.cutoff"
OPEN_STATES = (GroupState.collecting.value, GroupState.reached.value)


def cutoff_job_key(session_id: int) -> str:
    return f"{CUTOFF_JOB}:{session_id}"


async def schedule_cutoff(session: AsyncSession, session_id: int, at: datetime) -> None:
    """The session's durable cutoff timer (one per session: its key; fired after any restart)."""
    await schedule_job(session, CUTOFF_JOB, at, {"session_id": session_id}, key=cutoff_job_key(session_id))


# --- terms ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Terms:
    """A session's group-order terms, defaults filled in."""

    session_id: int
    threshold: int
    deliver_by: datetime
    cutoff_at: datetime | None  # None: when the session ends
    below_policy: BelowPolicy
    delivery_fee_fen: int
    collect_fee: bool
    fallback_store_id: int | None
    promise_text: str  # zh-CN, as events and the room's notices carry it
    promise: Message  # the same, for the reader's locale


def default_deliver_by(scheduled_start: datetime) -> datetime:
    """10:00 Asia/Shanghai on the day after the session's (scheduled) start, in UTC."""
    day = to_local(scheduled_start).date() + timedelta(days=1)
    return datetime.combine(day, DELIVER_AT, tzinfo=SHANGHAI).astimezone(UTC)


def promise_text(live_session: LiveSession, deliver_by: datetime) -> str:
    """ "明天上午10点前免费配送到小区自提点": the day relative to the session, the hour in Shanghai."""
    return messages.promise(live_session.scheduled_start, deliver_by).render(DEFAULT_LOCALE)


def _terms(session_id: int, scheduled_start: datetime, row: GroupSettings | None) -> Terms:
    deliver_by = (
        row.deliver_by
        if row is not None and row.deliver_by is not None
        else default_deliver_by(scheduled_start)
    )
    promise = messages.promise(scheduled_start, deliver_by)
    return Terms(
        session_id=session_id,
        threshold=row.threshold if row is not None else DEFAULT_THRESHOLD,
        deliver_by=as_utc(deliver_by),
        cutoff_at=as_utc(row.cutoff_at) if row is not None and row.cutoff_at is not None else None,
        below_policy=BelowPolicy(row.below_policy) if row is not None else BelowPolicy.deliver,
        delivery_fee_fen=row.delivery_fee_fen if row is not None else 0,
        collect_fee=row.collect_fee if row is not None else False,
        fallback_store_id=row.fallback_store_id if row is not None else None,
        promise_text=promise.render(DEFAULT_LOCALE),
        promise=promise,
    )


async def terms_of(session: AsyncSession, session_id: int) -> Terms:
    """The session's terms (``SessionNotFound`` for an unknown session), in one query: the session's
    start and its settings row, not the session with its lineup (every paid order asks)."""
    found = (
        await session.execute(
            select(LiveSession.scheduled_start, GroupSettings)
            .outerjoin(GroupSettings, GroupSettings.session_id == LiveSession.id)
            .where(LiveSession.id == session_id)
        )
    ).one_or_none()
    if found is None:
        raise SessionNotFound(f"no live session with id {session_id}", session_id=session_id)
    return _terms(session_id, found[0], found[1])


async def update_settings(
    session: AsyncSession, session_id: int, data: SettingsUpdate, *, actor: User, now: datetime | None = None
) -> Terms:
    """Set the session's terms (fields left out keep their value). Refused once its groups were settled
    (``SettingsLocked``). A new threshold applies to the open groups at once (they may reach or fall
    below it); a new cutoff moves the durable timer."""
    now = now or utcnow()
    live_session = await live_service.get_session(session, session_id)
    if await session.scalar(
        select(GroupOrder.id)
        .where(GroupOrder.session_id == session_id, GroupOrder.closed_at.is_not(None))
        .limit(1)
    ):
        raise SettingsLocked(
            "this session's group orders were settled at cutoff; its terms can no longer change"
        )
    row = await session.get(GroupSettings, session_id)
    if row is None:
        row = GroupSettings(
            session_id=session_id,
            threshold=DEFAULT_THRESHOLD,
            below_policy=BelowPolicy.deliver.value,
            delivery_fee_fen=0,
            collect_fee=False,
        )
        session.add(row)
    changes = data.model_dump(exclude_unset=True)
    if "fallback_store_id" in changes and changes["fallback_store_id"] is not None:
        try:
            store = await community_service.get_store(session, changes["fallback_store_id"])
        except community_service.StoreNotFound:
            raise InvalidSettings("no such store", field="fallback_store_id") from None
        if store.archived_at is not None:
            raise InvalidSettings(f"{store.name} is closed", field="fallback_store_id")
    if changes.get("cutoff_at") is not None and changes["cutoff_at"] <= now:
        raise InvalidSettings("the cutoff must be in the future", field="cutoff_at")
    for name, value in changes.items():
        setattr(row, name, value.value if isinstance(value, BelowPolicy) else value)
    row.updated_by = actor.id
    row.updated_at = now
    await session.flush()
    terms = _terms(live_session.id, live_session.scheduled_start, row)
    moved = "deliver_by" in changes or "cutoff_at" in changes
    if moved and terms.deliver_by <= (terms.cutoff_at or now):
        raise InvalidSettings("the delivery promise must come after the cutoff", field="deliver_by")
    record_event(
        session,
        events.SETTINGS_CHANGED,
        actor_id=actor.id,
        subjects=Subjects(session_id=session_id),
        payload={
            k: (v.isoformat() if isinstance(v, datetime) else str(v) if v is not None else None)
            for k, v in changes.items()
        },
        occurred_at=now,
    )
    if "cutoff_at" in changes:
        await cancel_job(session, cutoff_job_key(session_id))
        if terms.cutoff_at is not None:
            await schedule_cutoff(session, session_id, terms.cutoff_at)
    if "threshold" in changes:
        groups = await session.execute(
            select(GroupOrder.id, GroupOrder.state).where(
                GroupOrder.session_id == session_id, GroupOrder.state.in_(OPEN_STATES)
            )
        )
        for group_id, was in list(groups.all()):
            await session.execute(
                update(GroupOrder)
                .where(GroupOrder.id == group_id)
                .values(threshold=terms.threshold)
                .execution_options(synchronize_session=False)
            )
            await _move_units(
                session, group_id, 0, terms, now=now, actor_id=actor.id, reason="threshold changed", was=was
            )
    return terms


# --- group orders ----------------------------------------------------------------------------------


def _subjects(group: GroupOrder) -> Subjects:
    return Subjects(session_id=group.session_id, community_id=group.community_id)


def _history(
    session: AsyncSession,
    group: GroupOrder,
    before: str | None,
    after: str,
    *,
    units: int,
    now: datetime,
    actor_id: int | None = None,
    reason: str = "",
) -> None:
    session.add(
        GroupOrderChange(
            group_order_id=group.id,
            from_state=before,
            to_state=after,
            units=units,
            at=now,
            actor_id=actor_id,
            reason=reason[:200],
        )
    )


def record_group_event(
    session: AsyncSession,
    group: GroupOrder,
    type_: str,
    *,
    now: datetime,
    actor_id: int | None = None,
    **fields: Any,
) -> None:
    """A group order's event: subjects session and community, payload its id and name plus ``fields``."""
    record_event(
        session,
        type_,
        actor_id=actor_id,
        subjects=_subjects(group),
        payload={"group_order_id": group.id, "community_name": group.community_name, **fields},
        occurred_at=now,
    )


async def place_fields(session: AsyncSession, group: GroupOrder) -> dict[str, Any]:
    """Where the group is delivered, as its closed / dispatched / delivered events carry it."""
    point = await session.get(PickupPoint, group.pickup_point_id) if group.pickup_point_id else None
    return {
        "pickup_point_id": group.pickup_point_id,
        "pickup_point_name": point.name if point is not None else "",
    }


async def get_group_order(session: AsyncSession, group_order_id: int, *, fresh: bool = False) -> GroupOrder:
    group = await session.get(GroupOrder, group_order_id, populate_existing=fresh)
    if group is None:
        raise GroupOrderNotFound(f"no group order {group_order_id}", group_order_id=group_order_id)
    return group


async def group_of(session: AsyncSession, session_id: int, community_id: int) -> GroupOrder | None:
    return await session.scalar(
        select(GroupOrder).where(GroupOrder.session_id == session_id, GroupOrder.community_id == community_id)
    )


async def list_groups(session: AsyncSession, session_id: int) -> list[GroupOrder]:
    """The session's group orders, most units first."""
    rows = await session.scalars(
        select(GroupOrder)
        .where(GroupOrder.session_id == session_id)
        .order_by(GroupOrder.units.desc(), GroupOrder.id)
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


async def group_history(session: AsyncSession, group_order_id: int) -> list[GroupOrderChange]:
    rows = await session.scalars(
        select(GroupOrderChange)
        .where(GroupOrderChange.group_order_id == group_order_id)
        .order_by(GroupOrderChange.id)
    )
    return list(rows.all())


async def open_group(
    session: AsyncSession, session_id: int, community: Community, terms: Terms, *, now: datetime
) -> GroupOrder:
    """The (session, community) group order, opened now if it does not exist (``group_order.opened``);
    the unique pair decides a race between two openers, the loser reads the winner's row."""
    group = await group_of(session, session_id, community.id)
    if group is not None:
        return group  # every paid order but the community's first
    points = community.open_pickup_points
    inserted = (
        await session.execute(
            dialect_insert(session)(GroupOrder)
            .values(
                session_id=session_id,
                community_id=community.id,
                community_name=community.name,
                pickup_point_id=points[0].id if points else None,
                threshold=terms.threshold,
                units=0,
                state=GroupState.collecting.value,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=[GroupOrder.session_id, GroupOrder.community_id])
            .returning(GroupOrder.id)
        )
    ).scalar_one_or_none()
    group = await group_of(session, session_id, community.id)
    assert group is not None
    if inserted is not None:
        _history(
            session, group, None, GroupState.collecting.value, units=0, now=now, reason="first paid order"
        )
        record_group_event(session, group, events.OPENED, now=now, threshold=group.threshold)
        if terms.cutoff_at is not None:
            await schedule_cutoff(session, session_id, terms.cutoff_at)
    return group


async def _move_units(
    session: AsyncSession,
    group_id: int,
    n: int,
    terms: Terms,
    *,
    now: datetime,
    actor_id: int | None = None,
    reason: str = "",
    was: str | None = None,
) -> GroupOrder:
    """Add ``n`` (negative: take back) paid units to a group, in one conditional update the database
    serialises on the group's row: an open group's state follows its units (``collecting`` ⇄
    ``reached``); a settled one only counts. Records the history and the events of this change. ``was``:
    the state before, when a new threshold makes it unknowable from the units."""
    reach = GroupOrder.units + n >= GroupOrder.threshold
    group: GroupOrder = (
        await session.execute(
            update(GroupOrder)
            .where(GroupOrder.id == group_id)
            .values(
                units=GroupOrder.units + n,
                state=case(
                    (
                        GroupOrder.state.in_(OPEN_STATES),
                        case((reach, GroupState.reached.value), else_=GroupState.collecting.value),
                    ),
                    else_=GroupOrder.state,
                ),
                updated_at=now,
            )
            .returning(GroupOrder)
            # The returned row refreshes the group in this session (it may hold it from before).
            .execution_options(synchronize_session=False, populate_existing=True)
        )
    ).scalar_one()
    units, state, threshold = group.units, group.state, group.threshold
    before = units - n
    if state in OPEN_STATES:
        if was is None:
            was = GroupState.reached.value if before >= threshold else GroupState.collecting.value
        if was != state:
            _history(session, group, was, state, units=units, now=now, actor_id=actor_id, reason=reason)
        if was == GroupState.collecting.value and state == GroupState.reached.value:
            await _announce_reached(session, group, terms, now=now)
        elif was == GroupState.reached.value and state == GroupState.collecting.value:
            record_group_event(
                session,
                group,
                events.FELL_BELOW,
                now=now,
                actor_id=actor_id,
                units=units,
                threshold=threshold,
            )
    if n != 0 or state in OPEN_STATES:
        record_group_event(
            session,
            group,
            events.PROGRESSED,
            now=now,
            actor_id=actor_id,
            units=units,
            threshold=threshold,
            reached=units >= threshold,
            state=state,
        )
    return group


async def _announce_reached(session: AsyncSession, group: GroupOrder, terms: Terms, *, now: datetime) -> None:
    """The first crossing only: ``reached_at`` is claimed by a conditional update (the group's row is
    already locked by this transaction's units update, so the check and the claim cannot interleave)."""
    claimed = (
        await session.execute(
            update(GroupOrder)
            .where(GroupOrder.id == group.id, GroupOrder.reached_at.is_(None))
            .values(reached_at=now)
            .returning(GroupOrder.id)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if claimed is None:
        return
    group.reached_at = now
    record_group_event(
        session,
        group,
        events.REACHED,
        now=now,
        units=group.units,
        threshold=group.threshold,
        deliver_by=terms.deliver_by.isoformat(),
        promise_text=terms.promise_text,
    )
    when = terms.promise_text.split("前", 1)[0]
    room_service.post_system_notice(
        session,
        group.session_id,
        f"恭喜{group.community_name}社区,已集齐{group.threshold}份,{when}准时送达!",
        kind="group_reached",
        subjects=_subjects(group),
    )


async def count_paid_order(
    session: AsyncSession, order_id: int, *, now: datetime | None = None
) -> GroupOrder | None:
    """A paid order joins its community's group (opened by the first one): its units count once,
    however often this is called (``Contribution`` primary key). Store-pickup orders and orders of
    neighbours without a community are not delivered to a community, so they belong to no group. A
    payment that arrives after cutoff still counts and its order follows the group's outcome."""
    from linli.groupbuy import pickup

    now = now or utcnow()
    order = await orders.get_order(session, order_id)
    if order.status not in (OrderStatus.paid.value, OrderStatus.completed.value):
        return None
    await pickup.issue_code(session, order, now=now)
    if order.community_id is None or order.fulfilment != Fulfilment.pickup.value:
        return None
    community = await community_service.get_community(session, order.community_id)
    terms = await terms_of(session, order.session_id)
    group = await open_group(session, order.session_id, community, terms, now=now)
    inserted = (
        await session.execute(
            dialect_insert(session)(Contribution)
            .values(order_id=order.id, group_order_id=group.id, units=order.units, counted_at=now)
            .on_conflict_do_nothing(index_elements=[Contribution.order_id])
            .returning(Contribution.order_id)
        )
    ).scalar_one_or_none()
    if inserted is None:
        return group
    group = await _move_units(session, group.id, order.units, terms, now=now, reason=f"order {order.id} paid")
    if group.outcome is not None:
        await _settle_order(session, group, order, terms, now=now)
    return group


async def count_paid_orders(session: AsyncSession, paid: list[tuple[int, datetime]]) -> None:
    """``count_paid_order`` for a run of ``order.paid`` events, each ``(order id, when it was paid)``,
    in a few statements however many orders: the orders read at once, their pickup codes and
    contributions inserted at once, and each group's units moved once, by the run's sum. That the
    counts land together is the only difference from counting the orders one by one: a group that
    crosses its threshold within the run has one history row and one ``group_order.progressed`` for it,
    at the run's end count. Idempotent, as ``count_paid_order`` is."""
    from linli.groupbuy import pickup

    when: dict[int, datetime] = {}
    for order_id, at in paid:
        when.setdefault(order_id, as_utc(at))
    found = await session.scalars(
        select(Order).where(
            Order.id.in_(sorted(when)),
            Order.status.in_((OrderStatus.paid.value, OrderStatus.completed.value)),
        )
    )
    counted = sorted(found.all(), key=lambda order: order.id)
    if not counted:
        return
    now = max(when[order.id] for order in counted)
    await pickup.issue_codes(session, counted, now=now)
    grouped = [o for o in counted if o.community_id is not None and o.fulfilment == Fulfilment.pickup.value]
    if not grouped:
        return
    groups = {
        (group.session_id, group.community_id): group
        for group in await session.scalars(
            select(GroupOrder).where(
                GroupOrder.session_id.in_(sorted({o.session_id for o in grouped})),
                GroupOrder.community_id.in_(sorted({o.community_id for o in grouped if o.community_id})),
            )
        )
    }
    terms = {sid: await terms_of(session, sid) for sid in sorted({o.session_id for o in grouped})}
    group_of_order: dict[int, GroupOrder] = {}
    for order in grouped:
        assert order.community_id is not None
        key = (order.session_id, order.community_id)
        if key not in groups:
            community = await community_service.get_community(session, order.community_id)
            groups[key] = await open_group(session, order.session_id, community, terms[key[0]], now=now)
        group_of_order[order.id] = groups[key]
    rows = [
        {
            "order_id": o.id,
            "group_order_id": group_of_order[o.id].id,
            "units": o.units,
            "counted_at": when[o.id],
        }
        for o in grouped
    ]
    inserted = set(await session.scalars(insert_ignoring(session, Contribution, rows, Contribution.order_id)))
    by_group: dict[int, list[Order]] = {}
    for order in grouped:
        if order.id in inserted:
            by_group.setdefault(group_of_order[order.id].id, []).append(order)
    for group_id, orders_in in by_group.items():
        first = orders_in[0]
        ids = ", ".join(str(o.id) for o in orders_in)
        group = await _move_units(
            session,
            group_id,
            sum(o.units for o in orders_in),
            terms[first.session_id],
            now=now,
            reason=f"order {ids} paid" if len(orders_in) == 1 else f"orders {ids} paid",
        )
        if group.outcome is not None:
            for order in orders_in:
                await _settle_order(session, group, order, terms[first.session_id], now=when[order.id])


async def uncount_order(
    session: AsyncSession, order_id: int, *, reason: str, now: datetime | None = None
) -> GroupOrder | None:
    """A refunded (or cancelled) order's units leave its group, once (``uncounted_at`` is claimed by a
    conditional update); its pickup code is voided."""
    from linli.groupbuy import pickup

    now = now or utcnow()
    await pickup.void_code(session, order_id, now=now)
    row = (
        await session.execute(
            update(Contribution)
            .where(Contribution.order_id == order_id, Contribution.uncounted_at.is_(None))
            .values(uncounted_at=now)
            .returning(Contribution.group_order_id, Contribution.units)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if row is None:
        return None
    group = await get_group_order(session, int(row[0]))
    terms = await terms_of(session, group.session_id)
    return await _move_units(session, group.id, -int(row[1]), terms, now=now, reason=reason)


async def contributing_orders(session: AsyncSession, group_order_id: int) -> list[Order]:
    """The orders whose units count in the group now."""
    rows = await session.scalars(
        select(Order)
        .join(Contribution, Contribution.order_id == Order.id)
        .where(Contribution.group_order_id == group_order_id, Contribution.uncounted_at.is_(None))
        .order_by(Order.id)
    )
    return list(rows.all())


# --- cutoff ----------------------------------------------------------------------------------------


async def close_session(
    session: AsyncSession, session_id: int, *, now: datetime | None = None
) -> list[GroupOrder]:
    """Cutoff: every open group of the session is closed, once (a conditional update on its state). A
    group at its threshold gets free delivery; one below it is settled by the session's policy and each
    of its buyers is told what happened and why. Idempotent: the durable timer may fire again."""
    now = now or utcnow()
    terms = await terms_of(session, session_id)
    closed = []
    ids = await session.scalars(
        select(GroupOrder.id)
        .where(GroupOrder.session_id == session_id, GroupOrder.state.in_(OPEN_STATES))
        .order_by(GroupOrder.id)
    )
    for group_id in list(ids.all()):
        below = {
            BelowPolicy.deliver: Outcome.delivery_fee.value,
            BelowPolicy.store_pickup: Outcome.store_pickup.value,
            BelowPolicy.refund: Outcome.refunded.value,
        }[terms.below_policy]
        row = (
            await session.execute(
                update(GroupOrder)
                .where(GroupOrder.id == group_id, GroupOrder.state.in_(OPEN_STATES))
                .values(
                    state=GroupState.closed.value,
                    closed_at=now,
                    outcome=case(
                        (GroupOrder.units >= GroupOrder.threshold, Outcome.free_delivery.value), else_=below
                    ),
                    updated_at=now,
                )
                .returning(GroupOrder.state)
                .execution_options(synchronize_session=False)
            )
        ).one_or_none()
        if row is None:
            continue
        group = await get_group_order(session, group_id, fresh=True)
        was = GroupState.reached.value if group.units >= group.threshold else GroupState.collecting.value
        _history(
            session,
            group,
            was,
            GroupState.closed.value,
            units=group.units,
            now=now,
            reason=f"cutoff: {group.outcome}",
        )
        record_group_event(
            session,
            group,
            events.CLOSED,
            now=now,
            **await place_fields(session, group),
            units=group.units,
            threshold=group.threshold,
            outcome=group.outcome,
        )
        for order in await contributing_orders(session, group.id):
            await _settle_order(session, group, order, terms, now=now)
        closed.append(group)
    return closed


async def _nearest_store(session: AsyncSession, group: GroupOrder, terms: Terms) -> Store:
    """The session's fallback store if set, else the first open store in the community's district, else
    the first open store (stores have no coordinates; the district is what "nearest" can mean here)."""
    if terms.fallback_store_id is not None:
        store = await session.get(Store, terms.fallback_store_id)
        if store is not None and store.archived_at is None:
            return store
    community = await session.get(Community, group.community_id)
    district = community.district if community is not None else ""
    stores = list(
        (await session.scalars(select(Store).where(Store.archived_at.is_(None)).order_by(Store.id))).all()
    )
    for store in stores:
        if district and store.district == district:
            return store
    if not stores:
        raise NoStoreForPickup("there is no open store to move the orders to")
    return stores[0]


async def _settle_order(
    session: AsyncSession, group: GroupOrder, order: Order, terms: Terms, *, now: datetime
) -> None:
    """Apply the group's outcome to one of its orders, and tell its buyer (one inbox item per order)."""
    from linli.groupbuy import fees, pickup

    outcome = Outcome(group.outcome or Outcome.free_delivery.value)
    key = "groupbuy.outcome"
    name, units, threshold = group.community_name, group.units, group.threshold
    if outcome is Outcome.free_delivery:
        await messages.tell_buyer(session, order, messages.reached(name, threshold, terms.promise), key=key)
        return
    if outcome is Outcome.delivery_fee:
        fee = terms.delivery_fee_fen
        due = await fees.settle_fee(session, group, order, fee, collect=terms.collect_fee, now=now)
        write = messages.fee_due if due else messages.fee_waived
        await messages.tell_buyer(session, order, write(name, units, threshold, fee), key=key)
        return
    if outcome is Outcome.store_pickup:
        store = await _nearest_store(session, group, terms)
        if order.status == OrderStatus.paid.value:
            order = await orders.move_to_store(
                session, order.id, store.id, reason=f"group {group.id} below threshold", now=now
            )
            await pickup.move_code(session, order, now=now)
        told = messages.store_pickup(name, units, threshold, store.name, store.address)
        await messages.tell_buyer(session, order, told, key=key)
        return
    try:
        await orders.approve_refund(session, order.id, actor=None, reason=f"{name}未成团,全额退款", now=now)
    except InvalidOrderTransition:
        log.warning("group %s: order %s could not be refunded (%s)", group.id, order.id, order.status)
        return
    told = messages.refunded(name, units, threshold, order.total_fen)
    await messages.tell_buyer(session, order, told, key=key)


async def session_ended(session: AsyncSession, session_id: int, at: datetime) -> None:
    """The session ended: without an explicit cutoff, that is the cutoff (the durable timer fires now)."""
    row = await session.get(GroupSettings, session_id)
    if row is not None and row.cutoff_at is not None:
        return
    await schedule_cutoff(session, session_id, at)
