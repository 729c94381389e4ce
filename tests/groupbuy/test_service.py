"""Group orders: counting paid units, the threshold crossed exactly once, refunds counting down, the terms
and the cutoff with each below-threshold policy."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from linli.community import inbox
from linli.community.models import InboxItem
from linli.core.clock import to_local, utcnow
from linli.core.jobs import PENDING, Job
from linli.groupbuy import events, service
from linli.groupbuy.errors import InvalidSettings, SettingsLocked
from linli.groupbuy.models import (
    CodeStatus,
    Contribution,
    DeliveryFee,
    GroupOrderChange,
    GroupState,
    Outcome,
    PickupCode,
)
from linli.live.models import SessionStatus
from linli.orders.models import OrderStatus
from tests.groupbuy.factories import STORE, Town


class TestCounting:
    async def test_the_first_paid_order_opens_the_group_and_units_count_up(self, town: Town) -> None:
        a, b = await town.neighbours(2)
        await town.order(a, 2)  # unpaid: counts nothing
        await town.buy(a, 3)
        await town.drain()
        await town.buy(b, 1)
        await town.drain()
        group = await town.group()
        assert group is not None
        assert (group.units, group.state, group.threshold) == (4, "collecting", 50)
        assert group.community_name == "梧桐苑"
        assert group.pickup_point_id == town.hoods[0].point.id
        opened = await town.events(events.OPENED)
        assert len(opened) == 1
        assert opened[0].payload == {"group_order_id": group.id, "community_name": "梧桐苑", "threshold": 50}
        assert (opened[0].session_id, opened[0].community_id) == (town.session_id, town.hoods[0].community.id)
        progressed = [e.payload["units"] for e in await town.events(events.PROGRESSED)]
        assert progressed == [3, 4]

    async def test_counting_the_same_order_again_changes_nothing(self, town: Town) -> None:
        order = await town.buy((await town.neighbours(1))[0], 2)
        await town.drain()
        for _ in range(3):
            async with town.db.sessionmaker() as session:
                await service.count_paid_order(session, order.id)
                await session.commit()
        group = await town.group()
        assert group is not None
        assert group.units == 2
        assert len(await town.events(events.PROGRESSED)) == 1

    async def test_store_pickup_orders_and_neighbours_without_community_belong_to_no_group(
        self, town: Town
    ) -> None:
        buyer = (await town.neighbours(1))[0]
        order = await town.buy(buyer, 2, fulfilment="store", store_id=town.store.id)
        await town.drain()
        assert await town.group() is None
        # It still gets a pickup code, at the store.
        async with town.db.sessionmaker() as session:
            code = await session.get(PickupCode, order.id)
        assert code is not None
        assert code.place == f"s:{town.store.id}"
        assert len(code.code) == 6

    async def test_communities_count_apart(self, town: Town) -> None:
        here, there = await town.neighbour(0), await town.neighbour(1)
        await town.buy(here, 2)
        await town.buy(there, 5)
        await town.drain()
        first, second = await town.group(0), await town.group(1)
        assert first is not None
        assert second is not None
        assert (first.units, second.units) == (2, 5)
        assert second.community_name == "阳光花园"


class TestCountingARun:
    """A run of ``order.paid`` events (what piled up during a rush) is counted at once: the same groups,
    units, codes and contributions as one by one, in a few statements however long the run."""

    async def test_a_run_lands_as_one_move_per_group(self, town: Town) -> None:
        await town.settings(threshold=4)
        here, there = await town.neighbours(3), await town.neighbours(2, hood=1)
        paid = [await town.buy(b, 2) for b in here]
        paid += [await town.buy(b, 1) for b in there]
        away = await town.buy(await town.neighbour(), 1, fulfilment="store", store_id=town.store.id)
        await town.order(here[0], 1)  # unpaid: counts nothing
        await town.drain()
        first, second = await town.group(0), await town.group(1)
        assert first is not None
        assert second is not None
        assert (first.units, first.state, second.units, second.state) == (6, "reached", 2, "collecting")
        progressed = sorted(
            (e.payload["community_name"], e.payload["units"]) for e in await town.events(events.PROGRESSED)
        )
        assert progressed == [("梧桐苑", 6), ("阳光花园", 2)]
        reached = await town.events(events.REACHED)
        assert [(e.payload["group_order_id"], e.payload["units"]) for e in reached] == [(first.id, 6)]
        async with town.db.sessionmaker() as session:
            changes = (
                await session.scalars(
                    select(GroupOrderChange)
                    .where(GroupOrderChange.group_order_id == first.id)
                    .order_by(GroupOrderChange.id)
                )
            ).all()
            codes = (await session.scalars(select(PickupCode).order_by(PickupCode.order_id))).all()
        assert [(c.from_state, c.to_state, c.units) for c in changes] == [
            (None, "collecting", 0),
            ("collecting", "reached", 6),
        ]
        assert changes[1].reason == f"orders {', '.join(str(o.id) for o in paid[:3])} paid"
        assert [c.order_id for c in codes] == sorted(o.id for o in [*paid, away])
        assert {c.place for c in codes if c.order_id == away.id} == {f"s:{town.store.id}"}
        assert len({(c.place, c.code) for c in codes}) == len(codes)
        assert await town.count(Contribution) == len(paid)

    async def test_counting_a_run_again_changes_nothing(self, town: Town) -> None:
        paid = [await town.buy(b, 1) for b in await town.neighbours(4)]
        await town.drain()
        async with town.db.sessionmaker() as session:
            codes = {c.order_id: c.code for c in (await session.scalars(select(PickupCode))).all()}
        for _ in range(2):
            async with town.db.sessionmaker() as session:
                await service.count_paid_orders(session, [(o.id, utcnow()) for o in [*paid, *paid]])
                await session.commit()
        group = await town.group()
        assert group is not None
        assert group.units == 4
        assert len(await town.events(events.PROGRESSED)) == 1
        async with town.db.sessionmaker() as session:
            again = {c.order_id: c.code for c in (await session.scalars(select(PickupCode))).all()}
        assert again == codes

    async def test_statements_do_not_grow_with_the_run(self, town: Town) -> None:
        from sqlalchemy import event as sa_event

        async def statements_for(n: int) -> int:
            paid = [await town.buy(b, 1) for b in await town.neighbours(n)]
            seen: list[str] = []

            def note(_conn, _cursor, statement: str, *_rest) -> None:  # type: ignore[no-untyped-def]
                seen.append(statement)

            sa_event.listen(town.db.engine.sync_engine, "before_cursor_execute", note)
            try:
                async with town.db.sessionmaker() as session:
                    await service.count_paid_orders(session, [(o.id, utcnow()) for o in paid])
                    await session.commit()
            finally:
                sa_event.remove(town.db.engine.sync_engine, "before_cursor_execute", note)
            return len(seen)

        await town.buy(await town.neighbour(), 1)
        await town.drain()  # the group is open: every run below only counts into it
        assert await statements_for(5) == await statements_for(25) <= 10

    async def test_codes_drawn_twice_are_drawn_again(
        self, town: Town, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from linli.groupbuy import pickup

        draws = iter(["111111", "111111", "222222", "333333", "444444"])
        monkeypatch.setattr(pickup, "_new_code", lambda: next(draws))
        earlier = await town.buy(await town.neighbour(), 1)
        await town.drain()  # takes 111111 at the point
        paid = [await town.buy(b, 1) for b in await town.neighbours(2)]
        await town.drain()  # draws 111111 (open there) and 222222, then 333333 for the first
        async with town.db.sessionmaker() as session:
            codes = {c.order_id: c.code for c in (await session.scalars(select(PickupCode))).all()}
        assert codes == {earlier.id: "111111", paid[0].id: "333333", paid[1].id: "222222"}


class TestThreshold:
    async def test_concurrent_payments_cross_the_threshold_exactly_once(self, town: Town) -> None:
        """Ten payments counted at once (as by several consumer runners): the database serialises the
        group's row, so exactly one update crosses, and the announcement fires once."""
        await town.settings(threshold=5)
        buyers = await town.neighbours(10)
        paid = [await town.buy(b, 1) for b in buyers]

        async def count(order_id: int) -> None:
            async with town.db.sessionmaker() as session:
                await service.count_paid_order(session, order_id)
                await session.commit()

        # Open the group first so every racer updates the same row.
        await count(paid[0].id)
        await asyncio.gather(*(count(o.id) for o in paid[1:]), *(count(o.id) for o in paid[1:]))
        await town.drain()  # the consumer sees them too: nothing more changes
        group = await town.group()
        assert group is not None
        assert (group.units, group.state) == (10, "reached")
        reached = await town.events(events.REACHED)
        assert len(reached) == 1
        assert reached[0].payload["units"] == 5
        assert reached[0].payload["threshold"] == 5
        assert reached[0].payload["promise_text"].endswith("上午10点前免费配送到小区自提点")
        notices = [
            e for e in await town.events("live.notice_posted") if e.payload.get("kind") == "group_reached"
        ]
        assert len(notices) == 1
        assert notices[0].payload["text"].startswith("恭喜梧桐苑社区,已集齐5份,")
        assert notices[0].payload["system"] is True
        crossings = await town.count(
            GroupOrderChange,
            GroupOrderChange.group_order_id == group.id,
            GroupOrderChange.to_state == "reached",
        )
        assert crossings == 1
        assert await town.count(Contribution) == 10
        assert sorted(e.payload["units"] for e in await town.events(events.PROGRESSED)) == list(range(1, 11))

    async def test_a_refund_drops_a_reached_group_back_to_collecting_and_reaching_again_does_not_reannounce(
        self, town: Town
    ) -> None:
        """Defined behaviour: before cutoff a refund below the threshold takes the group back to
        collecting (``fell_below``); the announcement was made once and is not made again."""
        await town.settings(threshold=3)
        a, b, c, d = await town.neighbours(4)
        await town.buy(a)
        await town.buy(b)
        refunded = await town.buy(c)
        await town.drain()
        assert (await town.group()).state == "reached"  # type: ignore[union-attr]
        await town.refund(refunded)
        await town.drain()
        group = await town.group()
        assert group is not None
        assert (group.units, group.state) == (2, "collecting")
        fell = await town.events(events.FELL_BELOW)
        assert [e.payload["units"] for e in fell] == [2]
        assert group.reached_at is not None  # the first reach is kept
        async with town.db.sessionmaker() as session:
            code = await session.get(PickupCode, refunded.id)
        assert code is not None
        assert code.status == CodeStatus.void
        assert code.open_code is None
        # Refund delivered again: counted down once only.
        async with town.db.sessionmaker() as session:
            await service.uncount_order(session, refunded.id, reason="again")
            await session.commit()
        assert (await town.group()).units == 2  # type: ignore[union-attr]
        await town.buy(d)
        await town.drain()
        group = await town.group()
        assert group is not None
        assert (group.units, group.state) == (3, "reached")
        assert len(await town.events(events.REACHED)) == 1
        async with town.db.sessionmaker() as session:
            history = [(h.from_state, h.to_state) for h in await service.group_history(session, group.id)]
        assert history == [
            (None, "collecting"),
            ("collecting", "reached"),
            ("reached", "collecting"),
            ("collecting", "reached"),
        ]

    async def test_after_cutoff_a_refund_counts_down_but_the_group_stays_settled(self, town: Town) -> None:
        await town.settings(threshold=2)
        a, b = await town.neighbours(2)
        await town.buy(a)
        refunded = await town.buy(b)
        await town.drain()
        await town.close()
        await town.refund(refunded)
        await town.drain()
        group = await town.group()
        assert group is not None
        assert (group.units, group.state, group.outcome) == (1, "closed", "free_delivery")
        assert await town.events(events.FELL_BELOW) == []

    async def test_raising_the_threshold_applies_to_open_groups(self, town: Town) -> None:
        await town.settings(threshold=2)
        for buyer in await town.neighbours(2):
            await town.buy(buyer)
        await town.drain()
        assert (await town.group()).state == "reached"  # type: ignore[union-attr]
        await town.settings(threshold=4)
        group = await town.group()
        assert group is not None
        assert (group.threshold, group.state) == (4, "collecting")
        assert len(await town.events(events.FELL_BELOW)) == 1


