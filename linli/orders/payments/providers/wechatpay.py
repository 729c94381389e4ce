"""WeChat Pay API v3 (直连商户), written to its documentation.

- Requests carry ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=..,nonce_str=..,signature=..,
  timestamp=..,serial_no=..``; the signature is SHA256-with-RSA (PKCS#1 v1.5), base64, by the merchant
  API private key over ``METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n`` (URL: path and query, no host).
- Responses and notifications are signed by WeChat Pay over ``TIMESTAMP\\nNONCE\\nBODY\\n`` with the key
  named by ``Wechatpay-Serial`` (a WeChat Pay public key or a platform certificate). A 2xx response
  without a valid signature is treated as forged.
- A notification's ``resource`` is AEAD_AES_256_GCM-encrypted with the APIv3 key (32 bytes), its
  ``nonce`` (12 bytes) and ``associated_data``; the ciphertext is base64 and ends with the 16-byte tag.
- JSAPI orders (``POST /v3/pay/transactions/jsapi``) return a ``prepay_id`` that the client turns into
  ``wx.requestPayment`` / ``WeixinJSBridge`` parameters signed over ``appId\\ntimeStamp\\nnonceStr\\n
  package\\n``; H5 orders (``POST /v3/pay/transactions/h5``) return an ``h5_url``.
- Refunds: ``POST /v3/refund/domestic/refunds`` (one refund per ``out_refund_no``, however often asked);
  the result may come later as a ``REFUND.*`` notification.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from linli.core.clock import to_local, utcnow
from linli.core.errors import BadRequest
from linli.orders.payments.config import WechatPaySettings
from linli.orders.payments.errors import (
    InvalidSignature,
    MalformedNotification,
    ProviderRejected,
    ProviderUnavailable,
)
from linli.orders.payments.providers.base import (
    Checkout,
    Notification,
    NotificationKind,
    PaymentOrder,
    RefundOrder,
    RefundResult,
    ReportedStatus,
    Scene,
    check_window,
    lower_keys,
    queried_id,
)

NAME = "wechatpay"
AUTH_SCHEMA = "WECHATPAY2-SHA256-RSA2048"
ALGORITHM = "AEAD_AES_256_GCM"
JSAPI_PATH = "/v3/pay/transactions/jsapi"
H5_PATH = "/v3/pay/transactions/h5"
REFUND_PATH = "/v3/refund/domestic/refunds"
# 查询订单 by our order number (商户订单号查询).
QUERY_PATH = "/v3/pay/transactions/out-trade-no/{out_trade_no}?mchid={mchid}"

# trade_state of a transaction, in our words. REFUND (paid, then refunded) says nothing new about payment.
_TRADE_STATES = {
    "SUCCESS": ReportedStatus.succeeded,
    "PAYERROR": ReportedStatus.failed,
    "CLOSED": ReportedStatus.failed,
    "REVOKED": ReportedStatus.failed,
    "NOTPAY": ReportedStatus.pending,
    "USERPAYING": ReportedStatus.pending,
    "REFUND": ReportedStatus.pending,
}
_REFUND_STATES = {
    "SUCCESS": ReportedStatus.succeeded,
    "CLOSED": ReportedStatus.failed,
    "ABNORMAL": ReportedStatus.failed,
    "PROCESSING": ReportedStatus.pending,
}


# --- keys and signatures --------------------------------------------------------------------------------


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the merchant private key is not an RSA key")
    return key


def load_public_key(pem: bytes) -> rsa.RSAPublicKey:
    """A WeChat Pay public key (``PUBLIC KEY``) or the key inside a platform certificate."""
    key = (
        x509.load_pem_x509_certificate(pem).public_key()
        if b"BEGIN CERTIFICATE" in pem
        else serialization.load_pem_public_key(pem)
    )
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the WeChat Pay public key is not an RSA key")
    return key


def rsa_sign(key: rsa.RSAPrivateKey, message: str) -> str:
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message, padding.PKCS1v15(), hashes.SHA256())
    except (CryptoInvalidSignature, ValueError):
        return False
    return True


def nonce_str() -> str:
    return secrets.token_hex(16).upper()


def request_message(method: str, url: str, timestamp: str, nonce: str, body: str) -> str:
    """The string a request signature covers; ``url`` is the path with its query, without the host."""
    return f"{method.upper()}\n{url}\n{timestamp}\n{nonce}\n{body}\n"


def authorization(
    *,
    mchid: str,
    serial_no: str,
    key: rsa.RSAPrivateKey,
    method: str,
    url: str,
    body: str,
    timestamp: str,
    nonce: str,
) -> str:
    signature = rsa_sign(key, request_message(method, url, timestamp, nonce, body))
    return (
        f'{AUTH_SCHEMA} mchid="{mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{serial_no}"'
    )


_AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')


def parse_authorization(header: str) -> dict[str, str]:
    """The fields of an ``Authorization`` header (for whoever checks our requests: WeChat, or a fake)."""
    schema, _, params = header.partition(" ")
    if schema != AUTH_SCHEMA:
        raise ValueError(f"not a {AUTH_SCHEMA} authorization")
    return dict(_AUTH_PARAM.findall(params))


def message_to_verify(timestamp: str, nonce: str, body: bytes) -> bytes:
    """What WeChat Pay signs in a response or notification."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def decrypt_resource(apiv3_key: bytes, resource: Mapping[str, Any]) -> dict[str, Any]:
    """Decrypt a notification's ``resource``; raises ``InvalidSignature`` when the GCM tag fails."""
    if resource.get("algorithm") != ALGORITHM:
        raise MalformedNotification(f"resource algorithm {resource.get('algorithm')!r} is not {ALGORITHM}")
    try:
        nonce = str(resource["nonce"]).encode()
        ciphertext = base64.b64decode(str(resource["ciphertext"]), validate=True)
        associated = str(resource.get("associated_data") or "").encode()
    except (KeyError, ValueError) as exc:
        raise MalformedNotification(f"the resource cannot be read: {exc}") from None
    try:
        plain = AESGCM(apiv3_key).decrypt(nonce, ciphertext, associated or None)
    except (InvalidTag, ValueError):
        raise InvalidSignature(
            "the notification's resource does not decrypt (GCM tag check failed)"
        ) from None
    try:
        data = json.loads(plain)
    except ValueError:
        raise MalformedNotification("the decrypted resource is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedNotification("the decrypted resource is not an object")
    return data


@dataclass(frozen=True)
class WechatPayCredentials:
    mchid: str
    appid: str
    serial_no: str
    private_key: rsa.RSAPrivateKey
    # Keys WeChat Pay signs with, by the id it sends in ``Wechatpay-Serial``.
    platform_keys: Mapping[str, rsa.RSAPublicKey]
    apiv3_key: bytes

    def __post_init__(self) -> None:
        if len(self.apiv3_key) != 32:
            raise ValueError("the APIv3 key must be 32 bytes")

    @classmethod
    def from_settings(cls, settings: WechatPaySettings) -> WechatPayCredentials:
        if not settings.configured:
            raise ValueError("WeChat Pay is not configured (LINLI_WECHATPAY_*)")
        if settings.private_key_path is None or settings.platform_public_key_path is None:
            raise ValueError("WeChat Pay key paths are missing")
        return cls(
            mchid=str(settings.mchid),
            appid=str(settings.appid),
            serial_no=str(settings.serial_no),
            private_key=load_private_key(settings.private_key_path.read_bytes()),
            platform_keys={
                str(settings.platform_serial): load_public_key(settings.platform_public_key_path.read_bytes())
            },
            apiv3_key=str(settings.apiv3_key).encode(),
        )


# --- the provider -----------------------------------------------------------------------------------------


class WechatPayProvider:
    name = NAME
    scenes = frozenset({Scene.jsapi, Scene.h5})

    def __init__(
        self,
        credentials: WechatPayCredentials,
        client: httpx.AsyncClient,
        *,
        base_url: str = "https://api.mch.weixin.qq.com",
        window_seconds: int = 300,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.credentials = credentials
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.window_seconds = window_seconds
        self.clock = clock

    # --- calls to WeChat Pay

    async def _call(self, method: str, path: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        body = "" if payload is None else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        timestamp = str(int(self.clock().timestamp()))
        nonce = nonce_str()
        creds = self.credentials
        headers = {
            "Authorization": authorization(
                mchid=creds.mchid,
                serial_no=creds.serial_no,
                key=creds.private_key,
                method=method,
                url=path,
                body=body,
                timestamp=timestamp,
                nonce=nonce,
            ),
            "Accept": "application/json",
            "User-Agent": "linli/0.1 (WeChat Pay API v3)",
        }
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = await self.client.request(
                method, self.base_url + path, content=body.encode() if body else None, headers=headers
            )
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"WeChat Pay could not be reached: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise ProviderUnavailable(f"WeChat Pay answered {response.status_code}", **_error_of(response))
        if response.status_code >= 400:
            error = _error_of(response)
            raise ProviderRejected(
                f"WeChat Pay refused the request: {error.get('provider_message') or response.status_code}",
                **error,
            )
        self._verify_response(response)
        if not response.content:
            return {}
        try:
            data = response.json()
        except ValueError:
            raise ProviderUnavailable("WeChat Pay answered with something that is not JSON") from None
        return data if isinstance(data, dict) else {}

    def _verify_response(self, response: httpx.Response) -> None:
        """A 2xx answer counts only with WeChat Pay's signature over it; anything else may be forged."""
        try:
            self._verify_signed(response.headers, response.content, now=self.clock())
        except InvalidSignature as exc:
            raise ProviderUnavailable(f"WeChat Pay's answer is not trustworthy: {exc.message}") from None

    def _verify_signed(self, headers: Mapping[str, str], body: bytes, *, now: datetime) -> None:
        h = lower_keys(headers)
        serial = h.get("wechatpay-serial")
        timestamp = h.get("wechatpay-timestamp")
        nonce = h.get("wechatpay-nonce")
        signature = h.get("wechatpay-signature")
        if not (serial and timestamp and nonce and signature):
            raise InvalidSignature("no WeChat Pay signature")
        signature_type = h.get("wechatpay-signature-type")
        if signature_type and signature_type != AUTH_SCHEMA:
            raise InvalidSignature(f"unsupported signature type {signature_type!r}")
        key = self.credentials.platform_keys.get(serial)
        if key is None:
            raise InvalidSignature(f"signed with an unknown WeChat Pay key {serial[:40]!r}")
        check_window(timestamp, now, self.window_seconds)
        if not rsa_verify(key, message_to_verify(timestamp, nonce, body), signature):
            raise InvalidSignature("the WeChat Pay signature does not match")

    async def create_payment(self, order: PaymentOrder) -> Checkout:
        creds = self.credentials
        payload: dict[str, Any] = {
            "appid": creds.appid,
            "mchid": creds.mchid,
            "description": order.description[:127],
            "out_trade_no": order.out_trade_no,
            "notify_url": order.notify_url,
            "amount": {"total": order.amount_fen, "currency": "CNY"},
        }
        if order.expires_at is not None:
            payload["time_expire"] = to_local(order.expires_at).isoformat(timespec="seconds")
        if order.scene is Scene.jsapi:
            if not order.payer_openid:
                raise BadRequest("a JSAPI payment needs the payer's openid")
            payload["payer"] = {"openid": order.payer_openid}
            data = await self._call("POST", JSAPI_PATH, payload)
            prepay_id = data.get("prepay_id")
            if not isinstance(prepay_id, str) or not prepay_id:
                raise ProviderUnavailable("WeChat Pay returned no prepay_id")
            return Checkout(scene=Scene.jsapi, params=self.jsapi_params(prepay_id), prepay_ref=prepay_id)
        if order.scene is Scene.h5:
            payload["scene_info"] = {
                "payer_client_ip": order.payer_ip or "127.0.0.1",
                "h5_info": {"type": "Wap"},
            }
            data = await self._call("POST", H5_PATH, payload)
            h5_url = data.get("h5_url")
            if not isinstance(h5_url, str) or not h5_url:
                raise ProviderUnavailable("WeChat Pay returned no h5_url")
            return Checkout(scene=Scene.h5, url=h5_url)
        raise BadRequest(f"WeChat Pay does not offer the {order.scene.value} scene")

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        """What the page passes to ``WeixinJSBridge.invoke('getBrandWCPayRequest', ...)``."""
        appid = self.credentials.appid
        timestamp = str(int(self.clock().timestamp()))
        nonce = nonce_str()
        package = f"prepay_id={prepay_id}"
        pay_sign = rsa_sign(self.credentials.private_key, f"{appid}\n{timestamp}\n{nonce}\n{package}\n")
        return {
            "appId": appid,
            "timeStamp": timestamp,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": pay_sign,
        }

    async def refund(self, order: RefundOrder) -> RefundResult:
        payload: dict[str, Any] = {
            "out_refund_no": order.out_refund_no,
            "reason": order.reason[:80] or "退款",
            "notify_url": order.notify_url,
            "amount": {"refund": order.amount_fen, "total": order.total_fen, "currency": "CNY"},
        }
        if order.provider_ref:
            payload["transaction_id"] = order.provider_ref
        else:
            payload["out_trade_no"] = order.out_trade_no
        data = await self._call("POST", REFUND_PATH, payload)
        status = _REFUND_STATES.get(str(data.get("status")))
        if status is None:
            raise ProviderUnavailable(f"WeChat Pay returned an unknown refund status {data.get('status')!r}")
        refund_id = data.get("refund_id")
        return RefundResult(status=status, refund_ref=str(refund_id) if refund_id else None, raw=data)

    async def query_payment(self, out_trade_no: str) -> Notification:
        """``GET /v3/pay/transactions/out-trade-no/{out_trade_no}``: the transaction as WeChat Pay
        keeps it, in a signed answer (checked by ``_call``), read as a notification would be."""
        path = QUERY_PATH.format(out_trade_no=quote(out_trade_no, safe=""), mchid=self.credentials.mchid)
        data = await self._call("GET", path, None)
        if str(data.get("mchid")) != self.credentials.mchid or str(data.get("out_trade_no")) != out_trade_no:
            raise ProviderUnavailable("WeChat Pay answered about another merchant's or another payment")
        try:
            answer = self._transaction("", data)
        except (MalformedNotification, KeyError, TypeError, ValueError) as exc:
            raise ProviderUnavailable(f"WeChat Pay's answer cannot be read: {exc}") from None
        return replace(answer, notification_id=queried_id(out_trade_no, answer.status, answer.provider_ref))

    # --- notifications from WeChat Pay

    def claimed_id(self, headers: Mapping[str, str], body: bytes) -> str | None:
        try:
            value = json.loads(body).get("id")
        except (ValueError, AttributeError):
            return None
        return str(value)[:64] if value is not None else None

    def verify_notification(self, headers: Mapping[str, str], body: bytes, *, now: datetime) -> Notification:
        self._verify_signed(headers, body, now=now)
        try:
            envelope = json.loads(body)
            notification_id = str(envelope["id"])
            event_type = str(envelope["event_type"])
            resource = envelope["resource"]
            if not isinstance(resource, dict):
                raise TypeError("resource is not an object")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MalformedNotification(f"the notification cannot be read: {exc}") from None
        data = decrypt_resource(self.credentials.apiv3_key, resource)
        if str(data.get("mchid")) != self.credentials.mchid:
            raise MalformedNotification("the notification is for another merchant")
        try:
            if event_type.startswith("TRANSACTION."):
                return self._transaction(notification_id, data)
            if event_type.startswith("REFUND."):
                return self._refund(notification_id, data)
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedNotification(f"the notification's resource cannot be read: {exc}") from None
        raise MalformedNotification(f"unknown event type {event_type!r}")

    def _transaction(self, notification_id: str, data: dict[str, Any]) -> Notification:
        if data.get("appid") is not None and str(data["appid"]) != self.credentials.appid:
            raise MalformedNotification("the notification is for another app")
        state = str(data["trade_state"])
        status = _TRADE_STATES.get(state)
        if status is None:
            raise MalformedNotification(f"unknown trade_state {state!r}")
        total = data["amount"]["total"]
        if not isinstance(total, int) or isinstance(total, bool):
            raise TypeError("amount.total is not an integer")
        return Notification(
            notification_id=notification_id,
            kind=NotificationKind.payment,
            status=status,
            out_trade_no=str(data["out_trade_no"]),
            provider_ref=str(data["transaction_id"]) if data.get("transaction_id") else None,
            amount_fen=total,
            raw=data,
        )

    def _refund(self, notification_id: str, data: dict[str, Any]) -> Notification:
        state = str(data["refund_status"])
        status = _REFUND_STATES.get(state)
        if status is None:
            raise MalformedNotification(f"unknown refund_status {state!r}")
        refund = data["amount"]["refund"]
        if not isinstance(refund, int) or isinstance(refund, bool):
            raise TypeError("amount.refund is not an integer")
        return Notification(
            notification_id=notification_id,
            kind=NotificationKind.refund,
            status=status,
            out_trade_no=str(data["out_trade_no"]),
            provider_ref=str(data["transaction_id"]) if data.get("transaction_id") else None,
            amount_fen=refund,
            out_refund_no=str(data["out_refund_no"]),
            refund_ref=str(data["refund_id"]) if data.get("refund_id") else None,
            raw=data,
        )


def _error_of(response: httpx.Response) -> dict[str, Any]:
    """WeChat Pay's error body: ``{"code": "PARAM_ERROR", "message": "..."}``."""
    try:
        data = response.json()
    except ValueError:
        return {"status": response.status_code}
    if not isinstance(data, dict):
        return {"status": response.status_code}
    return {
        "status": response.status_code,
        "provider_code": data.get("code"),
        "provider_message": data.get("message"),
    }
