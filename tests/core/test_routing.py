"""The route index finds, for every path, the route Starlette's ordered list would have found."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI
from starlette.routing import BaseRoute, Match

from linli.web.routing import RouteIndex


def _first_full_match(routes: list[BaseRoute], scope: dict) -> BaseRoute | None:
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    return None


def _scope(path: str, method: str) -> dict:
    return {"type": "http", "path": path, "method": method, "root_path": "", "headers": []}


def _sample_path(path: str) -> str:
    path = re.sub(r"\{[^}]+:path\}", "a/b.png", path)
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_is_found_as_the_ordered_list_finds_it(app: FastAPI) -> None:
    index, *ordinary = app.router.routes
    assert isinstance(index, RouteIndex)
    assert not any(isinstance(route, RouteIndex) for route in ordinary)
    tried = 0
    for route in ordinary:
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            continue
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            scope = _scope(_sample_path(path) or "/", method)
            expected = _first_full_match(ordinary, scope)
            match, child = index.matches(scope)
            if expected is None:
                assert match is Match.NONE
                continue
            tried += 1
            assert match is Match.FULL
            assert child["linli.route"] is expected, f"{method} {scope['path']}"
    assert tried > 100  # the app's routes, not an empty list


def test_the_index_narrows_the_search_to_routes_that_can_match(app: FastAPI) -> None:
    index = app.router.routes[0]
    assert isinstance(index, RouteIndex)
    candidates = index.candidates("/api/v1/orders")
    assert 0 < len(candidates) < len(index.indexed) / 3
    for route in candidates:
        fixed = route.path.split("{", 1)[0].rstrip("/")  # type: ignore[attr-defined]
        assert "/api/v1/orders".startswith(fixed), route.path  # type: ignore[attr-defined]
    assert any(getattr(route, "path", None) == "/api/v1/orders" for route in candidates)


async def test_what_the_index_does_not_match_goes_on_as_before(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/no-such-thing")
    assert missing.status_code == 404
    assert missing.json() == {"error": "NotFound", "detail": "Not Found"}
    wrong_method = await client.delete("/healthz")
    assert wrong_method.status_code == 405
    healthy = await client.get("/healthz")
    assert healthy.json()["status"] == "ok"
