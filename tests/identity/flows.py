"""What a client does to log in, and ways to look at what was written."""

from __future__ import annotations

from typing import Any

import httpx
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select

from linli.core.config import Settings
from linli.core.db import Base, Database
from linli.core.events import Event
from linli.core.runtime import Runtime
from linli.identity.senders import last_code_sent


async def request_code(client: httpx.AsyncClient, phone: str, **kwargs: Any) -> httpx.Response:
    return await client.post("/api/v1/auth/codes", json={"phone": phone}, **kwargs)


async def api_login(client: httpx.AsyncClient, runtime: Runtime, phone: str) -> dict[str, Any]:
    """Ask for a code, read it from the memory sender, log in; returns the response body."""
    response = await request_code(client, phone)
    assert response.status_code == 201, response.text
    response = await client.post(
        "/api/v1/auth/login", json={"phone": phone, "code": last_code_sent(runtime, phone)}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def session_cookie(settings: Settings, token: str) -> str:
    return URLSafeSerializer(settings.resolved_secret_key(), salt="linli.session").dumps(token)


async def events_of(db: Database, type_: str) -> list[Event]:
    async with db.sessionmaker() as session:
        return list(
            (await session.scalars(select(Event).where(Event.type == type_).order_by(Event.id))).all()
        )


async def count(db: Database, model: type[Base]) -> int:
    async with db.sessionmaker() as session:
        return (await session.scalar(select(func.count()).select_from(model))) or 0
