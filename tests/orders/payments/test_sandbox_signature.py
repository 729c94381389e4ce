"""The sandbox provider's notification check, on its own: the signature covers timestamp, nonce and
body; a wrong key, any tampering, or a timestamp outside the window is refused before anything is read."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest

from linli.core.clock import utcnow
from linli.orders.payments.errors import InvalidSignature, MalformedNotification
from linli.orders.payments.providers.base import NotificationKind, ReportedStatus
from linli.orders.payments.providers.sandbox import (
    NONCE_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SandboxProvider,
    sandbox_secret,
    signed_headers,
)

SECRET = sandbox_secret("test-secret-key")
PROVIDER = SandboxProvider(SECRET, window_seconds=300)
BODY = json.dumps(
    {
        "id": "N1",
        "event_type": "payment.succeeded",
        "out_trade_no": "LP1",
        "transaction_id": "SBXT1",
        "amount_fen": 2500,
        "status": "succeeded",
    }
).encode()


def test_a_signed_notification_reads_back() -> None:
    note = PROVIDER.verify_notification(signed_headers(SECRET, BODY), BODY, now=utcnow())
    assert (note.notification_id, note.kind, note.status) == (
        "N1",
        NotificationKind.payment,
        ReportedStatus.succeeded,
    )
    assert (note.out_trade_no, note.provider_ref, note.amount_fen) == ("LP1", "SBXT1", 2500)


def test_header_names_are_case_insensitive() -> None:
    headers = {k.lower(): v for k, v in signed_headers(SECRET, BODY).items()}
    assert PROVIDER.verify_notification(headers, BODY, now=utcnow()).notification_id == "N1"


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h, b: (h, b.replace(b"2500", b"2501")), id="body"),
        pytest.param(
            lambda h, b: ({**h, TIMESTAMP_HEADER: str(int(h[TIMESTAMP_HEADER]) + 1)}, b), id="timestamp"
        ),
        pytest.param(lambda h, b: ({**h, NONCE_HEADER: h[NONCE_HEADER] + "0"}, b), id="nonce"),
        pytest.param(lambda h, b: (signed_headers(sandbox_secret("another app"), b), b), id="wrong-key"),
        pytest.param(lambda h, b: ({k: v for k, v in h.items() if k != SIGNATURE_HEADER}, b), id="unsigned"),
        pytest.param(lambda h, b: ({**h, SIGNATURE_HEADER: "0" * 64}, b), id="garbage-signature"),
    ],
)
def test_tampering_is_refused(
    tamper: Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]],
) -> None:
    headers, body = tamper(signed_headers(SECRET, BODY), BODY)
    with pytest.raises(InvalidSignature):
        PROVIDER.verify_notification(headers, body, now=utcnow())


@pytest.mark.parametrize("age", [timedelta(minutes=6), timedelta(minutes=-6), timedelta(days=2)])
def test_a_replay_outside_the_window_is_refused(age: timedelta) -> None:
    now = utcnow()
    headers = signed_headers(SECRET, BODY, now=now - age)
    with pytest.raises(InvalidSignature, match="replay"):
        PROVIDER.verify_notification(headers, BODY, now=now)
    assert PROVIDER.verify_notification(
        signed_headers(SECRET, BODY, now=now - timedelta(minutes=4)), BODY, now=now
    )


def test_a_signed_body_that_is_not_a_notification_is_malformed() -> None:
    body = b'{"id": "N2", "status": "teleported"}'
    with pytest.raises(MalformedNotification):
        PROVIDER.verify_notification(signed_headers(SECRET, body), body, now=utcnow())
