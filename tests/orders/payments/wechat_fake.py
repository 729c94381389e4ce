"""A fake WeChat Pay API v3 for tests: checks each request's signature with the merchant's public key and
answers as the documentation does, signing its answers with the platform key. Also builds notifications
the way WeChat Pay sends them (resource encrypted with the APIv3 key, body signed by the platform key)."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from linli.core.clock import utcnow
from linli.orders.payments.providers.wechatpay import (
    AUTH_SCHEMA,
    WechatPayCredentials,
    message_to_verify,
    parse_authorization,
    request_message,
    rsa_sign,
    rsa_verify,
)

MCHID = "1900009191"
APPID = "wxd678efh567hg6787"
MERCHANT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
PLATFORM_SERIAL = "PUB_KEY_ID_0114232134912410000000000000"


@dataclass(frozen=True)
class Keys:
    merchant: rsa.RSAPrivateKey
    platform: rsa.RSAPrivateKey
    apiv3_key: bytes

    @classmethod
    def generate(cls) -> Keys:
        return cls(
            merchant=rsa.generate_private_key(public_exponent=65537, key_size=2048),
            platform=rsa.generate_private_key(public_exponent=65537, key_size=2048),
            apiv3_key=secrets.token_hex(16).encode(),  # 32 ASCII bytes, as the merchant platform sets it
        )

    def credentials(self, *, merchant: rsa.RSAPrivateKey | None = None) -> WechatPayCredentials:
        return WechatPayCredentials(
            mchid=MCHID,
            appid=APPID,
            serial_no=MERCHANT_SERIAL,
            private_key=merchant or self.merchant,
            platform_keys={PLATFORM_SERIAL: self.platform.public_key()},
            apiv3_key=self.apiv3_key,
        )

    def pem(self, key: rsa.RSAPrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def public_pem(self, key: rsa.RSAPrivateKey) -> bytes:
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def platform_headers(keys: Keys, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """The headers WeChat Pay signs a response or a notification with."""
    ts = str(timestamp if timestamp is not None else int(utcnow().timestamp()))
    nonce = secrets.token_hex(16)
    signature = rsa_sign(keys.platform, message_to_verify(ts, nonce, body).decode())
    return {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": signature,
        "Wechatpay-Serial": PLATFORM_SERIAL,
        "Wechatpay-Signature-Type": AUTH_SCHEMA,
    }


def encrypt_resource(
    keys: Keys, data: dict[str, Any], *, original_type: str, associated_data: str = "transaction"
) -> dict[str, str]:
    nonce = secrets.token_hex(6)  # 12 characters, used as 12 bytes
    ciphertext = AESGCM(keys.apiv3_key).encrypt(
        nonce.encode(), json.dumps(data, ensure_ascii=False).encode(), associated_data.encode()
    )
    return {
        "original_type": original_type,
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "associated_data": associated_data,
        "nonce": nonce,
    }


def transaction(
    *,
    out_trade_no: str,
    total: int,
    transaction_id: str = "4200000985202311250000000001",
    trade_state: str = "SUCCESS",
) -> dict[str, Any]:
    """A transaction as WeChat Pay describes it (in a notification's resource, or a query's answer)."""
    return {
        "mchid": MCHID,
        "appid": APPID,
        "out_trade_no": out_trade_no,
        "transaction_id": transaction_id,
        "trade_type": "JSAPI",
        "trade_state": trade_state,
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": "2026-11-25T19:30:00+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": total, "payer_total": total, "currency": "CNY", "payer_currency": "CNY"},
    }


def transaction_notification(
    keys: Keys,
    *,
    out_trade_no: str,
    total: int,
    transaction_id: str = "4200000985202311250000000001",
    trade_state: str = "SUCCESS",
    id: str | None = None,
) -> dict[str, Any]:
    transaction_ = transaction(
        out_trade_no=out_trade_no, total=total, transaction_id=transaction_id, trade_state=trade_state
    )
    return {
        "id": id or f"EV-{secrets.token_hex(8)}",
        "create_time": "2026-11-25T19:30:01+08:00",
        "resource_type": "encrypt-resource",
        "event_type": f"TRANSACTION.{trade_state}",
        "summary": "支付成功",
        "resource": encrypt_resource(keys, transaction_, original_type="transaction"),
    }


def refund_notification(
    keys: Keys, *, out_trade_no: str, out_refund_no: str, refund: int, total: int, status: str = "SUCCESS"
) -> dict[str, Any]:
    data = {
        "mchid": MCHID,
        "out_trade_no": out_trade_no,
        "transaction_id": "4200000985202311250000000001",
        "out_refund_no": out_refund_no,
        "refund_id": "50000000382019052709732678859",
        "refund_status": status,
        "success_time": "2026-11-25T19:40:00+08:00",
        "user_received_account": "支付用户零钱",
        "amount": {"total": total, "refund": refund, "payer_total": total, "payer_refund": refund},
    }
    return {
        "id": f"EV-{secrets.token_hex(8)}",
        "create_time": "2026-11-25T19:40:01+08:00",
        "resource_type": "encrypt-resource",
        "event_type": f"REFUND.{status}",
        "summary": "退款成功",
        "resource": encrypt_resource(keys, data, original_type="refund", associated_data="refund"),
    }


def signed(keys: Keys, notification: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(notification, ensure_ascii=False).encode()
    return body, {"Content-Type": "application/json", **platform_headers(keys, body)}


@dataclass
class FakeWechatPay:
    """The API side. ``requests`` keeps every request it accepted: (path, JSON body)."""

    keys: Keys
    sign_responses: bool = True
    refund_status: str = "PROCESSING"
    # out_trade_no → the transaction a query answers (NOTPAY for any other order number).
    trades: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v3/pay/transactions/jsapi", self._jsapi, methods=["POST"]),
                Route("/v3/pay/transactions/h5", self._h5, methods=["POST"]),
                Route("/v3/refund/domestic/refunds", self._refund, methods=["POST"]),
                Route("/v3/pay/transactions/out-trade-no/{out_trade_no}", self._query, methods=["GET"]),
            ]
        )

    def _answer(self, data: dict[str, Any], status_code: int = 200) -> Response:
        body = json.dumps(data).encode()
        headers = platform_headers(self.keys, body) if self.sign_responses else {}
        return Response(body, status_code=status_code, media_type="application/json", headers=headers)

    async def _check(self, request: Request) -> dict[str, Any] | Response:
        """The request signature, as WeChat Pay checks it: 401 SIGN_ERROR when it does not hold."""
        body = (await request.body()).decode()
        # The signed URL is the path with its query string.
        url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        try:
            auth = parse_authorization(request.headers.get("authorization", ""))
            message = request_message(request.method, url, auth["timestamp"], auth["nonce_str"], body)
            valid = (
                auth["mchid"] == MCHID
                and auth["serial_no"] == MERCHANT_SERIAL
                and abs(int(auth["timestamp"]) - utcnow().timestamp()) < 300
                and rsa_verify(self.keys.merchant.public_key(), message.encode(), auth["signature"])
            )
        except (ValueError, KeyError):
            valid = False
        if not valid:
            self.refused.append(request.url.path)
            return JSONResponse({"code": "SIGN_ERROR", "message": "签名错误"}, status_code=401)
        data: dict[str, Any] = json.loads(body) if body else dict(request.query_params)
        self.requests.append((request.url.path, data))
        return data

    def _order_errors(self, data: dict[str, Any]) -> str | None:
        for name in ("appid", "mchid", "description", "out_trade_no", "notify_url"):
            if not isinstance(data.get(name), str) or not data[name]:
                return f"{name} is missing"
        if data["appid"] != APPID or data["mchid"] != MCHID:
            return "appid and mchid do not match"
        amount = data.get("amount") or {}
        if not isinstance(amount.get("total"), int) or amount.get("currency") != "CNY":
            return "amount.total (int, fen) and amount.currency CNY are required"
        if not data["notify_url"].startswith(("https://", "http://")):
            return "notify_url must be a URL"
        return None

    async def _jsapi(self, request: Request) -> Response:
        data = await self._check(request)
        if isinstance(data, Response):
            return data
        error = self._order_errors(data) or (
            None if (data.get("payer") or {}).get("openid") else "payer.openid"
        )
        if error:
            return self._answer({"code": "PARAM_ERROR", "message": error}, 400)
        return self._answer({"prepay_id": f"wx{data['out_trade_no']}"})

    async def _h5(self, request: Request) -> Response:
        data = await self._check(request)
        if isinstance(data, Response):
            return data
        scene = data.get("scene_info") or {}
        error = self._order_errors(data) or (
            None
            if scene.get("payer_client_ip") and (scene.get("h5_info") or {}).get("type")
            else "scene_info"
        )
        if error:
            return self._answer({"code": "PARAM_ERROR", "message": error}, 400)
        return self._answer(
            {
                "h5_url": f"https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx{data['out_trade_no']}"
            }
        )

    async def _query(self, request: Request) -> Response:
        data = await self._check(request)
        if isinstance(data, Response):
            return data
        if data.get("mchid") != MCHID:
            return self._answer({"code": "PARAM_ERROR", "message": "mchid"}, 400)
        out_trade_no = request.path_params["out_trade_no"]
        known = self.trades.get(out_trade_no)
        if known is None:
            return self._answer({"code": "ORDER_NOT_EXIST", "message": "订单不存在"}, 404)
        return self._answer(known)

    async def _refund(self, request: Request) -> Response:
        data = await self._check(request)
        if isinstance(data, Response):
            return data
        amount = data.get("amount") or {}
        if not (data.get("transaction_id") or data.get("out_trade_no")) or not data.get("out_refund_no"):
            return self._answer({"code": "PARAM_ERROR", "message": "transaction_id/out_refund_no"}, 400)
        if (
            not all(isinstance(amount.get(k), int) for k in ("refund", "total"))
            or amount.get("currency") != "CNY"
        ):
            return self._answer({"code": "PARAM_ERROR", "message": "amount"}, 400)
        return self._answer(
            {
                "refund_id": "50000000382019052709732678859",
                "out_refund_no": data["out_refund_no"],
                "transaction_id": data.get("transaction_id", ""),
                "out_trade_no": data.get("out_trade_no", ""),
                "channel": "ORIGINAL",
                "user_received_account": "支付用户零钱",
                "create_time": "2026-11-25T19:35:00+08:00",
                "status": self.refund_status,
                "amount": {
                    "total": amount["total"],
                    "refund": amount["refund"],
                    "payer_total": amount["total"],
                    "payer_refund": amount["refund"],
                    "settlement_refund": amount["refund"],
                    "settlement_total": amount["total"],
                    "discount_refund": 0,
                    "currency": "CNY",
                },
            }
        )


def pay_sign_holds(keys: Keys, params: dict[str, str]) -> bool:
    """Whether JSAPI parameters carry a valid merchant signature (what WeChat's client checks)."""
    message = f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
    return rsa_verify(keys.merchant.public_key(), message.encode(), params["paySign"])
