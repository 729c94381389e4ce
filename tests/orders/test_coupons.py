"""Coupons: pricing of each kind (pure, and a property test), issuing, applying at checkout (minimum spend,
validity, one per order, only one's own), lock → used on payment, release on cancel, expiry and refund, the
lottery's prize coupons, and the API and pages."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from linli.core.clock import utcnow
from linli.core.consumers import run_consumer_once
from linli.core.db import Database
from linli.core.events import Event, Subjects, record_event
from linli.identity.models import User
from linli.orders import coupons, service
from linli.orders.coupon_schemas import CouponTemplateCreate
from linli.orders.errors import (
    AmountMismatch,
    CouponNotApplicable,
    CouponNotFound,
    CouponUnavailable,
    InvalidCouponTemplate,
)
from linli.orders.models import Coupon, CouponKind, CouponStatus, Order, OrderStatus
from tests.orders.conftest import Caller
from tests.orders.factories import Sale, count_rows, make_buyer

# --- pricing (pure) --------------------------------------------------------------------------------


@dataclass
class T:
    kind: str
    amount_fen: int | None = None
    percent: int | None = None
    free_product_id: int | None = None
    min_spend_fen: int = 0


def _off(terms: T, subtotal: int, product_id: int = 1, unit: int = 2500) -> int:
    return coupons.discount_for(terms, subtotal_fen=subtotal, product_id=product_id, unit_price_fen=unit)


class TestDiscountFor:
    def test_fixed_takes_its_amount_but_never_more_than_the_subtotal(self) -> None:
        assert _off(T("fixed", amount_fen=500), 2500) == 500
        assert _off(T("fixed", amount_fen=5000), 2500) == 2500

    def test_percent_rounds_up_in_the_buyers_favour(self) -> None:
        assert _off(T("percent", percent=10), 999) == 100  # 99.9 fen → 100
        assert _off(T("percent", percent=20), 2500) == 500

    def test_free_item_is_one_unit_of_its_product_at_the_price_paid(self) -> None:
        assert _off(T("free_item", free_product_id=7), 7500, product_id=7, unit=2500) == 2500
        with pytest.raises(CouponNotApplicable):
            _off(T("free_item", free_product_id=7), 7500, product_id=8)

    def test_minimum_spend_is_on_the_subtotal(self) -> None:
        assert _off(T("fixed", amount_fen=500, min_spend_fen=5000), 5000) == 500
        with pytest.raises(CouponNotApplicable) as refused:
            _off(T("fixed", amount_fen=500, min_spend_fen=5000), 4999)
        assert refused.value.context["reason"] == "min_spend"


@st.composite
def _terms(draw: st.DrawFn) -> T:
    kind = draw(st.sampled_from(list(CouponKind)))
    min_spend = draw(st.integers(0, 20_000))
    if kind is CouponKind.fixed:
        return T("fixed", amount_fen=draw(st.integers(1, 50_000)), min_spend_fen=min_spend)
    if kind is CouponKind.percent:
        return T("percent", percent=draw(st.integers(1, 99)), min_spend_fen=min_spend)
    return T("free_item", free_product_id=1, min_spend_fen=min_spend)


@given(terms=_terms(), unit=st.integers(0, 100_000), quantity=st.integers(1, 999))
def test_discount_and_total_are_consistent_and_never_negative(terms: T, unit: int, quantity: int) -> None:
    subtotal = unit * quantity
    try:
        discount = _off(terms, subtotal, product_id=1, unit=unit)
    except CouponNotApplicable:
        assert subtotal < terms.min_spend_fen
        return
    assert subtotal >= terms.min_spend_fen
    total = subtotal - discount
    assert 0 <= discount <= subtotal
    assert 0 <= total <= subtotal
    if terms.kind == "percent":
        exact = subtotal * (terms.percent or 0) / 100
        assert exact <= discount < exact + 1  # rounded up, by less than a fen
    if terms.kind == "fixed":
        assert discount == min(terms.amount_fen or 0, subtotal)


# --- with a database --------------------------------------------------------------------------------


async def _template(db: Database, operator: Caller, **fields: object) -> int:
    if "valid_until" not in fields:
        fields.setdefault("valid_days", 7)
    data = CouponTemplateCreate.model_validate(
        {"name": "满20减5", "kind": "fixed", "amount_fen": 500, **fields}
    )
    async with db.sessionmaker() as session:
        template = await coupons.create_template(session, data, actor=operator.user)
        await session.commit()
    return template.id


async def _issue(db: Database, template_id: int, user: User, source: str = "operator:t") -> Coupon:
    async with db.sessionmaker() as session:
        coupon = await coupons.issue_coupon(session, template_id, user.id, source=source)
        await session.commit()
    return coupon


async def _coupon(db: Database, coupon_id: int) -> Coupon:
    async with db.sessionmaker() as session:
        coupon = await session.get(Coupon, coupon_id)
        assert coupon is not None
        return coupon


async def _order(db: Database, caller: Caller, sale: Sale, quantity: int = 1, **fields: object) -> Order:
    async with db.sessionmaker() as session:
        order = await service.create_order(session, caller.user, sale.order(quantity, **fields))
        await session.commit()
    return order


async def _events(db: Database, type_: str) -> list[Event]:
    async with db.sessionmaker() as session:
        return list(
            (await session.scalars(select(Event).where(Event.type == type_).order_by(Event.id))).all()
        )


async def _pay(db: Database, order: Order, amount_fen: int) -> Order:
    async with db.sessionmaker() as session:
        paid = await service.mark_paid(
            session, order.id, amount_fen=amount_fen, provider="sandbox", provider_ref=f"p-{order.id}"
        )
        await session.commit()
    return paid


class TestIssue:
    async def test_issuing_is_idempotent_by_source_and_copies_the_terms(
        self, db: Database, operator: Caller, buyer: Caller
    ) -> None:
        template_id = await _template(db, operator, valid_days=3, min_spend_fen=2000)
        first = await _issue(db, template_id, buyer.user, "lottery:1")
        again = await _issue(db, template_id, buyer.user, "lottery:1")
        other = await _issue(db, template_id, buyer.user, "lottery:2")

        assert again.id == first.id
        assert other.id != first.id
        assert (first.kind, first.amount_fen, first.min_spend_fen, first.status) == (
            "fixed",
            500,
            2000,
            "available",
        )
        assert (
            timedelta(days=3) - timedelta(seconds=5)
            < first.valid_until - first.valid_from
            <= timedelta(days=3)
        )
        assert len(await _events(db, "coupon.issued")) == 2

    async def test_a_switched_off_template_is_not_issued(
        self, db: Database, operator: Caller, buyer: Caller
    ) -> None:
        template_id = await _template(db, operator, active=False)
        with pytest.raises(InvalidCouponTemplate):
            await _issue(db, template_id, buyer.user)


class TestCheckout:
    async def test_quote_offers_best_first_and_the_order_is_charged_the_discounted_total(
        self, db: Database, sale: Sale, operator: Caller, buyer: Caller
    ) -> None:
        fixed = await _issue(db, await _template(db, operator), buyer.user)
        percent = await _issue(
            db, await _template(db, operator, kind="percent", amount_fen=None, percent=30), buyer.user
        )
        await _issue(db, await _template(db, operator, min_spend_fen=100_000), buyer.user)  # does not fit

        async with db.sessionmaker() as session:
            quote = await service.quote(
                session, buyer.user, sale.live_session.id, sale.item.id, 2, coupon_id=fixed.id
            )
        assert [(o.coupon.id, o.discount_fen) for o in quote.offers] == [(percent.id, 1500), (fixed.id, 500)]
        assert (quote.unit_price_fen, quote.store_price_fen, quote.subtotal_fen) == (2500, 3000, 5000)
        assert (quote.discount_fen, quote.total_fen, quote.coupon_id) == (500, 4500, fixed.id)

        order = await _order(db, buyer, sale, 2, coupon_id=percent.id)
        assert (order.subtotal_fen, order.discount_fen, order.total_fen, order.coupon_id) == (
            5000,
            1500,
            3500,
            percent.id,
        )
        assert (await _coupon(db, percent.id)).status == CouponStatus.locked
        [created] = await _events(db, "order.created")
        assert (created.payload["coupon_id"], created.payload["discount_fen"]) == (percent.id, 1500)

        with pytest.raises(AmountMismatch):
            await _pay(db, order, 5000)
        paid = await _pay(db, order, 3500)
        assert paid.status == OrderStatus.paid
        used = await _coupon(db, percent.id)
        assert (used.status, used.order_id) == (CouponStatus.used, order.id)
        [event] = await _events(db, "coupon.used")
        assert (event.user_id, event.order_id, event.payload["discount_fen"]) == (
            buyer.user.id,
            order.id,
            1500,
        )

    async def test_minimum_spend_not_reached_is_refused_and_writes_nothing(
        self, db: Database, sale: Sale, operator: Caller, buyer: Caller
    ) -> None:
        coupon = await _issue(db, await _template(db, operator, min_spend_fen=5000), buyer.user)
        before = await count_rows(db)
        with pytest.raises(CouponNotApplicable):
            await _order(db, buyer, sale, 1, coupon_id=coupon.id)
        assert await count_rows(db) == before
        assert (await _coupon(db, coupon.id)).status == CouponStatus.available
        assert (await _order(db, buyer, sale, 2, coupon_id=coupon.id)).total_fen == 4500

    async def test_outside_its_validity_a_coupon_is_refused(
        self, db: Database, sale: Sale, operator: Caller, buyer: Caller
    ) -> None:
        later = await _issue(
            db,
            await _template(db, operator, valid_from=(utcnow() + timedelta(days=1)).isoformat()),
            buyer.user,
        )
        ended = await _issue(db, await _template(db, operator), buyer.user)
        async with db.sessionmaker() as session:
            past = utcnow() - timedelta(minutes=1)
            await session.execute(
                update(Coupon)
                .where(Coupon.id == ended.id)
                .values(valid_from=past - timedelta(days=1), valid_until=past)
            )
            await session.commit()
        with pytest.raises(CouponUnavailable, match="not valid yet"):
            await _order(db, buyer, sale, coupon_id=later.id)
        with pytest.raises(CouponUnavailable, match="expired") as refused:
            await _order(db, buyer, sale, coupon_id=ended.id)
        assert refused.value.context["status"] == "expired"
        async with db.sessionmaker() as session:
            quote = await service.quote(session, buyer.user, sale.live_session.id, sale.item.id)
            assert quote.offers == ()
            mine = await coupons.list_my_coupons(session, buyer.user.id)
        assert {coupons.status_of(c, utcnow()) for c in mine} == {
            CouponStatus.available,
            CouponStatus.expired,
        }

    async def test_one_order_per_coupon_and_only_ones_own(
        self, db: Database, sale: Sale, operator: Caller, buyer: Caller, other_buyer: Caller
    ) -> None:
        coupon = await _issue(db, await _template(db, operator), buyer.user)
        with pytest.raises(CouponNotFound):
            await _order(db, other_buyer, sale, coupon_id=coupon.id)
        await _order(db, buyer, sale, coupon_id=coupon.id)
        with pytest.raises(CouponUnavailable, match="another unpaid order"):
            await _order(db, buyer, sale, coupon_id=coupon.id)
        async with db.sessionmaker() as session:
            with pytest.raises(CouponNotFound):
                await service.quote(
                    session, other_buyer.user, sale.live_session.id, sale.item.id, coupon_id=coupon.id
                )

    async def test_a_free_item_coupon_that_covers_the_order_pays_it_at_once(
        self, db: Database, sale: Sale, operator: Caller, buyer: Caller
    ) -> None:
        template_id = await _template(
            db,
            operator,
            name="免费试吃",
            kind="free_item",
            amount_fen=None,
            free_product_id=sale.item.product_id,
        )
        coupon = await _issue(db, template_id, buyer.user, "lottery:9")
        order = await _order(db, buyer, sale, 1, coupon_id=coupon.id)
        assert (order.status, order.total_fen, order.discount_fen, order.payment_provider) == (
            OrderStatus.paid,
            0,
            2500,
            service.COUPON_PROVIDER,
        )
        assert (await _coupon(db, coupon.id)).status == CouponStatus.used
        two = await _order(db, buyer, sale, 2, coupon_id=(await _issue(db, template_id, buyer.user, "x")).id)
        assert (two.status, two.total_fen) == (OrderStatus.pending_payment, 2500)


async def test_parallel_orders_with_one_coupon_lock_it_once(
    db: Database, sale: Sale, operator: Caller, buyer: Caller
) -> None:
    coupon = await _issue(db, await _template(db, operator), buyer.user)

    async def attempt() -> str:
        async with db.sessionmaker() as session:
            try:
                await service.create_order(session, buyer.user, sale.order(1, coupon_id=coupon.id))
                await session.commit()
            except CouponUnavailable:
                await session.rollback()
                return "refused"
        return "ok"

    results = await asyncio.gather(*(attempt() for _ in range(8)))
    assert sorted(results) == ["ok"] + ["refused"] * 7
    async with db.sessionmaker() as session:
        with_coupon = await session.scalar(
            select(func.count()).select_from(Order).where(Order.coupon_id == coupon.id)
        )
    assert with_coupon == 1


class TestRelease:
    async def test_cancel_and_expiry_give_the_coupon_back(
        self, db: Database, sale: Sale, operator: Caller, buyer: Caller
    ) -> None:
        coupon = await _issue(db, await _template(db, operator), buyer.user)
        order = await _order(db, buyer, sale, coupon_id=coupon.id)
        async with db.sessionmaker() as session:
            await service.cancel_order(session, order.id, user=buyer.user)
            await session.commit()
        assert (await _coupon(db, coupon.id)).status == CouponStatus.available

        order = await _order(db, buyer, sale, coupon_id=coupon.id)
        async with db.sessionmaker() as session:
            await service.expire_order(session, order.id)
            await session.commit()
        assert (await _coupon(db, coupon.id)).status == CouponStatus.available
        assert [e.payload["reason"] for e in await _events(db, "coupon.released")] == ["cancelled", "expired"]

        # A late payment of the expired order takes the coupon again while it is still free.
        await _pay(db, order, order.total_fen)
        assert (await _coupon(db, coupon.id)).status == CouponStatus.used

    async def test_a_late_payment_is_refused_when_the_coupon_went_to_another_order(
        self, db: Database, sale: Sale, operator: Caller, buyer: Caller
    ) -> None:
        from linli.orders.errors import PaidAfterExpiry

        coupon = await _issue(db, await _template(db, operator), buyer.user)
        first = await _order(db, buyer, sale, coupon_id=coupon.id)
        async with db.sessionmaker() as session:
            await service.expire_order(session, first.id)
            await session.commit()
        second = await _order(db, buyer, sale, coupon_id=coupon.id)
        with pytest.raises(PaidAfterExpiry):
            await _pay(db, first, first.total_fen)
        await _pay(db, second, second.total_fen)
        assert (await _coupon(db, coupon.id)).order_id == second.id

    async def test_a_refund_returns_the_coupon(
        self, db: Database, sale: Sale, operator: Caller, buyer: Caller
    ) -> None:
        coupon = await _issue(db, await _template(db, operator), buyer.user)
        order = await _pay(db, await _order(db, buyer, sale, coupon_id=coupon.id), 2000)
        async with db.sessionmaker() as session:
            await service.mark_refunded(session, order.id, provider_ref="r-1")
            await session.commit()
        back = await _coupon(db, coupon.id)
        assert (back.status, back.order_id) == (CouponStatus.available, None)
        assert (await _events(db, "coupon.released"))[-1].payload["reason"] == "refunded"


class TestLotteryPrizes:
    async def test_each_winner_gets_one_coupon_once(self, db: Database, operator: Caller) -> None:
        template_id = await _template(db, operator, name="青团免费试吃券")
        async with db.sessionmaker() as session:
            winners = [await make_buyer(session, None) for _ in range(3)]
            for _ in range(2):  # at-least-once: the same draw delivered twice
                record_event(
                    session,
                    "lottery.drawn",
                    subjects=Subjects(session_id=None),
                    payload={
                        "lottery_id": 42,
                        "prize_coupon_template_id": template_id,
                        "winner_user_ids": [w.id for w in winners],
                    },
                )
            record_event(
                session,
                "lottery.drawn",
                payload={
                    "lottery_id": 43,
                    "prize_coupon_template_id": None,
                    "winner_user_ids": [winners[0].id],
                },
            )
            await session.commit()

        consumer = coupons.lottery_prize_consumer()
        assert await run_consumer_once(db, consumer) > 0
        # What it wrote (coupon.issued events) passes by; a second pass issues nothing new.
        await run_consumer_once(db, consumer)
        assert await run_consumer_once(db, consumer) == 0
        async with db.sessionmaker() as session:
            issued = (await session.scalars(select(Coupon).order_by(Coupon.user_id))).all()
        assert [(c.user_id, c.source, c.template_id) for c in issued] == [
            (w.id, "lottery:42", template_id) for w in sorted(winners, key=lambda w: w.id)
        ]


# --- API and pages -----------------------------------------------------------------------------------


class TestApi:
    async def test_operator_issues_by_phone_and_the_neighbour_checks_out_with_it(
        self, client: httpx.AsyncClient, db: Database, sale: Sale, operator: Caller, buyer: Caller
    ) -> None:
        created = await client.post(
            "/api/v1/admin/coupons/templates",
            json={"name": "直播间专享", "kind": "fixed", "amount_fen": 300, "valid_days": 7},
            headers=operator.headers,
        )
        assert created.status_code == 201, created.text
        template_id = created.json()["id"]
        refused = await client.post(
            "/api/v1/admin/coupons/templates",
            json={"name": "x", "kind": "percent", "percent": 100, "valid_days": 1},
            headers=operator.headers,
        )
        assert refused.status_code == 422
        assert (await client.get("/api/v1/admin/coupons/templates", headers=buyer.headers)).status_code == 403

        issue = await client.post(
            f"/api/v1/admin/coupons/templates/{template_id}/issue",
            json={"phone": buyer.user.phone},
            headers={**operator.headers, "Idempotency-Key": "k1"},
        )
        assert issue.status_code == 201, issue.text
        again = await client.post(
            f"/api/v1/admin/coupons/templates/{template_id}/issue",
            json={"phone": buyer.user.phone},
            headers={**operator.headers, "Idempotency-Key": "k1"},
        )
        assert again.json()["id"] == issue.json()["id"]
        coupon_id = issue.json()["id"]

        mine = (await client.get("/api/v1/me/coupons", headers=buyer.headers)).json()
        assert [(c["id"], c["status"]) for c in mine] == [(coupon_id, "available")]

        params = {
            "session_id": sale.live_session.id,
            "lineup_item_id": sale.item.id,
            "quantity": 1,
            "coupon_id": coupon_id,
        }
        quote = (await client.get("/api/v1/orders/quote", params=params, headers=buyer.headers)).json()
        assert (
            quote["live_price_fen"],
            quote["store_price_fen"],
            quote["coupon_discount_fen"],
            quote["total_fen"],
        ) == (
            2500,
            3000,
            300,
            2200,
        )
        assert quote["coupons"][0]["coupon_id"] == coupon_id

        body = {
            "session_id": sale.live_session.id,
            "lineup_item_id": sale.item.id,
            "quantity": 1,
            "coupon_id": coupon_id,
        }
        placed = await client.post("/api/v1/orders", json=body, headers=buyer.headers)
        assert placed.status_code == 201, placed.text
        assert (placed.json()["discount_fen"], placed.json()["total_fen"]) == (300, 2200)
        payment = await client.post(
            f"/api/v1/orders/{placed.json()['id']}/payments", json={}, headers=buyer.headers
        )
        assert payment.status_code == 201, payment.text
        assert payment.json()["amount_fen"] == 2200  # the provider is asked for the discounted total
        second = await client.post("/api/v1/orders", json=body, headers=buyer.headers)
        assert (second.status_code, second.json()["error"]) == (409, "CouponUnavailable")

    async def test_pages(
        self, client: httpx.AsyncClient, db: Database, operator: Caller, buyer: Caller
    ) -> None:
        template_id = await _template(db, operator, name="春日满减")
        await _issue(db, template_id, buyer.user)
        admin_page = await client.get("/admin/coupons", headers=operator.headers)
        assert admin_page.status_code == 200
        assert "春日满减" in admin_page.text
        assert f"coupon-issue-{template_id}" in admin_page.text
        assert (await client.get("/admin/coupons/new", headers=operator.headers)).status_code == 200
        mine = await client.get("/coupons", headers=buyer.headers)
        assert mine.status_code == 200
        assert "我的优惠券" in mine.text
        assert "春日满减" in mine.text


async def test_operator_pages_create_issue_and_switch_off(
    client: httpx.AsyncClient, db: Database, operator: Caller, buyer: Caller
) -> None:
    bad = await client.post(
        "/admin/coupons/new",
        data={"name": "八折", "kind": "percent", "percent": "120", "valid_days": "7", "active": "1"},
        headers=operator.headers,
    )
    assert bad.status_code == 422
    created = await client.post(
        "/admin/coupons/new",
        data={
            "name": "八折",
            "kind": "percent",
            "percent": "20",
            "min_spend_fen": "",
            "valid_days": "7",
            "active": "1",
        },
        headers=operator.headers,
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    async with db.sessionmaker() as session:
        [template] = await coupons.list_templates(session)
    assert (template.kind, template.percent, template.min_spend_fen) == ("percent", 20, 0)

    issued = await client.post(
        f"/admin/coupons/{template.id}/issue",
        data={"phone": buyer.user.phone},
        headers=operator.headers,
        follow_redirects=False,
    )
    assert issued.status_code == 303
    unknown = await client.post(
        f"/admin/coupons/{template.id}/issue",
        data={"phone": "13900000000"},
        headers=operator.headers,
        follow_redirects=True,
    )
    assert unknown.status_code == 200  # back on the list, saying why
    assert "未能发放" in unknown.text
    await client.post(f"/admin/coupons/{template.id}/toggle", headers=operator.headers)
    async with db.sessionmaker() as session:
        mine = await coupons.list_my_coupons(session, buyer.user.id)
        assert not (await coupons.get_template(session, template.id)).active
    assert [c.percent for c in mine] == [20]
