"""Attribution rules, table-driven: each row is a scenario of share-link visits, logins, payments and
refunds (real services, real consumer over the event log, both databases) and who ends up credited."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select

from linli.core.db import Database
from linli.identity.models import Device
from linli.referral import service
from linli.referral.models import Binding, Conversion, InviteCode
from tests.referral.factories import World, drain_referral

# A step: (verb, *args, {kwargs}) — verbs are World's: visit(visitor, sharer), login(name), pay(name),
# refund(name); "settings" sets the operator's settings.
Step = tuple[Any, ...]


@dataclass(frozen=True)
class Case:
    name: str
    steps: list[Step]
    credited: dict[str, list[str]]
    refused: list[str] = field(default_factory=list)
    reversed: int = 0


CASES = [
    Case("inside the window", [("visit", "B", "A", {"days": 0}), ("pay", "B", {"days": 3})], {"A": ["B"]}),
    Case("after the 7-day window", [("visit", "B", "A", {"days": 0}), ("pay", "B", {"days": 7.01})], {}),
    Case(
        "a 10-day window set by the operator",
        [("settings", {"window_days": 10}), ("visit", "B", "A"), ("pay", "B", {"days": 9})],
        {"A": ["B"]},
    ),
    Case(
        "first touch: a later sharer does not steal the binding",
        [("visit", "B", "A", {"days": 0}), ("visit", "B", "C", {"days": 1}), ("pay", "B", {"days": 2})],
        {"A": ["B"]},
    ),
    Case(
        "last touch when the operator chooses it",
        [
            ("settings", {"last_touch": True}),
            ("visit", "B", "A", {"days": 0}),
            ("visit", "B", "C", {"days": 1}),
            ("pay", "B", {"days": 2}),
        ],
        {"C": ["B"]},
    ),
    Case(
        "first touch after the first binding expired: the new sharer binds",
        [("visit", "B", "A", {"days": 0}), ("visit", "B", "C", {"days": 8}), ("pay", "B", {"days": 9})],
        {"C": ["B"]},
    ),
    Case(
        "re-share chain A→B→C credits B for C",
        [
            ("visit", "B", "A"),
            ("pay", "B", {"days": 1}),
            ("visit", "C", "B", {"days": 1}),
            ("pay", "C", {"days": 2}),
        ],
        {"A": ["B"], "B": ["C"]},
    ),
    Case(
        "anonymous visit, then login on that browser",
        [
            ("visit", "B", "A", {"anonymous": True, "browser": "b-browser"}),
            ("login", "B", {"browser": "b-browser", "days": 0.5}),
            ("pay", "B", {"days": 1}),
        ],
        {"A": ["B"]},
    ),
    Case("self-referral", [("visit", "A", "A"), ("pay", "A", {"days": 1})], {}, refused=["self"]),
    Case(
        "a loop: A invited B, B invites A",
        [("visit", "B", "A"), ("visit", "A", "B", {"days": 1}), ("pay", "A", {"days": 2})],
        {},
        refused=["loop"],
    ),
    Case(
        "the same device: B opens A's link on A's phone, logged out",
        [
            ("login", "A", {"browser": "A-phone"}),
            ("visit", "B", "A", {"anonymous": True, "browser": "A-phone"}),
            ("pay", "B", {"days": 1}),
        ],
        {},
        refused=["same_device"],
    ),
    Case(
        "the same device: B once logged in on A's phone, found at the payment",
        [
            ("login", "A", {"browser": "A-phone"}),
            ("visit", "B", "A", {"browser": "B-phone"}),
            ("login", "B", {"browser": "A-phone", "days": 0.5}),
            ("pay", "B", {"days": 1}),
        ],
        {},
        refused=["same_device"],
    ),
    Case(
        "the same phone: B's order gives A's phone as its contact",
        [("visit", "B", "A"), ("pay", "B", {"days": 1, "contact_phone": "A"})],
        {},
        refused=["same_phone"],
    ),
    Case(
        "a refund reverses the conversion",
        [("visit", "B", "A"), ("pay", "B", {"days": 1}), ("refund", "B", {"days": 2})],
        {},
        reversed=1,
    ),
    Case(
        "not a new customer: B had paid before",
        [("pay", "B", {"days": 0}), ("visit", "B", "A", {"days": 1}), ("pay", "B", {"days": 2})],
        {},
    ),
    Case(
        "only the first paid order converts",
        [("visit", "B", "A"), ("pay", "B", {"days": 1}), ("pay", "B", {"days": 2})],
        {"A": ["B"]},
    ),
    Case(
        "a refund of the first order does not make the second one new",
        [
            ("visit", "B", "A"),
            ("pay", "B", {"days": 1}),
            ("refund", "B", {"days": 1.5}),
            ("pay", "B", {"days": 2}),
        ],
        {},
        reversed=1,
    ),
]


async def _run(world: World, step: Step) -> None:
    verb, *args = step
    kwargs = dict(args.pop()) if args and isinstance(args[-1], dict) else {}
    if verb == "settings":
        async with world.db.sessionmaker() as session:
            operator = world.users["D"]
            await service.update_referral_settings(session, actor=operator, **kwargs)
            await session.commit()
        return
    if verb == "pay" and kwargs.get("contact_phone") in world.users:
        kwargs["contact_phone"] = world.users[kwargs["contact_phone"]].phone
    await getattr(world, verb)(*args, **kwargs)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_attribution_rules(db: Database, case: Case) -> None:
    world = await World.create(db)
    for step in case.steps:
        await _run(world, step)
    assert await world.credited() == case.credited
    refused = [e.payload["reason"] for e in await world.events("referral.refused")]
    assert refused == case.refused
    converted = await world.events("referral.converted")
    reversed_ = await world.events("referral.reversed")
    assert len(reversed_) == case.reversed
    assert len(converted) == sum(len(v) for v in case.credited.values()) + case.reversed
    for event in converted:
        assert event.order_id is not None
        assert set(event.payload) >= {"referrer_id", "referrer_name", "referee_id", "order_id", "revenue_fen"}
        assert event.user_id == event.payload["referee_id"]
        assert event.community_id == world.sale.community.id


async def test_every_binding_is_an_event_with_the_contract_keys(db: Database) -> None:
    world = await World.create(db)
    await world.visit("B", "A", anonymous=True, browser="b1")
    await world.login("B", browser="b1")
    bound = await world.events("referral.bound")
    assert [e.user_id for e in bound] == [None, world.users["B"].id]
    assert all(e.anonymous_id == "b1" for e in bound)
    assert all(e.payload["sharer_id"] == world.users["A"].id for e in bound)
    assert bound[0].payload["code"] == await world.code("A")
    assert bound[0].payload["session_id"] == world.sale.live_session.id


async def test_a_repeated_order_paid_credits_once(db: Database) -> None:
    world = await World.create(db)
    await world.visit("B", "A")
    order_id = await world.pay("B", days=1)
    async with db.sessionmaker() as session:
        assert await service.attribute_first_order(session, order_id) is None
        await session.commit()
    # The consumer's cursor back to the start: every event delivered again.
    async with db.sessionmaker() as session:
        from linli.core.consumers import ConsumerCursor

        cursor = await session.get(ConsumerCursor, "referral.attribution")
        assert cursor is not None
        cursor.txid, cursor.event_id = 0, 0
        await session.commit()
    await drain_referral(db)
    async with db.sessionmaker() as session:
        rows = (await session.scalars(select(Conversion))).all()
    assert len(rows) == 1
    assert rows[0].revenue_fen == 2500


async def test_a_run_of_payments_credits_each_bound_buyer_and_only_them(db: Database) -> None:
    """Payments that piled up reach the consumer as one run: the buyers who may be bound are found at
    once — by their account, or by a browser of theirs whose binding is still anonymous — and each is
    credited as when paid alone."""
    world = await World.create(db, "ABCDE")
    await world.visit("B", "A")
    await world.visit("C", "A", anonymous=True, browser="c-browser")
    async with db.sessionmaker() as session:  # C's phone is known to be theirs; no login consumed yet
        session.add(Device(anonymous_id="c-browser", user_id=world.users["C"].id))
        await session.commit()
    await world.visit("E", "E")  # refused (self): not a binding in force
    ids = {name: world.users[name].id for name in "BCDE"}
    async with db.sessionmaker() as session:
        assert await service.possibly_bound(session, set(ids.values())) == {ids["B"], ids["C"]}
        assert await service.possibly_bound(session, set()) == set()
    for name in "BCDE":
        await world.pay(name, days=1, drain=False)
    await drain_referral(db)
    assert await world.credited() == {"A": ["B", "C"]}


async def test_a_visitor_without_community_joins_the_sharers(db: Database) -> None:
    world = await World.create(db)
    await world.visit("B", "A")
    from linli.community import service as community_service

    async with db.sessionmaker() as session:
        membership = await community_service.membership_of(session, world.users["B"].id)
    assert membership is not None
    assert (membership.community_id, membership.source) == (world.sale.community.id, "invited")


async def test_refused_visits_leave_a_refused_binding(db: Database) -> None:
    world = await World.create(db)
    visit = await world.visit("A", "A")
    assert visit.binding is None
    assert visit.refused == "self"
    async with db.sessionmaker() as session:
        rows = (await session.scalars(select(Binding))).all()
    assert [(r.status, r.refused_reason) for r in rows] == [("refused", "self")]


async def test_invite_codes_are_short_unambiguous_and_stable(db: Database) -> None:
    world = await World.create(db)
    codes = {await world.code(n) for n in "ABCD"}
    assert len(codes) == 4
    for code in codes:
        assert len(code) == service.CODE_LENGTH
        assert not set(code) & set("01OIL")
    assert await world.code("A") == await world.code("A")
    async with db.sessionmaker() as session:
        sharer = await service.sharer_of(session, f" {(await world.code('A')).lower()} ")
        assert sharer.id == world.users["A"].id


async def test_an_invite_code_is_made_once_and_a_clash_draws_again(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await World.create(db, "AB")
    taken = await world.code("A")
    assert await world.code("A") == taken  # asked again: the same code, nothing new drawn
    draws = iter([taken, "FRESH2345"])
    monkeypatch.setattr(service, "new_code", lambda: next(draws))
    # B's first draw is A's code: refused by the unique key, drawn again; A keeps theirs.
    assert await world.code("B") == "FRESH2345"
    assert await world.code("A") == taken
    async with db.sessionmaker() as session:
        owners = dict((await session.execute(select(InviteCode.code, InviteCode.user_id))).all())
    assert owners == {taken: world.users["A"].id, "FRESH2345": world.users["B"].id}


async def test_invite_codes_are_made_for_many_at_once_and_clashes_draw_again(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await World.create(db, "ABCD")
    taken = await world.code("A")
    # B draws A's code, C and D the same fresh one: one of them keeps it, the others draw again.
    draws = iter([taken, "TWINS2345", "TWINS2345", "AGAIN2345", "AGAIN6789"])
    monkeypatch.setattr(service, "new_code", lambda: next(draws))
    ids = {name: world.users[name].id for name in "ABCD"}
    async with db.sessionmaker() as session:
        rows = await service.invite_codes_of(session, set(ids.values()))
        await session.commit()
    codes = {row.user_id: row.code for row in rows}
    assert codes[ids["A"]] == taken
    assert codes[ids["C"]] == "TWINS2345"
    assert {codes[ids["B"]], codes[ids["D"]]} == {"AGAIN2345", "AGAIN6789"}
    for name in "ABCD":  # what invite_code_of answers from now on
        assert await world.code(name) == codes[ids[name]]
