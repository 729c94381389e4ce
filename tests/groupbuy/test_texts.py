"""What groupbuy writes for people reads in their locale: the same inbox item (cutoff outcomes, delivery,
fees) in zh-CN and in English, the order panel's status line and steps, and the delivery promise."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from linli.community import inbox
from linli.community.models import InboxItem
from linli.groupbuy import messages
from tests.groupbuy.factories import Town

ADMIN = "/api/v1/admin/groupbuy"


async def _inbox(client: httpx.AsyncClient, town: Town, who: object, lang: str) -> list[tuple[str, str]]:
    headers = who.headers  # type: ignore[attr-defined]
    response = await client.get(f"/api/v1/me/inbox?lang={lang}", headers=headers)
    assert response.status_code == 200, response.text
    return [(i["title"], i["body"]) for i in reversed(response.json()["items"])]


class TestInboxItems:
    async def test_cutoff_and_delivery_items_read_in_both_locales(
        self, town: Town, client: httpx.AsyncClient
    ) -> None:
        await town.settings(threshold=2)
        buyer = await town.neighbour()
        await town.buy(buyer, 2)
        await town.drain()
        [group] = await town.close()
        batch = await client.post(
            f"{ADMIN}/sessions/{town.session_id}/batches",
            json={"group_order_ids": [group.id]},
            headers=town.operator.headers,
        )
        for step in ("dispatch", "arrive"):
            done = await client.post(
                f"{ADMIN}/batches/{batch.json()['id']}/{step}", headers=town.operator.headers
            )
            assert done.status_code == 200, done.text

        zh = await _inbox(client, town, buyer, "zh-CN")
        en = await _inbox(client, town, buyer, "en")
        point = town.hoods[0].point
        assert zh == [
            ("梧桐苑已成团", "本社区已集齐2份,明天上午10点前免费配送到小区自提点。"),
            ("已送达自提点,凭取货码取货", f"您的订单已送达{point.name}({point.address}),请凭取货码取货。"),
        ]
        assert en == [
            (
                "梧桐苑 made it",
                "Your community reached 2 units: "
                "free delivery to the community pickup point by 10 am tomorrow.",
            ),
            (
                "At the pickup point: bring your pickup code",
                f"Your order arrived at {point.name} ({point.address}). Pick it up with your pickup code.",
            ),
        ]

    @pytest.mark.parametrize(
        ("policy", "zh_title", "en_title", "en_body"),
        [
            (
                {"below_policy": "deliver", "delivery_fee_fen": 500},
                "未成团,照常配送",
                "Below the threshold: delivered anyway",
                "the delivery fee of ¥5 is waived for you",
            ),
            (
                {"below_policy": "store_pickup"},
                "未成团,改为门店自提",
                "Below the threshold: store pickup",
                "Pick your order up at",
            ),
            (
                {"below_policy": "refund"},
                "未成团,已全额退款",
                "Below the threshold: refunded in full",
                "Your ¥25 goes back the way you paid.",
            ),
        ],
    )
    async def test_below_threshold_outcomes_read_in_both_locales(
        self, town: Town, policy: dict[str, object], zh_title: str, en_title: str, en_body: str
    ) -> None:
        await town.settings(threshold=5, fallback_store_id=town.store.id, **policy)
        buyer = await town.neighbour()
        await town.buy(buyer)
        await town.drain()
        await town.close()
        async with town.db.sessionmaker() as session:
            [row] = (await session.scalars(select(InboxItem).where(InboxItem.user_id == buyer.user.id))).all()
        assert row.title == zh_title
        assert "梧桐苑本场共集1份,未达到5份" in row.body
        english = inbox.shown(row, "en")
        assert english.title == en_title
        assert english.body.startswith("梧桐苑 collected 1 units this session, short of 5.")
        assert en_body in english.body
        assert inbox.shown(row, "zh-CN").body == row.body


class TestOrderPanel:
    async def test_the_status_line_and_steps_read_in_english(
        self, town: Town, client: httpx.AsyncClient
    ) -> None:
        buyer = await town.neighbour()
        order = await town.buy(buyer)
        await town.drain()
        zh = (await client.get(f"/api/v1/groupbuy/orders/{order.id}", headers=buyer.headers)).json()
        en = (await client.get(f"/api/v1/groupbuy/orders/{order.id}?lang=en", headers=buyer.headers)).json()
        assert zh["message"] == "已付款,等待本社区集满50份(已集1份,还差49份)"
        assert en["message"] == "Paid, waiting for the community to reach 50 (1 so far, 49 to go)"
        assert [s["label"] for s in zh["steps"]] == ["已付款", "已成团", "配送中", "已送达自提点", "已取货"]
        assert [s["label"] for s in en["steps"]] == [
            "Paid",
            "Group made",
            "On its way",
            "At the pickup point",
            "Picked up",
        ]
        assert (zh["units_text"], en["units_text"]) == ("梧桐苑 已集1/50份", "梧桐苑: 1/50")
        page = await client.get(
            f"/orders/{order.id}?lang=en", headers={**buyer.headers, "Accept": "text/html"}
        )
        assert "Paid, waiting for the community to reach 50" in page.text

    async def test_the_promise_reads_in_both_locales(self, town: Town, client: httpx.AsyncClient) -> None:
        base = f"/api/v1/groupbuy/sessions/{town.session_id}"
        assert (await client.get(f"{base}/terms")).json()[
            "promise_text"
        ] == "明天上午10点前免费配送到小区自提点"
        assert (await client.get(f"{base}/terms?lang=en")).json()[
            "promise_text"
        ] == "free delivery to the community pickup point by 10 am tomorrow"
        assert (
            (await client.get(f"{base}/progress?lang=en")).json()["promise_text"].endswith("10 am tomorrow")
        )


@pytest.mark.parametrize(
    ("deliver_by", "zh", "en"),
    [
        (datetime(2026, 5, 1, 2, 0, tzinfo=UTC), "今天上午10点", "by 10 am today"),
        (datetime(2026, 5, 3, 7, 30, tzinfo=UTC), "后天下午3点30分", "by 3:30 pm the day after tomorrow"),
        (datetime(2026, 5, 9, 1, 5, tzinfo=UTC), "5月9日上午9点5分", "by 9:05 am on 5/9"),
    ],
)
def test_the_promise_says_the_day_and_hour_in_shanghai(deliver_by: datetime, zh: str, en: str) -> None:
    start = datetime(2026, 5, 1, 11, 0, tzinfo=UTC)  # 19:00 in Shanghai
    promise = messages.promise(start, deliver_by)
    assert promise.render("zh-CN") == f"{zh}前免费配送到小区自提点"
    assert promise.render("en") == f"free delivery to the community pickup point {en}"
