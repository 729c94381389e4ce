"""Referral test data: a live sale, neighbours with browsers, and the verbs a scenario is written in —
open a share link, log in on a browser, pay, refund — each through the real services and the real
attribution consumer reading the event log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from linli.community import service as community_service
from linli.core.clock import utcnow
from linli.core.consumers import run_consumer_once
from linli.core.db import Database
from linli.core.events import Event, Subjects, record_event
from linli.identity.models import AuthSession, Device, User
from linli.orders import service as orders_service
from linli.orders.models import Order
from linli.referral import service
from linli.referral.models import Conversion
from linli.referral.tasks import attribution_consumer
from tests.orders.factories import Sale, make_buyer, make_sale


async def drain_referral(db: Database) -> int:
    consumer = attribution_consumer()
    total = 0
    while moved := await run_consumer_once(db, consumer):
        total += moved
    return total


@dataclass
class World:
    """A sale, and neighbours by name (each with their own browser ``<name>-phone`` unless told)."""

    db: Database
    sale: Sale
    t0: datetime
    users: dict[str, User] = field(default_factory=dict)
    orders: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    async def create(cls, db: Database, names: str = "ABCD", *, live_price_fen: int = 2500) -> World:
        async with db.sessionmaker() as session:
            sale = await make_sale(session, stock=1000, per_user_limit=100, live_price_fen=live_price_fen)
            users = {}
            for name in names:
                # A is in the sale's community; the others arrive without one.
                user = await make_buyer(
                    session, sale.community if name == "A" else None, nickname=f"{name}哥"
                )
                users[name] = user
            await session.commit()
        return cls(db=db, sale=sale, t0=utcnow(), users=users)

    async def join(self, *names: str) -> None:
        """Put neighbours in the sale's community (referrers must belong somewhere to rank)."""
        async with self.db.sessionmaker() as session:
            for name in names:
                await community_service.join_community(
                    session, self.users[name].id, self.sale.community.id, "chosen"
                )
            await session.commit()

    def at(self, days: float) -> datetime:
        return self.t0 + timedelta(days=days)

    async def code(self, name: str) -> str:
        async with self.db.sessionmaker() as session:
            code = await service.invite_code_of(session, self.users[name].id)
            await session.commit()
        return code

    async def visit(
        self,
        visitor: str,
        sharer: str,
        *,
        days: float = 0,
        browser: str | None = None,
        anonymous: bool = False,
    ) -> service.Visit:
        """``visitor`` opens ``sharer``'s share link (logged in unless ``anonymous``)."""
        code = await self.code(sharer)
        async with self.db.sessionmaker() as session:
            user = None if anonymous else await session.get(User, self.users[visitor].id)
            visit = await service.record_visit(
                session,
                code=code,
                anonymous_id=browser or f"{visitor}-phone",
                user=user,
                session_id=self.sale.live_session.id,
                now=self.at(days),
            )
            await session.commit()
        return visit

    async def login(self, name: str, *, browser: str | None = None, days: float = 0) -> None:
        """``name`` logs in on ``browser``: what identity's ``log_in`` leaves behind (the device, the login
        session, ``identity.logged_in``), then the consumer runs."""
        anonymous_id = browser or f"{name}-phone"
        user_id = self.users[name].id
        async with self.db.sessionmaker() as session:
            device = await session.scalar(select(Device).where(Device.anonymous_id == anonymous_id))
            if device is None:
                session.add(Device(anonymous_id=anonymous_id, user_id=user_id))
            else:
                device.user_id = user_id
            session.add(
                AuthSession(
                    token_hash=f"{anonymous_id}-{user_id}-{utcnow().timestamp()}",
                    user_id=user_id,
                    anonymous_id=anonymous_id,
                    expires_at=self.at(days + 30),
                )
            )
            record_event(
                session,
                "identity.logged_in",
                actor_id=user_id,
                subjects=Subjects(user_id=user_id, anonymous_id=anonymous_id),
                occurred_at=self.at(days),
            )
            await session.commit()
        await drain_referral(self.db)

    async def pay(
        self,
        name: str,
        *,
        days: float = 0,
        quantity: int = 1,
        contact_phone: str | None = None,
        drain: bool = True,
    ) -> int:
        """``name`` orders and pays at ``days``; the attribution consumer runs (unless not to ``drain``:
        payments that pile up reach it as one run)."""
        fields = {"contact_phone": contact_phone} if contact_phone else {}
        async with self.db.sessionmaker() as session:
            user = await session.get(User, self.users[name].id)
            assert user is not None
            if await community_service.membership_of(session, user.id) is None:
                await community_service.join_community(session, user.id, self.sale.community.id, "chosen")
            order = await orders_service.create_order(
                session, user, self.sale.order(quantity, **fields), now=self.at(days)
            )
            await orders_service.mark_paid(
                session,
                order.id,
                amount_fen=order.total_fen,
                provider="sandbox",
                provider_ref=f"pay-{order.id}",
                now=self.at(days),
            )
            await session.commit()
        self.orders.setdefault(name, []).append(order.id)
        if drain:
            await drain_referral(self.db)
        return order.id

    async def refund(self, name: str, *, days: float = 0) -> None:
        async with self.db.sessionmaker() as session:
            await orders_service.mark_refunded(
                session, self.orders[name][-1], provider_ref="refund-1", now=self.at(days)
            )
            await session.commit()
        await drain_referral(self.db)

    async def credited(self) -> dict[str, list[str]]:
        """Live (not reversed) conversions: referrer name → referee names."""
        names = {u.id: n for n, u in self.users.items()}
        async with self.db.sessionmaker() as session:
            rows = (
                await session.scalars(
                    select(Conversion).where(Conversion.reversed_at.is_(None)).order_by(Conversion.id)
                )
            ).all()
        out: dict[str, list[str]] = {}
        for row in rows:
            out.setdefault(names[row.referrer_id], []).append(names[row.referee_id])
        return out

    async def events(self, type_: str) -> list[Event]:
        async with self.db.sessionmaker() as session:
            return list(
                (await session.scalars(select(Event).where(Event.type == type_).order_by(Event.id))).all()
            )

    async def paid_orders(self) -> int:
        async with self.db.sessionmaker() as session:
            return int(
                await session.scalar(
                    select(func.count()).select_from(Order).where(Order.paid_at.is_not(None))
                )
                or 0
            )
