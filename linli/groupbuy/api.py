"""The groupbuy domain's JSON API: progress and terms (public), a neighbour's own order status and
community, leaders' pickups at their own point, operators' settings, cutoff, board, pick lists and
batches. Every page action is here too."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community import service as community_service
from linli.community.schemas import MembershipSource
from linli.core.deps import RuntimeDep, SessionDep
from linli.core.templating import locale_of
from linli.groupbuy import fees, fulfilment, members, pickup, service, views
from linli.groupbuy.errors import NoDeliveryFee, NoPickupCode, NotYourPickupPoint, WrongPickupCode
from linli.groupbuy.models import DeliveryBatch, DeliveryFee, GroupOrder
from linli.groupbuy.schemas import (
    BatchCreate,
    BatchRead,
    FeeRead,
    GroupOrderDetail,
    GroupOrderRead,
    MemberMove,
    MemberRemove,
    MembershipJoin,
    MembershipRead,
    PickupRead,
    PickupVerify,
    ProgressRead,
    SettingsUpdate,
    TermsRead,
)
from linli.identity.deps import CurrentUser, LeaderUser, OperatorUser, OptionalUser, client_address
from linli.identity.models import Role, User
from linli.orders import service as orders
from linli.orders.models import Order
from linli.orders.payments.schemas import PaymentCreate, PaymentRead

router = APIRouter()
public = APIRouter(prefix="/api/v1/groupbuy", tags=["group orders"])
leader = APIRouter(prefix="/api/v1/leader", tags=["group orders (leaders)"])
admin = APIRouter(prefix="/api/v1/admin/groupbuy", tags=["group orders (operators)"])

Id = Annotated[int, Path(ge=1, le=2**62)]


def terms_read(terms: service.Terms, locale: str) -> TermsRead:
    """The terms, their promise in ``locale``."""
    fields = {name: getattr(terms, name) for name in TermsRead.model_fields if name != "promise_text"}
    return TermsRead(**fields, promise_text=terms.promise.render(locale))


# --- public and neighbours -------------------------------------------------------------------------


@public.get("/sessions/{session_id}/terms")
async def read_terms(request: Request, session: SessionDep, session_id: Id) -> TermsRead:
    """The session's threshold, delivery promise, cutoff and below-threshold policy."""
    return terms_read(await service.terms_of(session, session_id), locale_of(request))


@public.get("/sessions/{session_id}/progress")
async def read_progress(
    request: Request, session: SessionDep, session_id: Id, user: OptionalUser
) -> ProgressRead:
    """The viewer's own community's group and the leading communities ("XX花园 已集42份,还差8份")."""
    found = await views.progress(session, session_id, user)
    return ProgressRead(
        session_id=session_id,
        threshold=found.terms.threshold,
        promise_text=found.terms.promise.render(locale_of(request)),
        mine=GroupOrderRead.model_validate(found.mine) if found.mine is not None else None,
        my_community_id=found.my_community_id,
        my_community_name=found.my_community_name,
        leading=[GroupOrderRead.model_validate(g) for g in found.leading],
    )


@public.get("/orders/{order_id}")
async def read_order_status(
    request: Request, session: SessionDep, user: CurrentUser, order_id: Id
) -> dict[str, Any]:
    """The neighbour's own order: its group's progress, pickup code, delivery fee and fulfilment steps
    (texts in the reader's locale)."""
    order = await orders.get_order_of(session, order_id, user.id)
    return (await views.order_view(session, order, locale=locale_of(request))).as_dict()


def fee_read(fee: DeliveryFee, order: Order, locale: str) -> FeeRead:
    return FeeRead(
        order_id=fee.order_id,
        amount_fen=fee.amount_fen,
        status=fee.status,
        payable=fees.is_payable(fee, order),
        text=fees.fee_text(fee, locale),
        paid_at=fee.paid_at,
        collected_at=fee.collected_at,
        refunded_at=fee.refunded_at,
    )


