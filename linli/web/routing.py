"""Finding a request's route without trying all ~290 of them.

Starlette tries the app's routes in order until one matches: each try is a regular expression and,
with FastAPI, some scope bookkeeping — about 4 µs. ``POST /api/v1/orders`` sat some 200 routes down,
so every order paid ~0.8 ms before any of its own work. ``RouteIndex`` goes first in the route list and
narrows the search by the path's leading segments: only routes whose fixed prefix (the segments before
their first ``{parameter}``) is a prefix of the request's path can match it, so only those are tried,
in their original order — the same route wins as before. Nothing else changes: a request the index
finds no full match for goes on through the ordinary list (a 405, a redirect to a slash, a 404), and
the routes stay where they were for the OpenAPI document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

_ROUTE_KEY = "linli.route"


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    routes: list[int] = field(default_factory=list)


def _fixed_segments(path: str) -> list[str]:
    """The segments of a route's path before its first parameter."""
    fixed = []
    for segment in path.strip("/").split("/"):
        if not segment or "{" in segment:
            break
        fixed.append(segment)
    return fixed


class RouteIndex(BaseRoute):
    """Tries only the routes that can match the request's path (see the module's docstring)."""

    def __init__(self, routes: list[BaseRoute]) -> None:
        self.indexed = list(routes)
        self.root = _Node()
        for position, route in enumerate(self.indexed):
            path = getattr(route, "path", None)
            node = self.root
            for segment in _fixed_segments(path) if isinstance(path, str) else []:
                node = node.children.setdefault(segment, _Node())
            node.routes.append(position)

    def candidates(self, path: str) -> list[BaseRoute]:
        """The routes that may match ``path``, in their original order."""
        node = self.root
        found = list(node.routes)
        for segment in path.strip("/").split("/"):
            node_or_none = node.children.get(segment)
            if node_or_none is None:
                break
            node = node_or_none
            found.extend(node.routes)
        found.sort()
        return [self.indexed[position] for position in found]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in ("http", "websocket"):
            return Match.NONE, {}
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        for route in self.candidates(path):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return Match.FULL, {**child_scope, _ROUTE_KEY: route}
        # No full match: the ordinary list decides (it finds the same partial match, or none).
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: Any = scope.pop(_ROUTE_KEY)
        await route.handle(scope, receive, send)


def index_routes(routes: list[BaseRoute]) -> None:
    """Put a ``RouteIndex`` of ``routes`` in front of them (in place; once all routes are added)."""
    routes[:] = [RouteIndex([r for r in routes if not isinstance(r, RouteIndex)]), *routes]
