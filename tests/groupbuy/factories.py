"""Group-order test data: a live sale, communities with pickup points and leaders, neighbours who buy and
pay through the orders service, and the groupbuy consumer and timers run as the app runs them."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from linli.community.models import Community, PickupPoint, Store
from linli.core.clock import utcnow
from linli.core.consumers import ConsumerRegistry, drain
from linli.core.db import Database
from linli.core.events import Event
from linli.core.jobs import JobRegistry, run_due_jobs
from linli.groupbuy import service
from linli.groupbuy.models import GroupOrder
from linli.groupbuy.schemas import SettingsUpdate
from linli.groupbuy.tasks import CUTOFF_JOB, count_consumer, cutoff_job
from linli.identity.models import Role, User
from linli.identity.tokens import issue_session
from linli.orders import service as orders
from linli.orders.models import Fulfilment, Order
from tests.community.factories import make_pickup_point, make_store
from tests.factories import Caller, make_user
from tests.live.factories import make_community
from tests.orders.factories import Sale, make_buyer, make_sale

_refs = itertools.count(1)


@dataclass
class Neighbourhood:
    community: Community
    point: PickupPoint
    leader: Caller


@dataclass
class Town:
    """One live sale and the communities buying from it."""

    db: Database
    sale: Sale
    operator: Caller
    hoods: list[Neighbourhood]
    store: Store
    consumers: ConsumerRegistry = field(default_factory=ConsumerRegistry)
    jobs: JobRegistry = field(default_factory=JobRegistry)

    @property
    def session_id(self) -> int:
        return self.sale.live_session.id

    async def neighbour(self, hood: int = 0, *, nickname: str = "王阿姨") -> Caller:
        async with self.db.sessionmaker() as session:
            user = await make_buyer(session, self.hoods[hood].community, nickname=nickname)
            token = await issue_session(session, user)
            await session.commit()
        return Caller(user, token)

    async def neighbours(self, n: int, hood: int = 0) -> list[Caller]:
        return [await self.neighbour(hood, nickname=f"邻居{i}") for i in range(n)]

    async def order(self, buyer: Caller | User, quantity: int = 1, **fields: Any) -> Order:
        user = buyer.user if isinstance(buyer, Caller) else buyer
        async with self.db.sessionmaker() as session:
            order = await orders.create_order(session, user, self.sale.order(quantity, **fields))
            await session.commit()
        return order

    async def pay(self, order: Order) -> Order:
        async with self.db.sessionmaker() as session:
            paid = await orders.mark_paid(
                session,
                order.id,
                amount_fen=order.total_fen,
                provider="test",
                provider_ref=f"t-{next(_refs)}",
            )
            await session.commit()
        return paid

    async def buy(self, buyer: Caller | User, quantity: int = 1, **fields: Any) -> Order:
        return await self.pay(await self.order(buyer, quantity, **fields))

    async def refund(self, order: Order) -> Order:
        async with self.db.sessionmaker() as session:
            done = await orders.approve_refund(session, order.id, actor=self.operator.user, reason="test")
            await session.commit()
        return done

    async def drain(self) -> int:
        return await drain(self.db, self.consumers)

    async def run_jobs(self, at: datetime | None = None) -> int:
        return await run_due_jobs(self.db, self.jobs, now=at or utcnow())

    async def settings(self, **fields: Any) -> service.Terms:
        async with self.db.sessionmaker() as session:
            terms = await service.update_settings(
                session, self.session_id, SettingsUpdate.model_validate(fields), actor=self.operator.user
            )
            await session.commit()
        return terms

    async def close(self) -> list[GroupOrder]:
        async with self.db.sessionmaker() as session:
            closed = await service.close_session(session, self.session_id)
            await session.commit()
        return closed

    async def group(self, hood: int = 0) -> GroupOrder | None:
        async with self.db.sessionmaker() as session:
            return await service.group_of(session, self.session_id, self.hoods[hood].community.id)

    async def events(self, type_: str) -> list[Event]:
        async with self.db.sessionmaker() as session:
            rows = await session.scalars(select(Event).where(Event.type == type_).order_by(Event.id))
            return list(rows.all())

    async def count(self, model: Any, *conditions: Any) -> int:
        async with self.db.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0)

    async def reload(self, order: Order) -> Order:
        async with self.db.sessionmaker() as session:
            return await orders.get_order(session, order.id)


async def make_town(
    db: Database, *, communities: int = 2, stock: int = 5000, per_user_limit: int = 20
) -> Town:
    async with db.sessionmaker() as session:
        sale = await make_sale(session, stock=stock, per_user_limit=per_user_limit)
        operator = await make_user(session, nickname="运营小王", roles=(Role.operator,))
        op_token = await issue_session(session, operator)
        names = ["梧桐苑", "阳光花园", "静安新村", "枫林小区"]
        hoods = []
        for i in range(communities):
            leader = await make_user(session, nickname=f"团长{i}", roles=(Role.leader,))
            token = await issue_session(session, leader)
            if i == 0:
                community, point = sale.community, sale.point
                point.leader_id = leader.id
            else:
                community = await make_community(session, name=names[i % len(names)])
                point = await make_pickup_point(
                    session, community=community, name=f"{i + 1} 号门岗", leader_id=leader.id
                )
            hoods.append(Neighbourhood(community, point, Caller(leader, token)))
        store = await make_store(session)
        await session.commit()
    town = Town(db=db, sale=sale, operator=Caller(operator, op_token), hoods=hoods, store=store)
    town.consumers.add(count_consumer())
    town.jobs.add(CUTOFF_JOB, cutoff_job)
    return town


STORE = Fulfilment.store
