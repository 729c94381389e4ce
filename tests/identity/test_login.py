"""POST /api/v1/auth/login and /auth/logout: codes checked, attempts counted, users registered, devices
stitched, sessions issued and revoked."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select, update

from linli.core.clock import utcnow
from linli.core.config import Settings
from linli.core.db import Database
from linli.core.runtime import Runtime
from linli.identity.models import AuthSession, Device, LoginCode, User
from linli.identity.senders import last_code_sent
from tests.factories import bearer
from tests.identity.flows import api_login, count, events_of, request_code

PHONE = "13700000001"


async def login_with(client: httpx.AsyncClient, code: str, phone: str = PHONE) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"phone": phone, "code": code})


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def the_code(db: Database, phone: str = PHONE) -> LoginCode:
    async with db.sessionmaker() as session:
        query = select(LoginCode).where(LoginCode.phone == phone).order_by(LoginCode.id.desc()).limit(1)
        return (await session.execute(query)).scalar_one()


async def test_first_login_registers_a_customer_and_returns_a_working_token(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    body = await api_login(client, runtime, PHONE)

    user = body["user"]
    assert user["phone"] == PHONE
    assert user["roles"] == ["customer"]
    assert user["nickname"] == ""
    assert user["display_name"] == "邻居0001"
    assert user["community_id"] is None
    assert user["last_login_at"] is not None
    me = await client.get("/api/v1/me", headers=bearer(body["token"]))
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]
    assert me.json()["roles"] == ["customer"]
    [registered] = await events_of(db, "identity.user_registered")
    assert registered.user_id == user["id"]
    [logged_in] = await events_of(db, "identity.logged_in")
    assert logged_in.payload["registered"] is True
    assert (await the_code(db)).consumed_at is not None


async def test_a_later_login_reuses_the_user(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    first = await api_login(client, runtime, PHONE)
    runtime.settings.rate_code_per_phone_per_minute = 100

    second = await api_login(client, runtime, PHONE)

    assert second["user"]["id"] == first["user"]["id"]
    assert second["token"] != first["token"]
    assert await count(db, User) == 1
    assert len(await events_of(db, "identity.user_registered")) == 1
    assert [e.payload["registered"] for e in await events_of(db, "identity.logged_in")] == [True, False]


async def test_a_wrong_code_is_counted_although_the_request_fails(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    await request_code(client, PHONE)

    response = await login_with(client, wrong(last_code_sent(runtime, PHONE)))

    assert response.status_code == 400
    assert response.json() == {
        "error": "InvalidCode",
        "detail": "wrong code; 4 tries left",
        "context": {"attempts_left": 4},
    }
    assert (await the_code(db)).attempts == 1
    assert await count(db, User) == 0


async def test_five_wrong_tries_burn_the_code_even_for_the_right_code(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    await request_code(client, PHONE)
    code = last_code_sent(runtime, PHONE)
    lefts = []
    for _ in range(4):
        response = await login_with(client, wrong(code))
        assert response.json()["error"] == "InvalidCode"
        lefts.append(response.json()["context"]["attempts_left"])
    assert lefts == [4, 3, 2, 1]

    fifth = await login_with(client, wrong(code))
    assert fifth.status_code == 400
    assert fifth.json()["error"] == "CodeBurned"

    right = await login_with(client, code)
    assert right.status_code == 400
    assert right.json()["error"] == "CodeBurned"
    row = await the_code(db)
    assert row.attempts == 5
    assert row.burned_at is not None
    assert row.consumed_at is None
    assert await count(db, User) == 0
    [burned] = await events_of(db, "identity.code_burned")
    assert burned.payload["attempts"] == 5


async def test_an_expired_code_is_refused(client: httpx.AsyncClient, runtime: Runtime, db: Database) -> None:
    await request_code(client, PHONE)
    async with db.sessionmaker() as session:
        await session.execute(update(LoginCode).values(expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()

    response = await login_with(client, last_code_sent(runtime, PHONE))

    assert response.status_code == 400
    assert response.json()["error"] == "CodeExpired"
    assert "expired" in response.json()["detail"]
    assert await count(db, User) == 0
    assert await count(db, AuthSession) == 0


async def test_a_code_logs_in_once(client: httpx.AsyncClient, runtime: Runtime, db: Database) -> None:
    await api_login(client, runtime, PHONE)

    again = await login_with(client, last_code_sent(runtime, PHONE))

    assert again.status_code == 400
    assert again.json()["error"] == "CodeAlreadyUsed"
    assert await count(db, AuthSession) == 1


async def test_no_code_requested(client: httpx.AsyncClient, db: Database) -> None:
    response = await login_with(client, "123456")
    assert response.status_code == 400
    assert response.json()["error"] == "NoCodeRequested"
    assert await count(db, User) == 0


async def test_a_malformed_code_is_422_and_not_counted(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    await request_code(client, PHONE)
    for code in ("12345", "1234567", "12a456", "", "１２３４５６"):
        response = await login_with(client, code)
        assert response.status_code == 422, code
        assert response.json()["error"] == "MalformedCode"
    assert (await the_code(db)).attempts == 0


async def test_brute_force_on_one_phone_hits_429(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    await request_code(client, PHONE)
    code = last_code_sent(runtime, PHONE)
    statuses = [(await login_with(client, f"{n:06d}")).status_code for n in range(10) if f"{n:06d}" != code]

    response = await login_with(client, code)

    assert set(statuses) == {400}
    assert response.status_code == 429
    assert response.json()["error"] == "TooManyRequests"
    assert int(response.headers["retry-after"]) > 0
    assert await count(db, User) == 0


async def test_brute_force_across_phones_from_one_client_hits_429(
    client: httpx.AsyncClient, settings: Settings, db: Database
) -> None:
    settings.rate_verify_per_client_per_10min = 3
    phones = [f"1360000000{n}" for n in range(4)]
    for phone in phones:
        await request_code(client, phone)
    statuses = [(await login_with(client, "000000", phone)).status_code for phone in phones]

    assert statuses[:3] == [400, 400, 400]
    assert statuses[3] == 429
    # The refused try never reached the code.
    assert (await the_code(db, phones[3])).attempts == 0


async def test_the_anonymous_id_is_linked_to_the_user_on_login(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    client.cookies.set("linli_aid", "anon-browser-0001")

    body = await api_login(client, runtime, PHONE)

    user_id = body["user"]["id"]
    async with db.sessionmaker() as session:
        device = (await session.execute(select(Device))).scalar_one()
        auth = (await session.execute(select(AuthSession))).scalar_one()
    assert device.anonymous_id == "anon-browser-0001"
    assert device.user_id == user_id
    assert auth.anonymous_id == "anon-browser-0001"
    [logged_in] = await events_of(db, "identity.logged_in")
    assert logged_in.anonymous_id == "anon-browser-0001"
    assert logged_in.user_id == user_id
    [registered] = await events_of(db, "identity.user_registered")
    assert registered.anonymous_id == "anon-browser-0001"


async def test_a_shared_device_follows_its_latest_login(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    client.cookies.set("linli_aid", "anon-family-tablet")
    first = await api_login(client, runtime, "13700000001")
    second = await api_login(client, runtime, "13700000002")

    async with db.sessionmaker() as session:
        device = (await session.execute(select(Device))).scalar_one()
    assert device.user_id == second["user"]["id"]
    latest = (await events_of(db, "identity.logged_in"))[-1]
    assert latest.payload["previous_device_user_id"] == first["user"]["id"]


async def test_a_client_without_cookies_may_send_its_own_anonymous_id(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    await request_code(client, PHONE)
    response = await client.post(
        "/api/v1/auth/login",
        json={"phone": PHONE, "code": last_code_sent(runtime, PHONE), "anonymous_id": "mini-program-abc"},
    )
    assert response.status_code == 200
    [logged_in] = await events_of(db, "identity.logged_in")
    assert logged_in.anonymous_id == "mini-program-abc"


async def test_logout_revokes_the_token(client: httpx.AsyncClient, runtime: Runtime, db: Database) -> None:
    body = await api_login(client, runtime, PHONE)
    client.cookies.clear()
    headers = bearer(body["token"])

    response = await client.post("/api/v1/auth/logout", headers=headers)

    assert response.status_code == 204
    me = await client.get("/api/v1/me", headers=headers)
    assert me.status_code == 401
    assert me.json()["error"] == "NotAuthenticated"
    again = await client.post("/api/v1/auth/logout", headers=headers)
    assert again.status_code == 401
    [logged_out] = await events_of(db, "identity.logged_out")
    assert logged_out.user_id == body["user"]["id"]


async def test_logout_revokes_only_that_session(client: httpx.AsyncClient, runtime: Runtime) -> None:
    phone_session = await api_login(client, runtime, PHONE)
    runtime.settings.rate_code_per_phone_per_minute = 100
    tablet_session = await api_login(client, runtime, PHONE)

    await client.post("/api/v1/auth/logout", headers=bearer(phone_session["token"]))

    assert (await client.get("/api/v1/me", headers=bearer(tablet_session["token"]))).status_code == 200


async def test_logout_needs_a_login(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/logout")
    assert response.status_code == 401


async def test_a_disabled_account_cannot_log_in_and_keeps_its_code(
    client: httpx.AsyncClient, runtime: Runtime, db: Database
) -> None:
    await api_login(client, runtime, PHONE)
    async with db.sessionmaker() as session:
        await session.execute(update(User).values(is_active=False))
        await session.commit()
    runtime.settings.rate_code_per_phone_per_minute = 100
    await request_code(client, PHONE)

    response = await login_with(client, last_code_sent(runtime, PHONE))

    assert response.status_code == 403
    assert response.json()["error"] == "AccountDisabled"
    assert (await the_code(db)).consumed_at is None
    assert await count(db, AuthSession) == 1
