"""The groupbuy pages: the room's progress section, the order page's panel, the community link, the
leader's pages (own point only) and the operators' board, settings, batches and pick list."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy import update

from linli.core.clock import to_local, utcnow
from linli.groupbuy.models import PickupCode
from linli.live.models import LiveSession
from tests.factories import Caller
from tests.groupbuy.factories import Town


def _html(caller: Caller) -> dict[str, str]:
    return {**caller.headers, "Accept": "text/html"}


async def test_the_room_shows_my_community_bar_and_the_board(town: Town, client: httpx.AsyncClient) -> None:
    await town.settings(threshold=5)
    me = await town.neighbour(0)
    await town.buy(me, 2)
    await town.buy(await town.neighbour(1), 4)
    await town.drain()
    page = await client.get(f"/live/{town.session_id}", headers=_html(me))
    assert page.status_code == 200
    assert "梧桐苑 已集2份,还差3份" in page.text
    assert page.text.index("阳光花园") < page.text.index('data-name="梧桐苑"')  # the leader first
    assert "/static/js/groupbuy/progress.js" in page.text
    assert "gb-community-picker" not in page.text  # a member needs no picker
    english = await client.get(f"/live/{town.session_id}?lang=en", headers=_html(me))
    assert "梧桐苑: 2 so far, 3 to go" in english.text


async def test_a_neighbour_without_community_gets_the_picker(town: Town, client: httpx.AsyncClient) -> None:
    from tests.factories import make_user_with_token

    user, token = await make_user_with_token(town.db, nickname="新邻居")
    page = await client.get(f"/live/{town.session_id}", headers=_html(Caller(user, token)))
    assert 'id="gb-community-picker"' in page.text
    assert 'data-slot="checkout-community"' in page.text


async def test_the_order_page_shows_waiting_then_the_code_and_qr(
    town: Town, client: httpx.AsyncClient
) -> None:
    buyer = await town.neighbour()
    order = await town.buy(buyer, 1)
    await town.drain()
    page = await client.get(f"/orders/{order.id}", headers=_html(buyer))
    assert "已付款,等待本社区集满50份" in page.text
    async with town.db.sessionmaker() as session:
        code = await session.get(PickupCode, order.id)
    assert code is not None
    assert f'data-testid="gb-code">{code.code}<' in page.text
    assert "<svg" in page.text


async def test_the_community_link_joins_or_asks_first(town: Town, client: httpx.AsyncClient) -> None:
    from tests.factories import make_user_with_token

    user, token = await make_user_with_token(town.db, nickname="新邻居")
    newcomer = Caller(user, token)
    target = town.hoods[1].community.id
    joined = await client.get(f"/c/{target}/join?next=/live/{town.session_id}", headers=_html(newcomer))
    assert joined.status_code == 303
    assert joined.headers["location"] == f"/live/{town.session_id}"
    member = await town.neighbour(0)
    asked = await client.get(f"/c/{target}/join", headers=_html(member))
    assert asked.status_code == 200
    assert "你现在属于 梧桐苑" in asked.text


async def test_leader_pages_only_at_their_own_point(town: Town, client: httpx.AsyncClient) -> None:
    await town.buy(await town.neighbour(0), 2)
    await town.drain()
    leader, other = town.hoods[0].leader, town.hoods[1].leader
    home = await client.get("/leader", headers=_html(leader))
    assert home.status_code == 303
    assert home.headers["location"] == f"/leader/points/{town.hoods[0].point.id}"
    page = await client.get(f"/leader/points/{town.hoods[0].point.id}", headers=_html(leader))
    assert page.status_code == 200
    assert "王*" in page.text
    assert "未送达" in page.text
    refused = await client.get(f"/leader/points/{town.hoods[0].point.id}", headers=_html(other))
    assert refused.status_code == 403
    neighbour = await town.neighbour(0)
    assert (await client.get("/leader", headers=_html(neighbour))).status_code == 403
    members = await client.get(f"/leader/points/{town.hoods[0].point.id}/members", headers=_html(leader))
    assert members.status_code == 200
    assert "王*" in members.text


async def test_the_operator_sets_terms_cuts_off_batches_and_prints(
    town: Town, client: httpx.AsyncClient
) -> None:
    op = town.operator
    await town.buy(await town.neighbour(0), 3)
    await town.drain()
    base = f"/admin/groupbuy/sessions/{town.session_id}"
    board = await client.get(base, headers=_html(op))
    assert board.status_code == 200
    assert "梧桐苑" in board.text
    assert "3/50" in board.text
    bad = await client.post(f"{base}/settings", data={"threshold": "0"}, headers=_html(op))
    assert bad.status_code == 422
    saved = await client.post(
        f"{base}/settings",
        data={"threshold": "3", "below_policy": "refund", "delivery_fee": "5", "deliver_by": ""},
        headers=_html(op),
    )
    assert saved.status_code == 303
    terms = (await client.get(f"/api/v1/groupbuy/sessions/{town.session_id}/terms")).json()
    assert (terms["threshold"], terms["below_policy"], terms["delivery_fee_fen"]) == (3, "refund", 500)
    assert (await client.post(f"{base}/cutoff", headers=_html(op))).status_code == 303
    group = await town.group()
    assert group is not None
    assert group.outcome == "free_delivery"
    created = await client.post(
        f"{base}/batches", data={"group_order_id": str(group.id), "note": "司机老张"}, headers=_html(op)
    )
    assert created.status_code == 303
    board = await client.get(base, headers=_html(op))
    assert "司机老张" in board.text
    assert "确认发车" in board.text
    picks = await client.get(f"{base}/pick-list", headers=_html(op))
    assert picks.status_code == 200
    assert "春季限定青团" in picks.text
    assert "仓库总拣货单" in picks.text
    assert (await client.get(base, headers=_html(await town.neighbour()))).status_code == 403


async def test_saving_the_form_as_shown_does_not_recheck_an_untouched_promise(
    town: Town, client: httpx.AsyncClient
) -> None:
    """A session that started days ago: its default promise is past. Changing only the threshold from
    the board (which sends back the times it shows) saves; the untouched promise is not re-checked."""
    async with town.db.sessionmaker() as session:
        await session.execute(
            update(LiveSession)
            .where(LiveSession.id == town.session_id)
            .values(scheduled_start=utcnow() - timedelta(days=3))
        )
        await session.commit()
    op = town.operator
    base = f"/admin/groupbuy/sessions/{town.session_id}"
    board = await client.get(base, headers=_html(op))
    shown = re.search(r'name="deliver_by" type="datetime-local" value="([^"]*)"', board.text)
    assert shown is not None
    assert shown.group(1)
    form = {"threshold": "4", "below_policy": "deliver", "delivery_fee": "0", "deliver_by": shown.group(1)}
    saved = await client.post(f"{base}/settings", data=form, headers=_html(op))
    assert saved.status_code == 303, saved.text
    terms = (await client.get(f"/api/v1/groupbuy/sessions/{town.session_id}/terms")).json()
    assert terms["threshold"] == 4
    # Moving the promise to before now is still refused, and changes nothing.
    past = (to_local(utcnow()) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    refused = await client.post(
        f"{base}/settings", data={**form, "threshold": "7", "deliver_by": past}, headers=_html(op)
    )
    assert refused.status_code == 422
    assert "promise" in refused.text
    terms = (await client.get(f"/api/v1/groupbuy/sessions/{town.session_id}/terms")).json()
    assert terms["threshold"] == 4


async def test_operators_see_a_communitys_members_from_the_board(
    town: Town, client: httpx.AsyncClient
) -> None:
    buyer = await town.neighbour(0, nickname="王阿姨")
    await town.buy(buyer, 1)
    await town.drain()
    group = await town.group()
    assert group is not None
    board = await client.get(f"/admin/groupbuy/sessions/{town.session_id}", headers=_html(town.operator))
    link = f"/admin/groupbuy/communities/{group.community_id}/members"
    assert link in board.text
    page = await client.get(link, headers=_html(town.operator))
    assert page.status_code == 200
    assert "王阿姨" in page.text  # operators see the full name (leaders see 王*)
    assert buyer.user.phone[-4:] in page.text
    assert "加入方式" in page.text
    assert (await client.get(link, headers=_html(buyer))).status_code == 403
