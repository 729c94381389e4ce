"""Service verbs used outside HTTP (CLI, demo seed), and the pure checks."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from linli.core.db import Database
from linli.identity import service
from linli.identity.errors import CannotRemoveOwnOperatorRole, InvalidPhone, UnknownRole
from linli.identity.models import Role, User
from linli.identity.pages import safe_next
from tests.factories import make_user
from tests.identity.flows import count, events_of


class TestEnsureUser:
    async def test_creates_the_user_with_roles(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            user = await service.ensure_user(session, "13600000001", nickname="王运营", roles=[Role.operator])
            await session.commit()

        assert user.role_names == {"customer", "operator"}
        assert user.nickname == "王运营"
        [registered] = await events_of(db, "identity.user_registered")
        assert registered.user_id == user.id

    async def test_is_idempotent_and_only_adds_roles(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            first = await service.ensure_user(session, "13600000001", roles=[Role.host, Role.leader])
            await session.commit()
        async with db.sessionmaker() as session:
            again = await service.ensure_user(session, "136 0000 0001", roles=[Role.host])
            await session.commit()
        events_before = len(await events_of(db, "identity.roles_changed"))
        async with db.sessionmaker() as session:
            same = await service.ensure_user(session, "13600000001", roles=[Role.host, Role.leader])
            await session.commit()
        async with db.sessionmaker() as session:
            more = await service.ensure_user(session, "13600000001", nickname="团长", roles=[Role.operator])
            await session.commit()

        assert first.id == again.id == same.id == more.id
        assert again.role_names == {"customer", "host", "leader"}
        assert same.role_names == {"customer", "host", "leader"}
        assert more.role_names == {"customer", "host", "leader", "operator"}
        assert more.nickname == "团长"
        assert await count(db, User) == 1
        assert len(await events_of(db, "identity.user_registered")) == 1
        changes = await events_of(db, "identity.roles_changed")
        assert len(changes) == events_before + 1
        assert changes[-1].payload["added"] == ["operator"]

    async def test_does_not_overwrite_a_chosen_nickname(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            await make_user(session, phone="13600000002", nickname="自己起的")
            user = await service.ensure_user(session, "13600000002", nickname="种子")
            await session.commit()
        assert user.nickname == "自己起的"

    async def test_refuses_a_bad_phone(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            with pytest.raises(InvalidPhone):
                await service.ensure_user(session, "12345")


class TestSetRoles:
    async def test_customer_is_always_kept(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            operator = await make_user(session, roles=(Role.operator,))
            target = await make_user(session, roles=(Role.host,))
            await service.set_roles(session, target.id, [], actor=operator)
            await session.commit()
        async with db.sessionmaker() as session:
            reloaded = (await session.execute(select(User).where(User.id == target.id))).scalar_one()
        assert reloaded.role_names == {"customer"}

    async def test_own_operator_role_stays(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            operator = await make_user(session, roles=(Role.operator,))
            with pytest.raises(CannotRemoveOwnOperatorRole):
                await service.set_roles(session, operator.id, [Role.host], actor=operator)
            assert operator.role_names == {"customer", "operator"}

    def test_parse_roles_refuses_unknown_names(self) -> None:
        assert service.parse_roles(["host", "leader", "host"]) == {Role.host, Role.leader}
        with pytest.raises(UnknownRole, match="'admin'"):
            service.parse_roles(["host", "admin"])


@pytest.mark.parametrize(
    ("raw", "phone"),
    [("13800000000", "13800000000"), ("+86 138 0000 0000", "13800000000"), ("199-0000-0000", "19900000000")],
)
def test_normalize_phone(raw: str, phone: str) -> None:
    assert service.normalize_phone(raw) == phone


def test_code_hash_depends_on_key_phone_and_code() -> None:
    base = service.hash_code("key", "13800000000", "123456")
    assert base == service.hash_code("key", "13800000000", "123456")
    assert base != service.hash_code("other", "13800000000", "123456")
    assert base != service.hash_code("key", "13800000001", "123456")
    assert base != service.hash_code("key", "13800000000", "123457")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/me", "/me"),
        ("/live/3?tab=buy#card", "/live/3?tab=buy#card"),
        ("/%2F%2Fevil.com", "/%2F%2Fevil.com"),
        ("", "/"),
        (None, "/"),
        ("//evil.com", "/"),
        ("///evil.com", "/"),
        ("https://evil.com/", "/"),
        ("http:/evil.com", "/"),
        ("javascript:alert(1)", "/"),
        ("/\\evil.com", "/"),
        ("\\\\evil.com", "/"),
        ("/\t/evil.com", "/"),
        ("/\n/evil.com", "/"),
        ("evil.com", "/"),
    ],
)
def test_safe_next_keeps_only_same_site_paths(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected
