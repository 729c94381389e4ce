"""Two app processes (two uvicorn OS processes) sharing the database and Redis: a comment posted on one
reaches viewers connected to the other, with the same sequence numbers everywhere, and viewer counts add
up across processes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from linli.core.config import Settings
from linli.core.db import Database
from linli.live.models import SessionStatus
from tests.factories import bearer, make_user_with_token
from tests.live.factories import make_host, make_session
from tests.live.roomkit import serve_in_processes, watch


async def test_comment_on_one_process_reaches_viewers_on_the_other(
    settings: Settings, db: Database, redis_url: str, tmp_path: Path
) -> None:
    if settings.is_sqlite:
        pytest.skip("several app processes run on PostgreSQL (`linli serve --workers` refuses SQLite)")
    async with db.sessionmaker() as session:
        live = await make_session(session, status=SessionStatus.live, host=await make_host(session))
        await session.commit()
    _user, token = await make_user_with_token(db, nickname="张哥")
    env = {
        "LINLI_DATABASE_URL": settings.database_url,
        "LINLI_REDIS_URL": redis_url,
        "LINLI_REDIS_PREFIX": settings.redis_prefix,
        "LINLI_SECRET_KEY": settings.secret_key or "",
        "LINLI_VAR_DIR": str(tmp_path / "var"),
        "LINLI_SEED_DEMO": "false",
        "LINLI_CONSUMER_POLL_SECONDS": "0.1",
    }
    with serve_in_processes(env, [tmp_path / "one.log", tmp_path / "two.log"]) as (one, two):
        path = f"/ws/live/{live.id}"
        async with watch(one.ws_url + path) as on_one, watch(two.ws_url + path) as on_two:
            await on_one.first()
            await on_two.first()
            for server, text in ((one, "一号进程发的"), (two, "二号进程发的"), (one, "又是一号")):
                async with httpx.AsyncClient(base_url=server.base_url) as client:
                    response = await client.post(
                        f"/api/v1/sessions/{live.id}/comments", json={"text": text}, headers=bearer(token)
                    )
                    assert response.status_code == 201, response.text
            for viewer in (on_one, on_two):
                await viewer.read_until(lambda v: len(v.of_type("comment")) == 3, timeout=15)
            seen_one = [(m["seq"], m["text"]) for m in on_one.of_type("comment")]
            seen_two = [(m["seq"], m["text"]) for m in on_two.of_type("comment")]
            assert seen_one == seen_two
            assert [t for _s, t in seen_one] == ["一号进程发的", "二号进程发的", "又是一号"]
            assert [s for s, _t in seen_one] == [1, 2, 3]
            # Each process counts its own sockets and hears the other's count through Redis.
            for viewer in (on_one, on_two):
                await viewer.read_until(
                    lambda v: any(m["count"] == 2 for m in v.of_type("viewers")), timeout=15
                )
