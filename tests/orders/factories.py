"""Orders test data: a lineup item on sale in a live session, and neighbours who belong to a community
with a pickup point. Rows go straight in through the models."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community.models import Community, Membership, PickupPoint
from linli.core.db import Database
from linli.core.events import Event
from linli.core.jobs import Job
from linli.identity.models import User
from linli.live.models import LineupItem, LiveSession, SessionStatus
from linli.orders.models import Fulfilment, Order, OrderLine, OrderStatusChange, PurchaseCount
from linli.orders.schemas import OrderCreate
from tests.community.factories import make_pickup_point
from tests.factories import make_user
from tests.live.factories import make_community, make_lineup_item, make_product, make_session


@dataclass
class Sale:
    live_session: LiveSession
    item: LineupItem
    community: Community
    point: PickupPoint

    def order(self, quantity: int = 1, **fields: object) -> OrderCreate:
        return OrderCreate.model_validate(
            {
                "session_id": self.live_session.id,
                "lineup_item_id": self.item.id,
                "quantity": quantity,
                **fields,
            }
        )


async def make_sale(
    session: AsyncSession,
    *,
    stock: int = 10,
    per_user_limit: int = 10,
    live_price_fen: int = 2500,
    store_price_fen: int = 3000,
    status: SessionStatus = SessionStatus.live,
) -> Sale:
    """A live session with one item on sale, and a community with an open pickup point."""
    live_session = await make_session(session, status=status)
    product = await make_product(session, name="春季限定青团", store_price_fen=store_price_fen)
    item = await make_lineup_item(
        session,
        live_session=live_session,
        product=product,
        live_price_fen=live_price_fen,
        stock=stock,
        per_user_limit=per_user_limit,
    )
    community = await make_community(session, name="梧桐苑")
    point = await make_pickup_point(session, community=community)
    return Sale(live_session=live_session, item=item, community=community, point=point)


async def make_buyer(session: AsyncSession, community: Community | None, *, nickname: str = "") -> User:
    """A neighbour, a member of ``community`` when given."""
    user = await make_user(session, nickname=nickname)
    if community is not None:
        session.add(Membership(user_id=user.id, community_id=community.id, source="chosen"))
        await session.flush()
    return user


async def make_buyers(db: Database, community: Community, n: int) -> list[User]:
    async with db.sessionmaker() as session:
        users = [await make_buyer(session, community) for _ in range(n)]
        await session.commit()
    return users


@dataclass(frozen=True)
class Counts:
    orders: int
    lines: int
    changes: int
    counts: int
    events: int
    jobs: int
    reserved: int
    sold: int


async def count_rows(db: Database) -> Counts:
    """What exists, to prove a refused request wrote nothing."""
    async with db.sessionmaker() as session:
        values = [
            await session.scalar(select(func.count()).select_from(model))
            for model in (Order, OrderLine, OrderStatusChange, PurchaseCount, Event, Job)
        ]
        reserved, sold = (
            await session.execute(
                select(
                    func.coalesce(func.sum(LineupItem.reserved), 0),
                    func.coalesce(func.sum(LineupItem.sold), 0),
                )
            )
        ).one()
    return Counts(*(v or 0 for v in values), reserved=reserved, sold=sold)


async def item_counts(db: Database, item_id: int) -> tuple[int, int, int]:
    """(stock, reserved, sold) as committed."""
    async with db.sessionmaker() as session:
        row = (
            await session.execute(
                select(LineupItem.stock, LineupItem.reserved, LineupItem.sold).where(LineupItem.id == item_id)
            )
        ).one()
    return row.stock, row.reserved, row.sold


async def held_units(db: Database, user_id: int, item_id: int) -> int:
    async with db.sessionmaker() as session:
        units = await session.scalar(
            select(PurchaseCount.units).where(
                PurchaseCount.user_id == user_id, PurchaseCount.lineup_item_id == item_id
            )
        )
    return units or 0


STORE = Fulfilment.store
