"""WeChat Pay API v3, against a fake WeChat Pay that checks our signatures and answers as documented, and
with notifications built from locally generated keys: no outside traffic."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from linli.core.clock import utcnow
from linli.core.errors import BadRequest
from linli.orders.payments.config import WechatPaySettings
from linli.orders.payments.errors import (
    InvalidSignature,
    MalformedNotification,
    ProviderRejected,
    ProviderUnavailable,
)
from linli.orders.payments.providers import get_providers
from linli.orders.payments.providers.base import (
    NotificationKind,
    PaymentOrder,
    RefundOrder,
    ReportedStatus,
    Scene,
)
from linli.orders.payments.providers.wechatpay import (
    H5_PATH,
    JSAPI_PATH,
    REFUND_PATH,
    WechatPayCredentials,
    WechatPayProvider,
)
from tests.orders.conftest import Caller
from tests.orders.factories import Sale
from tests.orders.payments.conftest import Payments
from tests.orders.payments.wechat_fake import (
    APPID,
    MCHID,
    PLATFORM_SERIAL,
    FakeWechatPay,
    Keys,
    encrypt_resource,
    pay_sign_holds,
    platform_headers,
    refund_notification,
    signed,
    transaction,
    transaction_notification,
)

NOTIFY_URL = "https://linli.example/api/v1/payments/notify/wechatpay"
Tamper = Callable[[dict[str, str], bytes, Keys], tuple[dict[str, str], bytes]]


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys.generate()


@pytest.fixture
def fake(keys: Keys) -> FakeWechatPay:
    return FakeWechatPay(keys)


@pytest.fixture
async def http(fake: FakeWechatPay) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fake.app()), base_url="https://api.mch.weixin.qq.com"
    ) as client:
        yield client


@pytest.fixture
def wechat(keys: Keys, http: httpx.AsyncClient) -> WechatPayProvider:
    return WechatPayProvider(keys.credentials(), http)


def _order(scene: Scene, **fields: object) -> PaymentOrder:
    values: dict[str, object] = {
        "out_trade_no": "LP20261125193000abcdef0123456789",
        "amount_fen": 5000,
        "description": "春季限定青团 · 订单7",
        "scene": scene,
        "notify_url": NOTIFY_URL,
        "expires_at": utcnow() + timedelta(minutes=10),
        **fields,
    }
    return PaymentOrder(**values)  # type: ignore[arg-type]


class TestOrders:
    async def test_a_jsapi_order_is_signed_and_gives_the_client_signed_pay_params(
        self, wechat: WechatPayProvider, fake: FakeWechatPay, keys: Keys
    ) -> None:
        checkout = await wechat.create_payment(
            _order(Scene.jsapi, payer_openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
        )
        [(path, body)] = fake.requests
        assert path == JSAPI_PATH
        assert body["appid"] == APPID
        assert body["mchid"] == MCHID
        assert body["amount"] == {"total": 5000, "currency": "CNY"}
        assert body["payer"] == {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
        assert body["notify_url"] == NOTIFY_URL
        assert body["time_expire"].endswith("+08:00")
        assert checkout.prepay_ref == "wxLP20261125193000abcdef0123456789"
        params = checkout.params
        assert params is not None
        assert params["appId"] == APPID
        assert params["package"] == "prepay_id=wxLP20261125193000abcdef0123456789"
        assert params["signType"] == "RSA"
        assert pay_sign_holds(keys, params)

    async def test_an_h5_order_gives_the_h5_url(self, wechat: WechatPayProvider, fake: FakeWechatPay) -> None:
        checkout = await wechat.create_payment(_order(Scene.h5, payer_ip="203.0.113.7"))
        assert checkout.url is not None
        assert checkout.url.startswith("https://wx.tenpay.com/")
        [(path, body)] = fake.requests
        assert path == H5_PATH
        assert body["scene_info"] == {"payer_client_ip": "203.0.113.7", "h5_info": {"type": "Wap"}}

    async def test_jsapi_needs_the_payers_openid(
        self, wechat: WechatPayProvider, fake: FakeWechatPay
    ) -> None:
        with pytest.raises(BadRequest):
            await wechat.create_payment(_order(Scene.jsapi))
        assert fake.requests == []

    async def test_a_request_signed_with_another_key_is_refused(
        self, keys: Keys, http: httpx.AsyncClient, fake: FakeWechatPay
    ) -> None:
        impostor = WechatPayProvider(keys.credentials(merchant=Keys.generate().merchant), http)
        with pytest.raises(ProviderRejected, match="签名错误"):
            await impostor.create_payment(_order(Scene.h5))
        assert fake.refused == [H5_PATH]

    async def test_an_unsigned_answer_is_not_trusted(
        self, wechat: WechatPayProvider, fake: FakeWechatPay
    ) -> None:
        fake.sign_responses = False
        with pytest.raises(ProviderUnavailable, match="not trustworthy"):
            await wechat.create_payment(_order(Scene.h5))

    async def test_the_refund_request(self, wechat: WechatPayProvider, fake: FakeWechatPay) -> None:
        result = await wechat.refund(
            RefundOrder(
                out_trade_no="LP1",
                provider_ref="4200000985202311250000000001",
                out_refund_no="LR1",
                amount_fen=2500,
                total_fen=5000,
                reason="订单7退款",
                notify_url=NOTIFY_URL,
            )
        )
        assert (result.status, result.refund_ref) == (ReportedStatus.pending, "50000000382019052709732678859")
        [(path, body)] = fake.requests
        assert path == REFUND_PATH
        assert body == {
            "transaction_id": "4200000985202311250000000001",
            "out_refund_no": "LR1",
            "reason": "订单7退款",
            "notify_url": NOTIFY_URL,
            "amount": {"refund": 2500, "total": 5000, "currency": "CNY"},
        }
        fake.refund_status = "SUCCESS"
        done = await wechat.refund(RefundOrder("LP1", None, "LR2", 2500, 5000, "", NOTIFY_URL))
        assert done.status is ReportedStatus.succeeded
        assert fake.requests[-1][1]["out_trade_no"] == "LP1"


class TestQuery:
    """查询订单: asked about a payment whose notification is late, WeChat Pay's signed answer is read
    as a notification of it would be."""

    async def test_a_paid_transaction_reads_as_its_notification_would(
        self, wechat: WechatPayProvider, fake: FakeWechatPay
    ) -> None:
        otn = "LP20261125193000abcdef0123456789"
        fake.trades[otn] = transaction(
            out_trade_no=otn, total=5000, transaction_id="4200000000000000000000000042"
        )
        answer = await wechat.query_payment(otn)
        assert (answer.status, answer.amount_fen, answer.provider_ref) == (
            ReportedStatus.succeeded,
            5000,
            "4200000000000000000000000042",
        )
        assert answer.notification_id == "query:4200000000000000000000000042:succeeded"
        assert fake.requests == [(f"/v3/pay/transactions/out-trade-no/{otn}", {"mchid": MCHID})]
        assert fake.refused == []  # the request's signature covered the query string

    async def test_not_paid_yet_and_closed(self, wechat: WechatPayProvider, fake: FakeWechatPay) -> None:
        fake.trades["A1"] = {
            **transaction(out_trade_no="A1", total=100, trade_state="NOTPAY"),
            "transaction_id": None,
        }
        fake.trades["A2"] = transaction(out_trade_no="A2", total=100, trade_state="CLOSED")
        assert (await wechat.query_payment("A1")).status is ReportedStatus.pending
        assert (await wechat.query_payment("A2")).status is ReportedStatus.failed

    async def test_an_unsigned_or_mismatched_answer_is_not_trusted(
        self, wechat: WechatPayProvider, fake: FakeWechatPay
    ) -> None:
        fake.trades["A1"] = transaction(out_trade_no="B9", total=100)
        with pytest.raises(ProviderUnavailable, match="another payment"):
            await wechat.query_payment("A1")
        fake.trades["A1"] = transaction(out_trade_no="A1", total=100)
        fake.sign_responses = False
        with pytest.raises(ProviderUnavailable, match="not trustworthy"):
            await wechat.query_payment("A1")
        fake.sign_responses = True
        with pytest.raises(ProviderRejected):
            await wechat.query_payment("unknown")


class TestNotifications:
    def test_a_payment_notification_decrypts_and_verifies(
        self, wechat: WechatPayProvider, keys: Keys
    ) -> None:
        body, headers = signed(
            keys, transaction_notification(keys, out_trade_no="LP1", total=5000, id="EV-1")
        )
        note = wechat.verify_notification(headers, body, now=utcnow())
        assert (note.notification_id, note.kind, note.status) == (
            "EV-1",
            NotificationKind.payment,
            ReportedStatus.succeeded,
        )
        assert (note.out_trade_no, note.provider_ref, note.amount_fen) == (
            "LP1",
            "4200000985202311250000000001",
            5000,
        )

    def test_a_refund_notification_decrypts_and_verifies(self, wechat: WechatPayProvider, keys: Keys) -> None:
        notification = refund_notification(
            keys, out_trade_no="LP1", out_refund_no="LR1", refund=2500, total=5000
        )
        body, headers = signed(keys, notification)
        note = wechat.verify_notification(headers, body, now=utcnow())
        assert (note.kind, note.status, note.out_refund_no, note.amount_fen) == (
            NotificationKind.refund,
            ReportedStatus.succeeded,
            "LR1",
            2500,
        )

    def test_a_tampered_ciphertext_fails_the_gcm_tag(self, wechat: WechatPayProvider, keys: Keys) -> None:
        notification = transaction_notification(keys, out_trade_no="LP1", total=5000)
        raw = bytearray(base64.b64decode(notification["resource"]["ciphertext"]))
        raw[3] ^= 0x01
        notification["resource"]["ciphertext"] = base64.b64encode(bytes(raw)).decode()
        body, headers = signed(keys, notification)  # a correct signature over the altered body
        with pytest.raises(InvalidSignature, match="GCM"):
            wechat.verify_notification(headers, body, now=utcnow())

    def test_the_wrong_apiv3_key_does_not_decrypt(self, keys: Keys, http: httpx.AsyncClient) -> None:
        creds = keys.credentials()
        other = WechatPayProvider(
            WechatPayCredentials(
                creds.mchid, creds.appid, creds.serial_no, creds.private_key, creds.platform_keys, b"k" * 32
            ),
            http,
        )
        body, headers = signed(keys, transaction_notification(keys, out_trade_no="LP1", total=5000))
        with pytest.raises(InvalidSignature, match="GCM"):
            other.verify_notification(headers, body, now=utcnow())

    @pytest.mark.parametrize(
        "tamper",
        [
            pytest.param(lambda h, b, k: (h, b.replace(b'"id"', b'"id" ')), id="body"),
            pytest.param(
                lambda h, b, k: ({**h, "Wechatpay-Serial": "PUB_KEY_ID_OTHER"}, b), id="unknown-serial"
            ),
            pytest.param(
                lambda h, b, k: ({**h, "Wechatpay-Timestamp": str(int(h["Wechatpay-Timestamp"]) - 1)}, b),
                id="timestamp",
            ),
            pytest.param(
                lambda h, b, k: (platform_headers(Keys.generate(), b), b), id="another-platform-key"
            ),
            pytest.param(
                lambda h, b, k: (
                    {**h, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + h["Wechatpay-Signature"]},
                    b,
                ),
                id="signtest-probe",
            ),
            pytest.param(
                lambda h, b, k: (platform_headers(k, b, timestamp=int(utcnow().timestamp()) - 600), b),
                id="replay",
            ),
            pytest.param(
                lambda h, b, k: ({x: y for x, y in h.items() if x != "Wechatpay-Signature"}, b), id="unsigned"
            ),
        ],
    )
    def test_tampering_is_refused(self, wechat: WechatPayProvider, keys: Keys, tamper: Tamper) -> None:
        body, headers = signed(keys, transaction_notification(keys, out_trade_no="LP1", total=5000))
        headers, body = tamper(headers, body, keys)
        with pytest.raises(InvalidSignature):
            wechat.verify_notification(headers, body, now=utcnow())

    def test_a_notification_for_another_merchant_is_refused(
        self, wechat: WechatPayProvider, keys: Keys
    ) -> None:
        notification = transaction_notification(keys, out_trade_no="LP1", total=5000)
        notification["resource"] = encrypt_resource(
            keys, {"mchid": "1234567890", "out_trade_no": "LP1"}, original_type="transaction"
        )
        body, headers = signed(keys, notification)
        with pytest.raises(MalformedNotification, match="another merchant"):
            wechat.verify_notification(headers, body, now=utcnow())


def test_settings_enable_the_provider_only_when_complete(tmp_path: Path, keys: Keys) -> None:
    assert not WechatPaySettings(mchid=MCHID, appid=APPID).configured
    (tmp_path / "apiclient_key.pem").write_bytes(keys.pem(keys.merchant))
    (tmp_path / "pub_key.pem").write_bytes(keys.public_pem(keys.platform))
    settings = WechatPaySettings(
        mchid=MCHID,
        appid=APPID,
        serial_no="5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        private_key_path=tmp_path / "apiclient_key.pem",
        platform_public_key_path=tmp_path / "pub_key.pem",
        platform_serial=PLATFORM_SERIAL,
        apiv3_key=keys.apiv3_key.decode(),
    )
    assert settings.configured
    creds = WechatPayCredentials.from_settings(settings)
    assert (
        creds.platform_keys[PLATFORM_SERIAL].public_numbers() == keys.platform.public_key().public_numbers()
    )


class TestThroughTheApp:
    async def test_pay_by_jsapi_then_refund_by_notification(
        self,
        pay: Payments,
        sale: Sale,
        buyer: Caller,
        operator: Caller,
        wechat: WechatPayProvider,
        fake: FakeWechatPay,
        keys: Keys,
    ) -> None:
        get_providers(pay.runtime)[wechat.name] = wechat
        order = await pay.order(buyer, sale, quantity=2)
        started = await pay.start(
            buyer, order.id, provider="wechatpay", payer_openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
        )
        assert started["scene"] == "jsapi"
        assert pay_sign_holds(keys, started["checkout"]["params"])
        assert fake.requests[0][1]["notify_url"] == "http://127.0.0.1:8000/api/v1/payments/notify/wechatpay"
        otn = started["out_trade_no"]

        notify = "/api/v1/payments/notify/wechatpay"
        notification = transaction_notification(keys, out_trade_no=otn, total=order.total_fen)
        body, headers = signed(keys, notification)
        forged = await pay.client.post(notify, content=body.replace(b"EV-", b"EX-"), headers=headers)
        assert forged.status_code == 401
        assert forged.json()["code"] == "FAIL"
        assert await pay.order_status(order.id) == "pending_payment"
        for _ in range(2):
            ok = await pay.client.post(notify, content=body, headers=headers)
            assert ok.status_code == 200
            assert ok.json() == {"code": "SUCCESS", "message": "成功"}
        assert await pay.order_status(order.id) == "paid"
        assert (await pay.payment(otn)).provider_ref == "4200000985202311250000000001"
        assert len(await pay.events("payment.succeeded")) == 1

        approved = await pay.client.post(f"/api/v1/admin/orders/{order.id}/refund", headers=operator.headers)
        assert approved.json()["status"] == "refund_requested"
        await pay.run_jobs()
        path, refund_body = fake.requests[-1]
        assert path == REFUND_PATH
        assert refund_body["transaction_id"] == "4200000985202311250000000001"
        assert refund_body["amount"] == {
            "refund": order.total_fen,
            "total": order.total_fen,
            "currency": "CNY",
        }
        [refund] = await pay.refunds()
        assert refund.status == "processing"  # accepted; the result comes by notification
        assert await pay.order_status(order.id) == "refund_requested"

        done = refund_notification(
            keys,
            out_trade_no=otn,
            out_refund_no=refund.out_refund_no,
            refund=order.total_fen,
            total=order.total_fen,
        )
        body, headers = signed(keys, done)
        assert (await pay.client.post(notify, content=body, headers=headers)).status_code == 200
        assert await pay.order_status(order.id) == "refunded"
        [refund] = await pay.refunds()
        assert refund.status == "succeeded"
        assert len(await pay.events("refund.succeeded")) == 1
        assert json.loads(body)["event_type"] == "REFUND.SUCCESS"

    async def test_back_from_paying_the_order_is_confirmed_by_asking_wechat(
        self,
        pay: Payments,
        sale: Sale,
        buyer: Caller,
        wechat: WechatPayProvider,
        fake: FakeWechatPay,
        keys: Keys,
    ) -> None:
        get_providers(pay.runtime)[wechat.name] = wechat
        openid = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
        order = await pay.order(buyer, sale, quantity=2)
        otn = (await pay.start(buyer, order.id, provider="wechatpay", payer_openid=openid))["out_trade_no"]
        fake.trades[otn] = transaction(out_trade_no=otn, total=order.total_fen)
        confirmed = (await pay.confirm(buyer, order.id)).json()
        assert confirmed["order_status"] == "paid"
        assert (await pay.payment(otn)).provider_ref == "4200000985202311250000000001"
        # WeChat's notification of the same transaction comes after: a duplicate.
        body, headers = signed(keys, transaction_notification(keys, out_trade_no=otn, total=order.total_fen))
        ok = await pay.client.post("/api/v1/payments/notify/wechatpay", content=body, headers=headers)
        assert ok.status_code == 200
        assert sorted(r.outcome for r in await pay.notifications()) == ["applied", "duplicate"]
        assert len(await pay.events("order.paid")) == 1

    async def test_an_answer_for_another_amount_never_pays(
        self, pay: Payments, sale: Sale, buyer: Caller, wechat: WechatPayProvider, fake: FakeWechatPay
    ) -> None:
        get_providers(pay.runtime)[wechat.name] = wechat
        order = await pay.order(buyer, sale)
        otn = (await pay.start(buyer, order.id, provider="wechatpay", payer_openid="o-1"))["out_trade_no"]
        fake.trades[otn] = transaction(out_trade_no=otn, total=order.total_fen - 1)
        for _ in range(2):
            assert (await pay.confirm(buyer, order.id)).json()["order_status"] == "pending_payment"
            await asyncio.sleep(1.05)
        [record] = await pay.notifications()
        assert record.outcome == "amount_mismatch"
        assert (await pay.payment(otn)).status == "created"

    async def test_an_order_placed_with_pay_asks_wechat_after_placing_it(
        self,
        pay: Payments,
        sale: Sale,
        buyer: Caller,
        wechat: WechatPayProvider,
        fake: FakeWechatPay,
        keys: Keys,
    ) -> None:
        """Another party is never asked inside the checkout's transaction: the order is placed, then
        WeChat is asked for its prepay id, and the answer carries both."""
        get_providers(pay.runtime)[wechat.name] = wechat
        body = {
            **sale.order(2).model_dump(mode="json", exclude={"pay"}),
            "pay": {"provider": "wechatpay", "payer_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        }
        answer = await pay.client.post(
            "/api/v1/orders", json=body, headers={**buyer.headers, "Idempotency-Key": "wx-1"}
        )
        assert answer.status_code == 201, answer.text
        placed = answer.json()
        assert placed["payment"]["scene"] == "jsapi"
        assert placed["payment"]["amount_fen"] == placed["total_fen"] == 5000
        assert pay_sign_holds(keys, placed["payment"]["checkout"]["params"])
        [(_, asked)] = fake.requests
        assert asked["out_trade_no"] == placed["payment"]["out_trade_no"]
        assert asked["amount"]["total"] == 5000
        assert str(placed["id"]) in asked["description"]
