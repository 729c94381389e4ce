"""Stores, residential communities, pickup points, memberships, and each neighbour's inbox."""

from __future__ import annotations


def _include_inbox_routes() -> None:
    """The inbox's JSON routes and page join the domain's routers, which the app includes."""
    from linli.community import api, inbox_api, inbox_pages, pages

    # Appended as plain routes (not an included router) so the domain router lists only APIRoutes.
    api.router.routes.extend(inbox_api.router.routes)
    pages.router.routes.extend(inbox_pages.router.routes)


_include_inbox_routes()
