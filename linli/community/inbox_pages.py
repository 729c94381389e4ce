"""The neighbour's inbox page ``/inbox`` (mobile): newest first, unread ones marked; opening one marks it
read and follows its link. The same service verbs as the JSON API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse

from linli.community import inbox
from linli.core.deps import SessionDep
from linli.core.templating import locale_of, render
from linli.identity.deps import PageUser

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
ItemId = Annotated[int, Path(ge=1, le=2**62)]


def _local_link(link: str | None) -> str:
    # Only our own pages: a stored link must never become an open redirect.
    if link and link.startswith("/") and not link.startswith("//") and "\\" not in link:
        return link
    return "/inbox"


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_page(
    request: Request,
    session: SessionDep,
    user: PageUser,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> HTMLResponse:
    items = await inbox.list_items(session, user_id=user.id, before_id=before, limit=PAGE_SIZE + 1)
    more = len(items) > PAGE_SIZE
    items = items[:PAGE_SIZE]
    locale = locale_of(request)
    return render(
        request,
        "community/inbox.html",
        {
            "items": [inbox.shown(item, locale) for item in items],
            "unread": await inbox.unread_count(session, user_id=user.id),
            "older": items[-1].id if more else None,
            "paged": before is not None,
            "active_tab": "inbox",
        },
    )


@router.post("/inbox/{item_id}/open")
async def open_item(session: SessionDep, user: PageUser, item_id: ItemId) -> RedirectResponse:
    item = await inbox.mark_read(session, user_id=user.id, item_id=item_id)
    return RedirectResponse(_local_link(item.link), status_code=303)


@router.post("/inbox/read-all")
async def read_all(session: SessionDep, user: PageUser) -> RedirectResponse:
    await inbox.mark_all_read(session, user_id=user.id)
    return RedirectResponse("/inbox", status_code=303)
