"""Operators list users and manage roles: GET /api/v1/admin/users, PUT /api/v1/admin/users/{id}/roles."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from linli.core.db import Database
from linli.identity.models import Role, User
from tests.factories import bearer, make_user, make_user_with_token
from tests.identity.flows import events_of


@pytest.fixture
async def operator(db: Database) -> tuple[User, str]:
    return await make_user_with_token(db, roles=(Role.operator,), nickname="运营小王")


async def roles_of(db: Database, user_id: int) -> set[str]:
    async with db.sessionmaker() as session:
        user = (await session.execute(select(User).where(User.id == user_id))).scalar_one()
        return user.role_names


async def test_a_customer_gets_403_and_anonymous_401(client: httpx.AsyncClient, db: Database) -> None:
    customer, token = await make_user_with_token(db)

    as_customer = await client.get("/api/v1/admin/users", headers=bearer(token))
    anonymous = await client.get("/api/v1/admin/users")
    put = await client.put(
        f"/api/v1/admin/users/{customer.id}/roles", json={"roles": ["operator"]}, headers=bearer(token)
    )

    assert as_customer.status_code == 403
    assert as_customer.json() == {"error": "Forbidden", "detail": "this needs the operator role"}
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "NotAuthenticated"
    assert put.status_code == 403
    assert await roles_of(db, customer.id) == {"customer"}


async def test_users_are_paginated_newest_first(
    client: httpx.AsyncClient, db: Database, operator: tuple[User, str]
) -> None:
    async with db.sessionmaker() as session:
        for _ in range(24):
            await make_user(session)
        await session.commit()
    headers = bearer(operator[1])

    first = (await client.get("/api/v1/admin/users", headers=headers)).json()
    second = (await client.get("/api/v1/admin/users?page=2", headers=headers)).json()
    small = (await client.get("/api/v1/admin/users?per_page=5&page=3", headers=headers)).json()

    assert (first["total"], first["pages"], first["page"], first["per_page"]) == (25, 2, 1, 20)
    assert len(first["items"]) == 20
    assert len(second["items"]) == 5
    ids = [u["id"] for u in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 25
    assert [u["id"] for u in small["items"]] == ids[10:15]


async def test_users_are_searched_by_phone_or_nickname(
    client: httpx.AsyncClient, db: Database, operator: tuple[User, str]
) -> None:
    async with db.sessionmaker() as session:
        ahua = await make_user(session, phone="13512340000", nickname="AHua 阿花")
        li = await make_user(session, phone="13598760000", nickname="老李")
        await session.commit()
    headers = bearer(operator[1])

    async def search(q: str) -> list[int]:
        response = await client.get("/api/v1/admin/users", params={"q": q}, headers=headers)
        assert response.status_code == 200
        return [u["id"] for u in response.json()["items"]]

    assert await search("1234") == [ahua.id]
    assert await search("阿花") == [ahua.id]
    assert await search("ahua") == [ahua.id]
    # Everyone whose phone has "135" in it: both of them, and the operator too if the factory's running
    # phone counter has reached one with those digits (it does in a long test run).
    expected = {ahua.id, li.id} | ({operator[0].id} if "135" in operator[0].phone else set())
    assert set(await search("135")) == expected
    assert await search("%") == []
    assert await search("_") == []


async def test_an_operator_sets_roles(
    client: httpx.AsyncClient, db: Database, operator: tuple[User, str]
) -> None:
    async with db.sessionmaker() as session:
        target = await make_user(session)
        await session.commit()

    response = await client.put(
        f"/api/v1/admin/users/{target.id}/roles",
        json={"roles": ["host", "leader"]},
        headers=bearer(operator[1]),
    )

    assert response.status_code == 200
    assert response.json()["roles"] == ["customer", "host", "leader"]
    assert await roles_of(db, target.id) == {"customer", "host", "leader"}
    [event] = await events_of(db, "identity.roles_changed")
    assert event.actor_id == operator[0].id
    assert event.user_id == target.id
    assert event.payload == {
        "added": ["host", "leader"],
        "removed": [],
        "roles": ["customer", "host", "leader"],
    }

    response = await client.put(
        f"/api/v1/admin/users/{target.id}/roles", json={"roles": ["leader"]}, headers=bearer(operator[1])
    )
    assert response.json()["roles"] == ["customer", "leader"]
    assert (await events_of(db, "identity.roles_changed"))[-1].payload["removed"] == ["host"]


async def test_the_new_role_takes_effect_on_the_next_request(
    client: httpx.AsyncClient, db: Database, operator: tuple[User, str]
) -> None:
    colleague, token = await make_user_with_token(db)
    assert (await client.get("/api/v1/admin/users", headers=bearer(token))).status_code == 403

    await client.put(
        f"/api/v1/admin/users/{colleague.id}/roles", json={"roles": ["operator"]}, headers=bearer(operator[1])
    )

    assert (await client.get("/api/v1/admin/users", headers=bearer(token))).status_code == 200


async def test_unknown_roles_are_refused(
    client: httpx.AsyncClient, db: Database, operator: tuple[User, str]
) -> None:
    async with db.sessionmaker() as session:
        target = await make_user(session)
        await session.commit()

    response = await client.put(
        f"/api/v1/admin/users/{target.id}/roles",
        json={"roles": ["host", "admin"]},
        headers=bearer(operator[1]),
    )

    assert response.status_code == 422
    assert "roles" in response.json()["detail"]
    assert await roles_of(db, target.id) == {"customer"}
    assert await events_of(db, "identity.roles_changed") == []


async def test_an_operator_cannot_drop_their_own_operator_role(
    client: httpx.AsyncClient, db: Database, operator: tuple[User, str]
) -> None:
    user, token = operator

    response = await client.put(
        f"/api/v1/admin/users/{user.id}/roles", json={"roles": ["host"]}, headers=bearer(token)
    )

    assert response.status_code == 409
    assert response.json()["error"] == "CannotRemoveOwnOperatorRole"
    assert await roles_of(db, user.id) == {"customer", "operator"}
    # Adding to their own roles is fine.
    response = await client.put(
        f"/api/v1/admin/users/{user.id}/roles", json={"roles": ["operator", "host"]}, headers=bearer(token)
    )
    assert response.json()["roles"] == ["customer", "host", "operator"]


async def test_an_operator_can_drop_another_operator(
    client: httpx.AsyncClient, db: Database, operator: tuple[User, str]
) -> None:
    other, _ = await make_user_with_token(db, roles=(Role.operator,))

    response = await client.put(
        f"/api/v1/admin/users/{other.id}/roles", json={"roles": []}, headers=bearer(operator[1])
    )

    assert response.status_code == 200
    assert response.json()["roles"] == ["customer"]


async def test_an_unknown_user_is_404(client: httpx.AsyncClient, operator: tuple[User, str]) -> None:
    response = await client.put(
        "/api/v1/admin/users/999999/roles", json={"roles": []}, headers=bearer(operator[1])
    )
    assert response.status_code == 404
    assert response.json()["error"] == "UserNotFound"
