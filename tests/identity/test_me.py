"""GET/PATCH /api/v1/me."""

from __future__ import annotations

import httpx
import pytest

from linli.core.db import Database
from linli.identity.models import Role
from tests.factories import bearer, make_user_with_token
from tests.identity.flows import events_of


async def test_me_shows_profile_and_roles(client: httpx.AsyncClient, db: Database) -> None:
    user, token = await make_user_with_token(db, roles=(Role.leader, Role.host), nickname="阿花")

    response = await client.get("/api/v1/me", headers=bearer(token))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == user.id
    assert body["phone"] == user.phone
    assert body["nickname"] == "阿花"
    assert body["display_name"] == "阿花"
    assert body["roles"] == ["customer", "host", "leader"]
    assert body["community_id"] is None


async def test_me_needs_a_login(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json() == {"error": "NotAuthenticated", "detail": "please log in first"}


async def test_a_garbage_bearer_token_is_anonymous(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/me", headers=bearer("not-a-token"))
    assert response.status_code == 401


async def test_nickname_can_be_changed(client: httpx.AsyncClient, db: Database) -> None:
    user, token = await make_user_with_token(db)

    response = await client.patch("/api/v1/me", json={"nickname": "  青团爱好者  "}, headers=bearer(token))

    assert response.status_code == 200
    assert response.json()["nickname"] == "青团爱好者"
    assert (await client.get("/api/v1/me", headers=bearer(token))).json()["display_name"] == "青团爱好者"
    [event] = await events_of(db, "identity.profile_updated")
    assert event.user_id == user.id
    assert event.payload == {"fields": ["nickname"]}


async def test_twenty_characters_fit(client: httpx.AsyncClient, db: Database) -> None:
    _, token = await make_user_with_token(db)
    response = await client.patch("/api/v1/me", json={"nickname": "邻" * 20}, headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["nickname"] == "邻" * 20


@pytest.mark.parametrize("nickname", ["", "   ", "邻" * 21, "a\u0000b", "tab\there"])
async def test_bad_nicknames_are_422_and_change_nothing(
    client: httpx.AsyncClient, db: Database, nickname: str
) -> None:
    _, token = await make_user_with_token(db, nickname="原名")

    response = await client.patch("/api/v1/me", json={"nickname": nickname}, headers=bearer(token))

    assert response.status_code == 422
    assert response.json()["error"] in ("ValidationError", "InvalidNickname")
    assert (await client.get("/api/v1/me", headers=bearer(token))).json()["nickname"] == "原名"
    assert await events_of(db, "identity.profile_updated") == []
