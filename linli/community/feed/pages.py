"""The feed's pages: a community's feed ``/c/{community}`` (mobile; ``/c`` is mine), the neighbour's
reviews ``/reviews``, and the operators' review approvals and WeCom robots with their delivery log. Thin
handlers over the same verbs as the JSON API; ``static/js/community/feed.js`` does likes, comments,
guesses and reservations through the API."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import HTMLResponse, RedirectResponse

from linli.community.feed import posts, preheat, reviews, wecom
from linli.community.feed.schemas import posts_read
from linli.community.feed.uploads import store_upload
from linli.community.models import Community
from linli.community.service import list_communities, membership_of
from linli.core.clock import utcnow
from linli.core.deps import RuntimeDep, SessionDep
from linli.core.errors import LinliError, NotFound
from linli.core.templating import register_admin_nav, render
from linli.identity.deps import PageOperator, PageUser
from linli.identity.models import Role, User

router = APIRouter(include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=2**62)]

register_admin_nav("/admin/feed", "community.feed.nav_feed", 55)
register_admin_nav("/admin/reviews", "community.feed.nav_reviews", 56)
register_admin_nav("/admin/wecom", "community.feed.nav_wecom", 57)


@router.get("/c")
async def my_feed(session: SessionDep, user: PageUser) -> RedirectResponse:
    """My community's feed; without one, choose a community first."""
    membership = await membership_of(session, user.id)
    if membership is not None:
        return RedirectResponse(f"/c/{membership.community_id}", status_code=303)
    for taster in await posts.tasters_of_user(session, user.id):
        return RedirectResponse(f"/c/{taster.community_id}", status_code=303)
    led = await posts.led_community(session, user.id)
    if led is not None:
        return RedirectResponse(f"/c/{led}", status_code=303)
    if user.has_role(Role.operator):
        return RedirectResponse("/admin/feed", status_code=303)
    return RedirectResponse("/me", status_code=303)


@router.get("/c/{community_id}", response_class=HTMLResponse)
async def feed_page(
    request: Request,
    session: SessionDep,
    user: PageUser,
    community_id: Id,
    person: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    before: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> HTMLResponse:
    standing = await posts.require_reader(session, user, community_id)
    community = await posts.open_community(session, community_id)
    rows = await posts.list_posts(
        session, community_id, before_id=before, limit=posts.PAGE_SIZE + 1, person_id=person
    )
    unpinned = [p for p in rows if p.pinned_at is None]
    older = None
    if len(unpinned) > posts.PAGE_SIZE:
        rows.remove(unpinned[-1])
        older = unpinned[-2].id
    await posts.record_views(session, user, rows)
    person_name = (await posts.names_of(session, [person])).get(person) if person else None
    return render(
        request,
        "community/feed/feed.html",
        {
            "community": community,
            "standing": standing,
            "posts": await posts_read(session, user, rows),
            "tasks": await preheat.open_tasks(session, user.id, community_id) if standing.taster else [],
            "testimonials": await reviews.approved_for(session, community_id=community_id, limit=5)
            if before is None and person is None
            else [],
            "person": person,
            "person_name": person_name,
            "older": older,
            "now": utcnow(),
            "active_tab": "feed",
        },
    )


@router.post("/c/{community_id}/posts")
async def post_from_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: PageUser,
    community_id: Id,
    text: Annotated[str, Form(max_length=4000)],
    video_url: Annotated[str, Form(max_length=500)] = "",
    image: Annotated[UploadFile | None, File()] = None,
) -> RedirectResponse:
    image_path = await store_upload(image, runtime.settings, folder="feed")
    await posts.create_post(
        session, runtime, user, community_id, text=text, video_url=video_url or None, image_path=image_path
    )
    return RedirectResponse(f"/c/{community_id}", status_code=303)


# --- reviews -------------------------------------------------------------------------------------


@router.get("/reviews", response_class=HTMLResponse)
async def reviews_page(request: Request, session: SessionDep, user: PageUser) -> HTMLResponse:
    return render(
        request,
        "community/feed/reviews.html",
        {
            "items": await reviews.to_review(session, user.id),
            "done": request.query_params.get("done") == "1",
            "active_tab": "me",
        },
    )


@router.post("/reviews")
async def review_from_page(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: PageUser,
    order_id: Annotated[int, Form(ge=1, le=2**62)],
    product_id: Annotated[int, Form(ge=1, le=2**62)],
    rating: Annotated[int, Form(ge=1, le=5)],
    text: Annotated[str, Form(max_length=2000)],
    photo: Annotated[UploadFile | None, File()] = None,
) -> RedirectResponse:
    photo_path = await store_upload(photo, runtime.settings, folder="reviews")
    await reviews.submit_review(
        session,
        runtime,
        user,
        order_id=order_id,
        product_id=product_id,
        rating=rating,
        text=text,
        photo_path=photo_path,
    )
    return RedirectResponse("/reviews?done=1", status_code=303)