class TestTerms:
    async def test_defaults(self, town: Town) -> None:
        async with town.db.sessionmaker() as session:
            terms = await service.terms_of(session, town.session_id)
        assert terms.threshold == 50
        assert terms.cutoff_at is None
        local = to_local(terms.deliver_by)
        assert (local.hour, local.minute) == (10, 0)
        start = to_local(town.sale.live_session.scheduled_start).date()
        assert local.date() == start + timedelta(days=1)
        assert terms.promise_text == "明天上午10点前免费配送到小区自提点"
        assert terms.below_policy == "deliver"

    async def test_bad_terms_are_refused(self, town: Town) -> None:
        with pytest.raises(InvalidSettings, match="future"):
            await town.settings(cutoff_at=(utcnow() - timedelta(minutes=1)).isoformat())
        with pytest.raises(InvalidSettings, match="after the cutoff"):
            await town.settings(
                cutoff_at=(utcnow() + timedelta(days=5)).isoformat(),
                deliver_by=(utcnow() + timedelta(days=4)).isoformat(),
            )

    async def test_a_cutoff_schedules_the_durable_timer_and_moving_it_moves_the_timer(
        self, town: Town
    ) -> None:
        first = utcnow() + timedelta(hours=1)
        await town.settings(cutoff_at=first.isoformat())
        later = utcnow() + timedelta(hours=2)
        await town.settings(cutoff_at=later.isoformat())
        async with town.db.sessionmaker() as session:
            job = await session.scalar(select(Job).where(Job.key == service.cutoff_job_key(town.session_id)))
        assert job is not None
        assert job.status == PENDING
        assert abs((job.run_at - later).total_seconds()) < 1

    async def test_the_timer_fires_the_cutoff_and_terms_are_then_locked(self, town: Town) -> None:
        await town.settings(threshold=2, cutoff_at=(utcnow() + timedelta(hours=1)).isoformat())
        await town.buy(await town.neighbour())
        await town.drain()
        assert await town.run_jobs() == 0  # not yet due
        assert await town.run_jobs(utcnow() + timedelta(hours=1, seconds=1)) == 1
        group = await town.group()
        assert group is not None
        assert (group.state, group.outcome) == ("closed", "delivery_fee")
        with pytest.raises(SettingsLocked):
            await town.settings(threshold=3)

    async def test_without_a_cutoff_the_session_ending_is_the_cutoff(self, town: Town) -> None:
        from linli.live import service as live_service

        await town.buy(await town.neighbour())
        async with town.db.sessionmaker() as session:
            live_session = await live_service.get_session(session, town.session_id)
            await live_service.transition_session(
                session, live_session, SessionStatus.ended, town.operator.user
            )
            await session.commit()
        await town.drain()
        await town.run_jobs(utcnow() + timedelta(seconds=1))
        group = await town.group()
        assert group is not None
        assert group.state == GroupState.closed