@public.get("/orders/{order_id}/fee")
async def read_fee(request: Request, session: SessionDep, user: CurrentUser, order_id: Id) -> FeeRead:
    """The delivery fee of the neighbour's own order (404 when it has none)."""
    order = await orders.get_order_of(session, order_id, user.id)
    fee = await fees.fee_of(session, order.id, fresh=True)
    if fee is None:
        raise NoDeliveryFee("this order has no delivery fee", order_id=order_id)
    return fee_read(fee, order, locale_of(request))


@public.post("/orders/{order_id}/fee/payments", status_code=201)
async def pay_fee(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: CurrentUser,
    order_id: Id,
    data: PaymentCreate,
) -> PaymentRead:
    """Start (or resume) paying the delivery fee of your order online, through the same providers as
    orders: answers what the client does next in ``checkout``. The fee is marked paid when the
    provider's notification arrives. 409 when nothing is due (waived, paid, collected, refunded)."""
    order = await orders.get_order_of(session, order_id, user.id)
    payment = await fees.start_fee_payment(
        session,
        runtime,
        order,
        provider_name=data.provider,
        scene=data.scene,
        payer_openid=data.payer_openid,
        payer_ip=client_address(request),
    )
    return PaymentRead.of(payment)


@public.get("/orders/{order_id}/qr.svg")
async def read_order_qr(session: SessionDep, user: CurrentUser, order_id: Id) -> Response:
    """The order's pickup code as a QR code (SVG), for the leader's camera."""
    order = await orders.get_order_of(session, order_id, user.id)
    view = await views.order_view(session, order)
    if view.code is None:
        raise NoPickupCode("this order has no open pickup code", order_id=order_id)
    return Response(content=str(pickup.qr_svg(view.code)), media_type="image/svg+xml")


@public.post("/communities/{community_id}/join")
async def join_community(
    session: SessionDep, user: CurrentUser, community_id: Id, body: MembershipJoin | None = None
) -> dict[str, Any]:
    """Join (or move to) a community from its link, or a neighbour's invite (``inviter_id``, a member of
    that community). Paid orders stay with the community they were placed in."""
    return await join(session, user, community_id, body.inviter_id if body is not None else None)


async def join(
    session: AsyncSession, user: User, community_id: int, inviter_id: int | None
) -> dict[str, Any]:
    source = MembershipSource.chosen
    if inviter_id is not None and inviter_id != user.id:
        inviter = await community_service.membership_of(session, inviter_id)
        if inviter is not None and inviter.community_id == community_id:
            source = MembershipSource.invited
    membership = await community_service.join_community(session, user.id, community_id, source)
    community = await community_service.get_community(session, membership.community_id)
    return {"community_id": community.id, "community_name": community.name, "source": membership.source}


# --- leaders ---------------------------------------------------------------------------------------


async def leader_point(session: AsyncSession, user: User, pickup_point_id: int) -> int:
    """A point the user leads (operators: any point); ``NotYourPickupPoint`` otherwise."""
    point = await community_service.get_pickup_point(session, pickup_point_id)
    if point.leader_id != user.id and not user.has_role(Role.operator):
        raise NotYourPickupPoint("this is not your pickup point", pickup_point_id=pickup_point_id)
    return point.id


@leader.get("/points")
async def my_points(session: SessionDep, user: LeaderUser) -> list[dict[str, Any]]:
    """The pickup points the leader runs."""
    return [
        {
            "id": p.id,
            "name": p.name,
            "address": p.address,
            "community_id": p.community_id,
            "community_name": p.community_name,
        }
        for p in await pickup.points_led_by(session, user.id)
    ]


@leader.get("/points/{pickup_point_id}/orders")
async def point_orders(session: SessionDep, user: LeaderUser, pickup_point_id: Id) -> list[dict[str, Any]]:
    """The orders to hand over at the leader's own point (buyers masked; codes are the buyers' to show)."""
    point_id = await leader_point(session, user, pickup_point_id)
    return [asdict(o) for o in await pickup.orders_at_point(session, point_id)]


@leader.get("/points/{pickup_point_id}/members")
async def point_members(session: SessionDep, user: LeaderUser, pickup_point_id: Id) -> list[dict[str, Any]]:
    """The members of the community the leader's point serves (names masked)."""
    point_id = await leader_point(session, user, pickup_point_id)
    point = await community_service.get_pickup_point(session, point_id)
    return [asdict(m) for m in await views.members_of(session, point.community_id, mask=True)]