@router.get("/admin/reviews", response_class=HTMLResponse)
async def admin_reviews(
    request: Request,
    session: SessionDep,
    operator: PageOperator,
    status: Annotated[str, Query(pattern="^(pending|approved|rejected)$")] = "pending",
) -> HTMLResponse:
    rows = await reviews.list_reviews(session, status=status)
    names = await posts.names_of(session, [r.user_id for r in rows])
    return render(
        request,
        "community/feed/admin_reviews.html",
        {"reviews": rows, "names": names, "status": status},
    )


@router.post("/admin/reviews/{review_id}/{decision}")
async def decide_review(
    session: SessionDep,
    operator: PageOperator,
    review_id: Id,
    decision: Annotated[str, Path(pattern="^(approve|reject)$")],
) -> RedirectResponse:
    await reviews.decide(session, operator, review_id, decision == "approve")
    return RedirectResponse("/admin/reviews", status_code=303)


# --- WeCom robots --------------------------------------------------------------------------------


@router.get("/admin/wecom", response_class=HTMLResponse)
async def admin_wecom(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    operator: PageOperator,
    error: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    communities, _ = await list_communities(session, q="", include_archived=False, offset=0, limit=100)
    robots = {c.id: await wecom.robot_of(session, c.id) for c in communities}
    rows = await wecom.deliveries(session, limit=100)
    log = await wecom.attempts_of(session, [d.id for d, _ in rows])
    names = {c.id: c.name for c in communities}
    return render(
        request,
        "community/feed/admin_wecom.html",
        {
            "communities": communities,
            "robots": robots,
            "masked": wecom.masked,
            "deliveries": rows,
            "log": log,
            "names": names,
            "error": error,
            "base": runtime.settings.wecom_webhook_base,
        },
    )


@router.post("/admin/wecom/{community_id}")
async def save_robot(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    operator: PageOperator,
    community_id: Id,
    webhook_url: Annotated[str, Form(max_length=500)] = "",
    enabled: Annotated[str, Form(max_length=8)] = "",
) -> RedirectResponse:
    if await session.get(Community, community_id) is None:
        return RedirectResponse("/admin/wecom", status_code=303)
    try:
        async with session.begin_nested():
            await wecom.set_robot(
                session,
                operator,
                community_id,
                webhook_url=webhook_url or None,
                enabled=enabled == "on",
                settings=runtime.settings,
            )
    except LinliError as exc:
        return RedirectResponse(f"/admin/wecom?error={quote(exc.message)}", status_code=303)
    return RedirectResponse("/admin/wecom", status_code=303)


# --- operators: the feeds, their tasters and mutes -----------------------------------------------


async def _user_by_phone(session: AsyncSession, phone: str) -> User:
    user = await session.scalar(select(User).where(User.phone == phone.strip()))
    if user is None:
        raise NotFound("no neighbour with this phone number", field="phone")
    return user


@router.get("/admin/feed", response_class=HTMLResponse)
async def admin_feed(
    request: Request,
    session: SessionDep,
    operator: PageOperator,
    error: Annotated[str, Query(max_length=200)] = "",
    done: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    communities, _ = await list_communities(session, q="", include_archived=False, offset=0, limit=100)
    tasters = await posts.tasters_of(session, [c.id for c in communities])
    names = await posts.names_of(session, [t.user_id for t in tasters])
    by_community: dict[int, list[str]] = {}
    for t in tasters:
        by_community.setdefault(t.community_id, []).append(names.get(t.user_id, ""))
    return render(
        request,
        "community/feed/admin_feed.html",
        {"communities": communities, "tasters": by_community, "error": error, "done": done},
    )


@router.post("/admin/feed/tasters")
async def invite_from_page(
    session: SessionDep,
    operator: PageOperator,
    community_id: Annotated[int, Form(ge=1, le=2**62)],
    phone: Annotated[str, Form(max_length=20)],
) -> RedirectResponse:
    try:
        async with session.begin_nested():
            user = await _user_by_phone(session, phone)
            await posts.invite_taster(session, operator, community_id, user.id)
    except LinliError as exc:
        return RedirectResponse(f"/admin/feed?error={quote(exc.message)}", status_code=303)
    return RedirectResponse(f"/admin/feed?done={quote(user.display_name)}", status_code=303)


@router.post("/admin/feed/mutes")
async def mute_from_page(
    session: SessionDep,
    operator: PageOperator,
    phone: Annotated[str, Form(max_length=20)],
    minutes: Annotated[int, Form(ge=1, le=posts.MAX_MUTE_MINUTES)],
) -> RedirectResponse:
    try:
        async with session.begin_nested():
            user = await _user_by_phone(session, phone)
            await posts.mute_user(session, operator, user.id, minutes=minutes)
    except LinliError as exc:
        return RedirectResponse(f"/admin/feed?error={quote(exc.message)}", status_code=303)
    return RedirectResponse(f"/admin/feed?done={quote(user.display_name)}", status_code=303)