async def _inbox(town: Town, user_id: int) -> list[InboxItem]:
    async with town.db.sessionmaker() as session:
        rows = await session.scalars(
            select(InboxItem).where(InboxItem.user_id == user_id).order_by(InboxItem.id)
        )
        return list(rows.all())


class TestCutoffPolicies:
    async def test_reached_groups_get_free_delivery_and_their_buyers_are_told(self, town: Town) -> None:
        await town.settings(threshold=2, below_policy="refund")
        a, b = await town.neighbours(2)
        await town.buy(a)
        await town.buy(b)
        await town.drain()
        [group] = await town.close()
        assert group.outcome == Outcome.free_delivery
        [item] = await _inbox(town, a.user.id)
        assert item.title == "梧桐苑已成团"
        assert "上午10点前免费配送到小区自提点" in item.body
        assert (await town.reload(await town.buy(a))).status == OrderStatus.paid
        # Closing again (the timer firing twice) changes nothing.
        assert await town.close() == []

    async def test_deliver_anyway_with_the_fee_waived(self, town: Town) -> None:
        await town.settings(threshold=5, below_policy="deliver", delivery_fee_fen=500, collect_fee=False)
        a, b = await town.neighbours(2)
        first, _ = await town.buy(a, 2), await town.buy(b)
        await town.drain()
        [group] = await town.close()
        assert (group.state, group.outcome) == ("closed", "delivery_fee")
        async with town.db.sessionmaker() as session:
            fee = await session.get(DeliveryFee, first.id)
        assert fee is not None
        assert (fee.amount_fen, fee.status) == (500, "waived")
        [item] = await _inbox(town, a.user.id)
        assert item.title == "未成团,照常配送"
        assert "共集3份,未达到5份" in item.body
        assert "¥5已为您免除" in item.body
        assert (await town.reload(first)).status == OrderStatus.paid

    async def test_deliver_anyway_with_the_fee_collected_at_pickup(self, town: Town) -> None:
        await town.settings(threshold=5, below_policy="deliver", delivery_fee_fen=300, collect_fee=True)
        buyer = await town.neighbour()
        order = await town.buy(buyer)
        await town.drain()
        await town.close()
        async with town.db.sessionmaker() as session:
            fee = await session.get(DeliveryFee, order.id)
        assert fee is not None
        assert (fee.amount_fen, fee.status) == (300, "due")
        [item] = await _inbox(town, buyer.user.id)
        assert "配送费¥3可在订单页在线支付,也可以取货时交给团长" in item.body
        english = inbox.shown(item, "en")
        assert english.title == "Below the threshold: delivered anyway"
        assert (
            "pay the delivery fee of ¥3 online on the order page, or to the leader at pickup" in english.body
        )
        assert len(await town.events(events.FEE_DUE)) == 1

    async def test_move_to_store_pickup(self, town: Town) -> None:
        await town.settings(threshold=5, below_policy="store_pickup", fallback_store_id=town.store.id)
        buyer = await town.neighbour()
        order = await town.buy(buyer, 2)
        await town.drain()
        async with town.db.sessionmaker() as session:
            before = await session.get(PickupCode, order.id)
        assert before is not None
        [group] = await town.close()
        assert group.outcome == Outcome.store_pickup
        moved = await town.reload(order)
        assert (moved.fulfilment, moved.store_id, moved.pickup_point_id) == (STORE, town.store.id, None)
        async with town.db.sessionmaker() as session:
            code = await session.get(PickupCode, order.id)
        assert code is not None
        assert code.place == f"s:{town.store.id}"
        assert code.code == before.code
        [item] = await _inbox(town, buyer.user.id)
        assert item.title == "未成团,改为门店自提"
        assert town.store.name in item.body
        assert len(await town.events("order.fulfilment_changed")) == 1

    async def test_refund_every_order_of_a_group_below_threshold(self, town: Town) -> None:
        await town.settings(threshold=5, below_policy="refund")
        a, b = await town.neighbours(2)
        other = await town.neighbour(1)
        one, two = await town.buy(a, 2), await town.buy(b)
        await town.buy(other, 5)  # the other community reaches it
        await town.drain()
        closed = {g.community_name: g for g in await town.close()}
        assert closed["梧桐苑"].outcome == Outcome.refunded
        assert closed["阳光花园"].outcome == Outcome.free_delivery
        for order in (one, two):
            assert (await town.reload(order)).status == OrderStatus.refunded
        await town.drain()  # the refunds count down
        group = await town.group()
        assert group is not None
        assert (group.units, group.state) == (0, "closed")
        [item] = await _inbox(town, a.user.id)
        assert item.title == "未成团,已全额退款"
        assert "¥50将原路退回" in item.body
        refunded = await town.events("order.refunded")
        assert {e.order_id for e in refunded} == {one.id, two.id}

    async def test_a_payment_after_cutoff_follows_its_groups_outcome(self, town: Town) -> None:
        await town.settings(threshold=5, below_policy="refund")
        early = await town.buy(await town.neighbour())
        late_buyer = await town.neighbour()
        late = await town.order(late_buyer)
        await town.drain()
        await town.close()
        await town.pay(late)
        await town.drain()
        assert (await town.reload(early)).status == OrderStatus.refunded
        assert (await town.reload(late)).status == OrderStatus.refunded