@leader.post("/pickups/verify")
async def verify_pickup(session: SessionDep, user: LeaderUser, body: PickupVerify) -> PickupRead:
    """Verify a buyer's code at the leader's own point and hand over ``units`` (all left by default). A
    wrong code is counted (committed although the answer is 404); too many are 429 for a while."""
    try:
        result = await pickup.verify_pickup(
            session,
            actor=user,
            code=body.code,
            pickup_point_id=body.pickup_point_id,
            store_id=body.store_id,
            units=body.units,
        )
    except WrongPickupCode:
        await session.commit()
        raise
    return PickupRead.model_validate(asdict(result))


# --- operators -------------------------------------------------------------------------------------


@admin.put("/sessions/{session_id}/settings")
async def update_settings(
    request: Request, session: SessionDep, operator: OperatorUser, session_id: Id, body: SettingsUpdate
) -> TermsRead:
    """Set the session's threshold, promise, cutoff and below-threshold policy (fee, store)."""
    terms = await service.update_settings(session, session_id, body, actor=operator)
    return terms_read(terms, locale_of(request))


@admin.get("/sessions/{session_id}/groups")
async def list_groups(session: SessionDep, operator: OperatorUser, session_id: Id) -> list[GroupOrderRead]:
    await service.terms_of(session, session_id)  # 404 for an unknown session
    return [GroupOrderRead.model_validate(g) for g in await service.list_groups(session, session_id)]


@admin.get("/groups/{group_order_id}")
async def read_group(session: SessionDep, operator: OperatorUser, group_order_id: Id) -> GroupOrderDetail:
    group = await service.get_group_order(session, group_order_id)
    history = await service.group_history(session, group.id)
    return GroupOrderDetail.model_validate(
        {**GroupOrderRead.model_validate(group).model_dump(), "history": history}
    )


@admin.post("/sessions/{session_id}/cutoff")
async def cutoff_now(session: SessionDep, operator: OperatorUser, session_id: Id) -> list[GroupOrderRead]:
    """Close the session's open groups now (as its timer would), applying its below-threshold policy."""
    await service.terms_of(session, session_id)
    return [GroupOrderRead.model_validate(g) for g in await service.close_session(session, session_id)]


def batch_read(batch: DeliveryBatch, groups: list[GroupOrder], late: bool) -> BatchRead:
    return BatchRead(
        id=batch.id,
        session_id=batch.session_id,
        note=batch.note,
        state=batch.state,
        dispatched_at=batch.dispatched_at,
        arrived_at=batch.arrived_at,
        late=late,
        group_order_ids=[g.id for g in groups],
    )


async def _batch_read(session: AsyncSession, batch: DeliveryBatch) -> BatchRead:
    terms = await service.terms_of(session, batch.session_id)
    groups = await fulfilment.groups_of_batch(session, batch.id)
    return batch_read(batch, groups, fulfilment.is_late(batch, terms.deliver_by))


@admin.post("/sessions/{session_id}/batches", status_code=201)
async def create_batch(
    session: SessionDep, operator: OperatorUser, session_id: Id, body: BatchCreate
) -> BatchRead:
    """A delivery batch of closed groups, with the driver and route note."""
    await service.terms_of(session, session_id)
    batch = await fulfilment.create_batch(
        session, session_id, body.group_order_ids, note=body.note, actor=operator
    )
    return await _batch_read(session, batch)


@admin.get("/sessions/{session_id}/batches")
async def list_batches(session: SessionDep, operator: OperatorUser, session_id: Id) -> list[BatchRead]:
    await service.terms_of(session, session_id)
    return [await _batch_read(session, b) for b in await fulfilment.list_batches(session, session_id)]


@admin.post("/batches/{batch_id}/dispatch")
async def dispatch_batch(session: SessionDep, operator: OperatorUser, batch_id: Id) -> BatchRead:
    """Staff confirm the batch left for its pickup points."""
    return await _batch_read(session, await fulfilment.dispatch_batch(session, batch_id, actor=operator))


