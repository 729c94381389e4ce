"""One set of Alembic migrations for both databases: upgrade from empty, downgrade to base, and a
migrated schema that matches the models exactly."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from linli.core.db import Base, create_engine
from linli.core.migrate import alembic_config, downgrade, upgrade
from linli.models import import_all_models

import_all_models()
T = TypeVar("T")
PG_ADMIN_DSN = os.environ.get("LINLI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _service_missing(exc: BaseException) -> None:
    if os.environ.get("LINLI_REQUIRE_SERVICES") == "1":
        pytest.fail(f"PostgreSQL is required (LINLI_REQUIRE_SERVICES=1) but unreachable: {exc}")
    pytest.skip(f"PostgreSQL unreachable: {exc}")


@pytest.fixture(scope="module")
def scratch_pg_url() -> Iterator[str]:
    """A PostgreSQL database of this module's own, dropped at its end (dropping forces a checkpoint,
    seconds on a busy server, so it is done once rather than per test)."""
    name = f"linli_migrations_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        _service_missing(exc)
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def empty_pg_url(scratch_pg_url: str) -> Iterator[str]:
    """The scratch database with nothing in it, emptied again after the test whatever it left."""
    assert _tables(scratch_pg_url) == set()
    yield scratch_pg_url
    _reset_schema(scratch_pg_url)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with nothing in it: a new SQLite file, or the empty PostgreSQL scratch database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
    url: str = request.getfixturevalue("empty_pg_url")
    return url


def _reset_schema(url: str) -> None:
    async def run() -> None:
        engine = create_engine(url, pool=False)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
        finally:
            await engine.dispose()

    asyncio.run(run())


def _inspect(url: str, look: Callable[[Connection], T]) -> T:
    async def run() -> T:
        engine = create_engine(url, pool=False)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(look)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _tables(url: str) -> set[str]:
    return _inspect(url, lambda conn: set(inspect(conn).get_table_names()))


def _revisions(url: str) -> list[str]:
    script = ScriptDirectory.from_config(alembic_config(url))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def test_there_is_exactly_one_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://"))
    assert len(script.get_heads()) == 1, f"migration branches need a merge: {script.get_heads()}"


def test_upgrade_from_empty_and_downgrade_to_base_one_revision_at_a_time(empty_url: str) -> None:
    model_tables = set(Base.metadata.tables)
    revisions = _revisions(empty_url)
    for revision in revisions:
        upgrade(empty_url, revision)
    assert _tables(empty_url) == model_tables | {"alembic_version"}

    for revision in reversed(revisions[:-1]):
        downgrade(empty_url, revision)
    downgrade(empty_url, "base")
    assert _tables(empty_url) <= {"alembic_version"}

    # And back up in one go, as `linli migrate` does on a fresh machine.
    upgrade(empty_url)
    assert _tables(empty_url) == model_tables | {"alembic_version"}


def test_the_migrated_schema_matches_the_models(empty_url: str) -> None:
    upgrade(empty_url)

    def differences(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        return [
            diff
            for diff in compare_metadata(context, Base.metadata)
            if not (
                isinstance(diff, tuple) and diff[0] == "remove_table" and diff[1].name == "alembic_version"
            )
        ]

    assert _inspect(empty_url, differences) == []


def test_the_no_oversell_check_exists_after_migrating(empty_url: str) -> None:
    upgrade(empty_url)
    checks = _inspect(empty_url, lambda conn: inspect(conn).get_check_constraints("lineup_items"))
    # PostgreSQL hands the expression back normalised: "(reserved + sold) <= stock".
    by_name = {check["name"]: "".join(c for c in check["sqltext"] if c not in "() \n") for check in checks}
    assert by_name.get("ck_lineup_items_no_oversell") == "reserved+sold<=stock", by_name


def test_event_transaction_ids_come_from_the_database_on_postgresql(empty_pg_url: str) -> None:
    """The event log's read order depends on this default (see linli/core/events.py)."""
    upgrade(empty_pg_url)
    columns = _inspect(empty_pg_url, lambda conn: inspect(conn).get_columns("events"))
    [txid] = [c for c in columns if c["name"] == "txid"]
    assert "pg_current_xact_id()" in str(txid["default"])


async def test_migrations_run_from_inside_a_running_event_loop(tmp_path: Path) -> None:
    """Async callers (an async fixture, Playwright's sync API) get the same one-call migration."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'from-async.db'}"

    async def tables() -> set[str]:
        engine = create_engine(url, pool=False)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        finally:
            await engine.dispose()

    upgrade(url)
    assert await tables() == set(Base.metadata.tables) | {"alembic_version"}
    downgrade(url)
    assert await tables() <= {"alembic_version"}
