"""POST /api/v1/auth/codes: validation, storage as an HMAC, events, rate limits."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from linli.core.config import Settings
from linli.core.db import Database
from linli.core.events import Event
from linli.core.ratelimit import RateCounter
from linli.core.runtime import Runtime
from linli.identity.models import LoginCode
from linli.identity.senders import last_code_sent
from tests.identity.flows import count, events_of, request_code


async def codes_for(db: Database, phone: str) -> list[LoginCode]:
    async with db.sessionmaker() as session:
        query = select(LoginCode).where(LoginCode.phone == phone).order_by(LoginCode.id)
        return list((await session.scalars(query)).all())


async def test_a_code_is_sent_and_stored_only_as_an_hmac(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    response = await request_code(client, "13800000001")

    assert response.status_code == 201
    assert response.json() == {"phone": "138****0001", "expires_in_seconds": 300, "resend_after_seconds": 60}
    code = last_code_sent(runtime, "13800000001")
    assert len(code) == 6
    assert code.isdigit()
    [row] = await codes_for(db, "13800000001")
    assert code not in row.code_hash
    assert len(row.code_hash) == 64
    assert row.attempts == 0
    assert row.consumed_at is None
    assert row.client_ip == "127.0.0.1"
    assert 299 <= (row.expires_at - row.created_at).total_seconds() <= 300
    [event] = await events_of(db, "identity.code_requested")
    assert event.payload["phone"] == "138****0001"
    assert code not in str(event.payload)


async def test_spaces_dashes_and_plus86_are_tolerated(client: httpx.AsyncClient, runtime: Runtime) -> None:
    response = await request_code(client, " +86 138-0000-0002 ")
    assert response.status_code == 201
    assert len(last_code_sent(runtime, "13800000002")) == 6


@pytest.mark.parametrize(
    "phone",
    [
        "",
        "1380000000",  # 10 digits
        "138000000001",  # 12 digits
        "12800000000",  # no mobile prefix 12
        "23800000000",
        "1380000000a",
        "١٣٨٠٠٠٠٠٠٠١",  # Arabic-Indic digits are digits to \d, not to us
        "+1 415 555 0100",
    ],
)
async def test_an_invalid_phone_gets_422_and_nothing_is_written(
    client: httpx.AsyncClient, db: Database, phone: str
) -> None:
    response = await request_code(client, phone)

    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "InvalidPhone"
    assert "11 digits" in body["detail"]
    assert await count(db, LoginCode) == 0
    assert await count(db, Event) == 0
    assert await count(db, RateCounter) == 0


async def test_a_missing_phone_is_a_validation_error(client: httpx.AsyncClient, db: Database) -> None:
    response = await client.post("/api/v1/auth/codes", json={})
    assert response.status_code == 422
    assert response.json()["error"] == "ValidationError"
    assert "phone" in response.json()["detail"]
    assert await count(db, LoginCode) == 0


async def test_a_second_request_within_the_minute_gets_429_with_retry_after(
    client: httpx.AsyncClient, db: Database
) -> None:
    assert (await request_code(client, "13800000003")).status_code == 201

    response = await request_code(client, "13800000003")

    assert response.status_code == 429
    assert response.json()["error"] == "TooManyRequests"
    assert "wait a minute" in response.json()["detail"]
    # The frozen clock sits 30 s into its minute.
    assert response.headers["retry-after"] == "30"
    assert len(await codes_for(db, "13800000003")) == 1


async def test_a_phone_gets_five_codes_an_hour(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    settings.rate_code_per_phone_per_minute = 100
    for _ in range(5):
        assert (await request_code(client, "13800000004")).status_code == 201

    response = await request_code(client, "13800000004")

    assert response.status_code == 429
    assert int(response.headers["retry-after"]) == 30 * 60 - 30
    assert len(await codes_for(db, "13800000004")) == 5


async def test_one_client_address_is_limited_across_phones(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    settings.rate_code_per_client_per_hour = 3
    for phone in ("13900000001", "13900000002", "13900000003"):
        assert (await request_code(client, phone)).status_code == 201

    response = await request_code(client, "13900000004")

    assert response.status_code == 429
    assert response.json()["error"] == "TooManyRequests"
    assert "network" in response.json()["detail"]
    assert int(response.headers["retry-after"]) > 0
    assert await codes_for(db, "13900000004") == []
    assert len(await events_of(db, "identity.code_requested")) == 3


async def test_a_new_code_supersedes_the_old_one(
    client: httpx.AsyncClient, runtime: Runtime, settings: Settings
) -> None:
    settings.rate_code_per_phone_per_minute = 100
    await request_code(client, "13800000005")
    old = last_code_sent(runtime, "13800000005")
    await request_code(client, "13800000005")
    new = last_code_sent(runtime, "13800000005")
    if old == new:  # one chance in a million
        pytest.skip("both codes happened to be equal")

    stale = await client.post("/api/v1/auth/login", json={"phone": "13800000005", "code": old})
    assert stale.status_code == 400
    assert stale.json()["error"] == "InvalidCode"

    fresh = await client.post("/api/v1/auth/login", json={"phone": "13800000005", "code": new})
    assert fresh.status_code == 200