@admin.post("/batches/{batch_id}/arrive")
async def confirm_arrival(session: SessionDep, operator: OperatorUser, batch_id: Id) -> BatchRead:
    """Staff confirm the batch arrived: its buyers are told to pick up."""
    return await _batch_read(session, await fulfilment.confirm_arrival(session, batch_id, actor=operator))


def pick_list_dict(picks: fulfilment.PickList) -> dict[str, Any]:
    def lines(skus: dict[tuple[int, str], int]) -> list[dict[str, Any]]:
        return [{"product_id": p, "product_name": n, "units": u} for (p, n), u in sorted(skus.items())]

    return {
        "session_id": picks.session_id,
        "warehouse": lines(picks.warehouse),
        "places": [
            {
                "kind": p.kind,
                "id": p.id,
                "name": p.name,
                "address": p.address,
                "community_name": p.community_name,
                "total": p.total,
                "lines": lines(p.lines),
            }
            for p in picks.places
        ],
    }


@admin.get("/sessions/{session_id}/pick-list")
async def pick_list(session: SessionDep, operator: OperatorUser, session_id: Id) -> dict[str, Any]:
    """Per-SKU units per pickup point and per store, and the warehouse's totals."""
    await service.terms_of(session, session_id)
    return pick_list_dict(await fulfilment.pick_list(session, session_id))


@admin.get("/sessions/{session_id}/pick-list.csv", response_class=PlainTextResponse)
async def pick_list_csv(session: SessionDep, operator: OperatorUser, session_id: Id) -> Response:
    await service.terms_of(session, session_id)
    text = fulfilment.pick_list_csv(await fulfilment.pick_list(session, session_id))
    return Response(
        content="\ufeff" + text,  # a BOM, so spreadsheet programs read the Chinese names as UTF-8
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="pick-list-{session_id}.csv"'},
    )


@admin.get("/sessions/{session_id}/board")
async def read_board(
    request: Request, session: SessionDep, operator: OperatorUser, session_id: Id
) -> dict[str, Any]:
    """The fulfilment board: per community units, threshold state, batch, pickups and exceptions."""
    found = await fulfilment.board(session, session_id)
    return {
        "session_id": session_id,
        "terms": terms_read(found.terms, locale_of(request)).model_dump(mode="json"),
        "units": found.units,
        "rows": [
            {
                **GroupOrderRead.model_validate(r.group).model_dump(mode="json"),
                "batch_state": r.batch.state if r.batch is not None else None,
                "orders": r.orders,
                "picked_up": r.picked_up,
                "pending": r.pending,
                "exceptions": r.exceptions,
            }
            for r in found.rows
        ],
        "late_batch_ids": sorted(found.late_batch_ids),
    }


@admin.get("/communities/{community_id}/members")
async def community_members(
    session: SessionDep, operator: OperatorUser, community_id: Id
) -> list[dict[str, Any]]:
    await community_service.get_community(session, community_id)
    return [asdict(m) for m in await views.members_of(session, community_id, mask=False)]


@admin.post("/communities/{community_id}/members/{user_id}/move")
async def move_member(
    session: SessionDep, operator: OperatorUser, community_id: Id, user_id: Id, body: MemberMove
) -> MembershipRead:
    """Move a member of this community to another open one, saying why (they are told in their inbox).
    Their paid orders stay with the community they were placed in."""
    membership = await members.move_member(
        session, community_id, user_id, body.to_community_id, actor=operator, reason=body.reason
    )
    community = await community_service.get_community(session, membership.community_id)
    return MembershipRead(
        user_id=user_id, community_id=community.id, community_name=community.name, source=membership.source
    )


@admin.post("/communities/{community_id}/members/{user_id}/remove")
async def remove_member(
    session: SessionDep, operator: OperatorUser, community_id: Id, user_id: Id, body: MemberRemove
) -> MembershipRead:
    """Take a member out of this community, saying why (they are told in their inbox); they choose a
    community again at their next order. Their paid orders stay where they were placed."""
    await members.remove_member(session, community_id, user_id, actor=operator, reason=body.reason)
    return MembershipRead(user_id=user_id, community_id=None, community_name=None, source=None)


router.include_router(public)
router.include_router(leader)
router.include_router(admin)
