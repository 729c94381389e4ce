"""The referral API and pages over HTTP: share links, posters (owner only, validated line, cached), share
events and the pay→share timing, the leaderboard, the operators' settings."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import select

from linli.core.db import Database
from linli.core.events import Event
from linli.core.runtime import Runtime
from linli.identity.models import Role, User, UserRole
from linli.identity.tokens import issue_session
from linli.live import comments
from linli.referral import shares
from linli.referral.models import Binding, InviteCode
from tests.factories import bearer
from tests.referral.factories import World


async def _token(db: Database, world: World, name: str, *, operator: bool = False) -> dict[str, str]:
    async with db.sessionmaker() as session:
        user = world.users[name]
        if operator:
            session.add(UserRole(user_id=user.id, role=Role.operator.value))
        token = await issue_session(session, await session.get(type(user), user.id))  # type: ignore[arg-type]
        await session.commit()
    return bearer(token)


@pytest.fixture
async def world(db: Database) -> World:
    world = await World.create(db, "ABCO")
    await world.visit("B", "A")
    await world.pay("B", days=0)
    return world


async def test_a_share_link_binds_the_visitor_and_lands_in_the_room(
    client: httpx.AsyncClient, db: Database, world: World
) -> None:
    code = await world.code("A")
    response = await client.get(f"/s/{code}?session={world.sale.live_session.id}")
    assert response.status_code == 303
    assert response.headers["location"] == f"/live/{world.sale.live_session.id}?ref={code}"
    anonymous_id = client.cookies.get("linli_aid")
    assert anonymous_id
    async with db.sessionmaker() as session:
        binding = await session.scalar(select(Binding).where(Binding.anonymous_id == anonymous_id))
    assert binding is not None
    assert (binding.sharer_id, binding.status, binding.user_id) == (world.users["A"].id, "active", None)
    room = await client.get(response.headers["location"])
    assert f'data-ref="{code}"' in room.text


async def test_a_product_link_lands_in_a_room_selling_it(client: httpx.AsyncClient, world: World) -> None:
    code = await world.code("A")
    response = await client.get(f"/s/{code}?product={world.sale.item.product_id}")
    assert response.headers["location"] == f"/live/{world.sale.live_session.id}?ref={code}"


async def test_an_unknown_code_is_a_clear_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/s/ZZZZZZ")
    assert response.status_code == 404
    assert response.json()["error"] == "InviteNotFound"
    response = await client.post("/api/v1/referral/visits", json={"code": "ZZZZZZ"})
    assert response.status_code == 404


async def test_the_visit_api_reports_refusals(client: httpx.AsyncClient, db: Database, world: World) -> None:
    headers = await _token(db, world, "A")
    response = await client.post(
        "/api/v1/referral/visits", json={"code": await world.code("A")}, headers=headers
    )
    assert response.status_code == 200
    assert response.json()["refused"] == "self"
    assert response.json()["bound"] is False


async def test_the_poster_is_the_owners_and_decodes_to_their_share_link(
    client: httpx.AsyncClient, db: Database, world: World
) -> None:
    order_id = world.orders["B"][0]
    headers = await _token(db, world, "B")
    kit = (await client.get(f"/api/v1/referral/orders/{order_id}/share", headers=headers)).json()
    code = await world.code("B")
    assert kit["code"] == code
    assert kit["share_path"] == f"/s/{code}?session={world.sale.live_session.id}"
    assert kit["default_line"] == shares.SHARE_LINE_DEFAULT
    response = await client.get(kit["posters"]["moments"], headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (1080, 1920)
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [kit["share_url"]]
    again = await client.get(kit["posters"]["moments"], headers=headers)
    assert again.content == response.content
    other = await _token(db, world, "C")
    assert (await client.get(kit["posters"]["moments"], headers=other)).status_code == 404
    assert (await client.get(f"/api/v1/referral/orders/{order_id}/share", headers=other)).status_code == 404
    assert (await client.get(kit["posters"]["moments"])).status_code == 401


async def test_the_edited_line_is_validated(client: httpx.AsyncClient, db: Database, world: World) -> None:
    order_id = world.orders["B"][0]
    headers = await _token(db, world, "B")
    url = f"/api/v1/referral/orders/{order_id}/poster.jpg"
    edited = await client.get(url, params={"format": "chat", "line": "周末一起吃青团!"}, headers=headers)
    assert edited.status_code == 200
    assert Image.open(io.BytesIO(edited.content)).size == (1000, 800)
    too_long = await client.get(url, params={"line": "青" * 41}, headers=headers)
    assert too_long.status_code == 422
    assert too_long.json()["error"] == "InvalidShareLine"
    bad_format = await client.get(url, params={"format": "banner"}, headers=headers)
    assert bad_format.status_code == 422
    assert bad_format.json()["error"] == "InvalidPosterFormat"
    # An operator adds a word (the room's verb): the next poster line is checked against it at once.
    async with db.sessionmaker() as session:
        actor = await session.get(User, world.users["A"].id)
        assert actor is not None
        await comments.add_word(session, "代购", actor=actor)
        await session.commit()
    refused = await client.get(url, params={"line": "找我代 购青团"}, headers=headers)
    assert refused.status_code == 422
    assert "not allowed" in refused.json()["detail"]


async def test_an_unpaid_order_has_no_poster(client: httpx.AsyncClient, db: Database, world: World) -> None:
    from linli.orders import service as orders_service
    from linli.orders.models import Order

    async with db.sessionmaker() as session:
        user = world.users["C"]
        from linli.community import service as community_service

        await community_service.join_community(session, user.id, world.sale.community.id, "chosen")
        order: Order = await orders_service.create_order(session, user, world.sale.order(1))
        await session.commit()
    headers = await _token(db, world, "C")
    response = await client.get(f"/api/v1/referral/orders/{order.id}/poster.jpg", headers=headers)
    assert response.status_code == 409


async def test_share_events_and_the_seconds_from_payment_to_first_share(
    client: httpx.AsyncClient, db: Database, world: World
) -> None:
    order_id = world.orders["B"][0]
    headers = await _token(db, world, "B")
    url = f"/api/v1/referral/orders/{order_id}/share-events"
    for body in (
        {"kind": "shown"},
        {"kind": "saved"},
        {"kind": "shared", "channel": "friend", "format": "chat"},
    ):
        response = await client.post(url, json=body, headers=headers)
        assert response.status_code == 201
    bad = await client.post(url, json={"kind": "liked"}, headers=headers)
    assert bad.status_code == 422
    other = await _token(db, world, "C")
    assert (await client.post(url, json={"kind": "shown"}, headers=other)).status_code == 404
    async with db.sessionmaker() as session:
        rows = (
            await session.scalars(
                select(Event).where(Event.type.in_(sorted(shares.events.SHARE_EVENTS))).order_by(Event.id)
            )
        ).all()
        # Move the share events to known offsets from the payment, as if the neighbour took their time.
        paid = await session.scalar(
            select(Event).where(Event.type == "order.paid", Event.order_id == order_id)
        )
        assert paid is not None
        for row, seconds in zip(rows, (2, 9, 30), strict=True):
            row.occurred_at = paid.occurred_at + timedelta(seconds=seconds)
        await session.commit()
    assert [(r.type, r.user_id, r.order_id, r.session_id) for r in rows] == [
        ("share.poster_shown", world.users["B"].id, order_id, world.sale.live_session.id),
        ("share.poster_saved", world.users["B"].id, order_id, world.sale.live_session.id),
        ("share.shared", world.users["B"].id, order_id, world.sale.live_session.id),
    ]
    assert rows[2].payload == {"format": "chat", "channel": "friend"}
    async with db.sessionmaker() as session:
        timing = await shares.share_timing(session, order_id)
    assert timing is not None
    assert (timing.first_shown_seconds, timing.first_share_seconds) == (2, 9)
    operator = await _token(db, world, "O", operator=True)
    summary = (await client.get("/api/v1/referral/admin/share-timing", headers=operator)).json()
    assert summary["paid_orders"] == 1
    assert summary["shared_orders"] == 1
    assert summary["median_seconds_to_first_share"] == 9
    assert (await client.get("/api/v1/referral/admin/share-timing", headers=headers)).status_code == 403


async def test_settings_are_the_operators(client: httpx.AsyncClient, db: Database, world: World) -> None:
    operator = await _token(db, world, "O", operator=True)
    customer = await _token(db, world, "B")
    url = "/api/v1/referral/admin/settings"
    assert (await client.get(url, headers=customer)).status_code == 403
    assert (await client.get(url, headers=operator)).json()["window_days"] == 7
    response = await client.put(url, json={"window_days": 3, "last_touch": True}, headers=operator)
    assert response.status_code == 200
    assert (response.json()["window_days"], response.json()["last_touch"]) == (3, True)
    missing = await client.put(url, json={"reward_template_ids": [999999]}, headers=operator)
    assert missing.status_code == 422
    assert missing.json()["error"] == "InvalidReferralSettings"
    assert (await client.put(url, json={"window_days": 0}, headers=operator)).status_code == 422
    assert (await client.get(url, headers=operator)).json()["reward_template_ids"] == []
    future = await client.post(
        "/api/v1/referral/admin/close-month", json={"month": "2999-01"}, headers=operator
    )
    assert future.status_code == 422


async def test_the_leaderboard_api_and_page(client: httpx.AsyncClient, db: Database, world: World) -> None:
    headers = await _token(db, world, "A")
    board = (await client.get("/api/v1/referral/leaderboard", headers=headers)).json()
    assert board["community_id"] == world.sale.community.id
    assert [(s["rank"], s["user_id"], s["conversions"], s["me"]) for s in board["standings"]] == [
        (1, world.users["A"].id, 1, True)
    ]
    page = await client.get("/referral/leaderboard", headers=headers)
    assert page.status_code == 200
    assert "分享达人榜" in page.text
    assert 'data-testid="standing-1"' in page.text
    other = await client.get(
        "/api/v1/referral/leaderboard", params={"community_id": world.sale.community.id + 99}, headers=headers
    )
    assert other.status_code == 404


async def test_the_order_page_has_the_share_panel(
    client: httpx.AsyncClient, db: Database, world: World
) -> None:
    headers = await _token(db, world, "B")
    page = await client.get(f"/orders/{world.orders['B'][0]}", headers=headers)
    assert page.status_code == 200
    assert 'data-testid="share-sheet"' in page.text
    assert f'data-order-id="{world.orders["B"][0]}"' in page.text
    room = await client.get(f"/live/{world.sale.live_session.id}", headers=headers)
    assert "data-referral-sheet" in room.text
    assert "/static/js/referral/share.js" in room.text


async def test_the_posters_are_drawn_when_the_payment_is_recorded(db: Database, runtime: Runtime) -> None:
    from linli.core.consumers import run_consumer_once
    from linli.referral.tasks import poster_prerender_consumer, prerenderer_of

    consumer = poster_prerender_consumer(runtime)
    world = await World.create(db)
    await run_consumer_once(db, consumer)  # its cursor starts at the end of the log: past orders are left
    await world.visit("B", "A")
    order_id = await world.pay("B")
    assert await run_consumer_once(db, consumer) >= 1
    # Drawn in a process of their own at the lowest priority, outside the consumer's transaction.
    prerenderer = prerenderer_of(runtime)
    assert len(prerenderer.pending) == 2
    await prerenderer.settle()
    prerenderer.close()
    folder = runtime.settings.media_dir / "posters" / str(order_id)
    names = sorted(p.name.split("-")[0] for p in folder.iterdir())
    assert names == ["chat", "moments"]
    async with db.sessionmaker() as session:
        user = await session.get(User, world.users["B"].id)
        assert user is not None
        path = await shares.poster_file(session, runtime, order_id, user, fmt="moments", line=None)
    assert path.parent == folder
    assert path.name in {p.name for p in folder.iterdir()}


async def test_a_run_of_payments_plans_its_posters_in_a_few_queries(db: Database, runtime: Runtime) -> None:
    """Payments that piled up during a rush: the buyers, orders, products and invite codes are read for
    the whole run at once (the codes made where missing), not once per poster."""
    from sqlalchemy import event as sa_event

    from linli.core.consumers import run_consumer_once
    from linli.referral.tasks import poster_prerender_consumer, prerenderer_of

    consumer = poster_prerender_consumer(runtime)
    world = await World.create(db, "ABCDEFG")
    await run_consumer_once(db, consumer)
    prerenderer = prerenderer_of(runtime)
    prerenderer.max_pending = 0  # counted, not drawn: the drawing is tested above

    async def statements_for_a_run_of(names: str) -> int:
        for name in names:
            await world.pay(name, drain=False)
        seen: list[str] = []

        def note(_conn, _cursor, statement: str, *_rest) -> None:  # type: ignore[no-untyped-def]
            seen.append(statement)

        sa_event.listen(db.engine.sync_engine, "before_cursor_execute", note)
        try:
            assert await run_consumer_once(db, consumer) >= len(names)
        finally:
            sa_event.remove(db.engine.sync_engine, "before_cursor_execute", note)
        return len(seen)

    await world.code("B")  # one buyer has a code already; the others get theirs made with the run
    two = await statements_for_a_run_of("BC")
    assert await statements_for_a_run_of("DEFG") <= two  # not one more for twice the posters
    assert prerenderer.skipped == 6  # one a buyer: once the backlog is full, their other format is not tried
    async with db.sessionmaker() as session:
        codes = (await session.scalars(select(InviteCode))).all()
    assert sorted(c.user_id for c in codes) == sorted(world.users[n].id for n in "BCDEFG")
    assert len({c.code for c in codes}) == 6


async def test_the_operators_settings_page(client: httpx.AsyncClient, db: Database, world: World) -> None:
    operator = await _token(db, world, "O", operator=True)
    page = await client.get("/admin/referral", headers=operator)
    assert page.status_code == 200
    assert 'name="window_days"' in page.text
    assert 'data-testid="share-timing"' in page.text
    saved = await client.post(
        "/admin/referral",
        data={"window_days": "14", "top_n": "5", "rewards": "", "last_touch": "1"},
        headers=operator,
    )
    assert saved.status_code == 303
    assert (await client.get("/api/v1/referral/admin/settings", headers=operator)).json()["window_days"] == 14
    refused = await client.post(
        "/admin/referral", data={"window_days": "14", "top_n": "5", "rewards": "99999"}, headers=operator
    )
    assert refused.status_code == 422
    assert "no coupon template 99999" in refused.text
    customer = await _token(db, world, "B")
    assert (await client.get("/admin/referral", headers=customer)).status_code == 403


def test_the_drawing_process_is_at_the_lowest_priority_before_it_imports_the_drawing_code() -> None:
    import os

    from linli.core import lowpriority
    from linli.referral.tasks import Prerenderer

    prerenderer = Prerenderer()
    try:
        nice, policy, imported = (
            prerenderer.executor()
            .submit(lowpriority.describe, "PIL", "linli.referral.posters", "linli.core.runtime")
            .result(timeout=60)
        )
    finally:
        prerenderer.close()
    assert nice == 19
    if hasattr(os, "SCHED_IDLE"):
        assert policy == os.SCHED_IDLE
    # Its first task needed none of the app: the initializer that lowered it came first and cheap.
    assert imported == []


def test_a_full_drawing_backlog_skips_rather_than_queues(tmp_path: Path) -> None:
    from linli.referral.tasks import Prerenderer

    prerenderer = Prerenderer(max_pending=0)
    assert prerenderer.submit(tmp_path / "late.jpg", None) is False  # type: ignore[arg-type]
    assert prerenderer.skipped == 1
    assert prerenderer.pending == set()
    assert not (tmp_path / "late.jpg").exists()
