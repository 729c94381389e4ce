from __future__ import annotations

import httpx


async def test_healthz_reports_the_database_it_reached(client: httpx.AsyncClient, database_url: str) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == ("sqlite" if database_url.startswith("sqlite") else "postgresql")
    assert response.headers["x-request-id"]


async def test_unknown_api_route_is_json_error(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json() == {"error": "NotFound", "detail": "Not Found"}
