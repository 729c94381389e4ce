"""Run the Alembic migrations programmatically (``linli migrate``, ``make run``, tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.set_main_option(
        "file_template", "%%(year)d%%(month).2d%%(day).2d_%%(hour).2d%%(minute).2d_%%(slug)s"
    )
    return config


def upgrade(url: str, revision: str = "head") -> None:
    _ensure_sqlite_dir(url)
    _outside_event_loop(command.upgrade, alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    _outside_event_loop(command.downgrade, alembic_config(url), revision)


def _outside_event_loop(run: Callable[[Config, str], None], config: Config, revision: str) -> None:
    """Run an Alembic command; our ``env.py`` drives the async engine with ``asyncio.run``, which cannot
    nest in a running loop (async code, Playwright's sync API), so there it gets a thread of its own."""
    try:
        asyncio.get_running_loop()
        in_loop = True
    except RuntimeError:
        in_loop = False
    if not in_loop:
        run(config, revision)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="linli-migrate") as pool:
        pool.submit(run, config, revision).result()


def _ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite") and ":///" in url:
        path = url.split(":///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
