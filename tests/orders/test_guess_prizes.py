"""The community feed's guessing-topic prizes: each ``feed.guess_won`` winner gets the topic's coupon once."""

from __future__ import annotations

from sqlalchemy import select

from linli.core.consumers import run_consumer_once
from linli.core.db import Database
from linli.core.events import Subjects, record_event
from linli.orders import coupons
from linli.orders.models import Coupon
from tests.orders.conftest import Caller
from tests.orders.factories import make_buyer
from tests.orders.test_coupons import _template


async def test_each_winner_gets_the_topics_coupon_once(db: Database, operator: Caller) -> None:
    template_id = await _template(db, operator, name="猜馅料奖品券")
    async with db.sessionmaker() as session:
        winners = [await make_buyer(session, None) for _ in range(2)]
        for _ in range(2):  # at least once
            for w in winners:
                record_event(
                    session,
                    coupons.GUESS_WON,
                    subjects=Subjects(user_id=w.id),
                    payload={"user_id": w.id, "topic_id": 7, "coupon_template_id": template_id, "rank": 1},
                )
        record_event(
            session,
            coupons.GUESS_WON,
            payload={"user_id": winners[0].id, "topic_id": 8, "coupon_template_id": None},
        )
        await session.commit()
    consumer = coupons.guess_prize_consumer()
    while await run_consumer_once(db, consumer):
        pass
    async with db.sessionmaker() as session:
        issued = (await session.scalars(select(Coupon).order_by(Coupon.user_id))).all()
    assert [(c.user_id, c.source, c.template_id) for c in issued] == [
        (w.id, "guess:7", template_id) for w in sorted(winners, key=lambda w: w.id)
    ]
