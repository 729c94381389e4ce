"""The operators' pre-heat pages (desktop): ``/admin/preheat`` lists campaigns and plans one for an
upcoming session (a teaser, a guessing topic, taster tasks, each at its own time); ``/admin/preheat/{id}``
shows its items and its reach per community. The same verbs as ``preheat_api``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Path, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse

from linli.community.feed import posts as feed_posts
from linli.community.feed import preheat as feed_preheat
from linli.core.clock import from_local
from linli.core.deps import SessionDep
from linli.core.errors import LinliError, Unprocessable
from linli.core.templating import register_admin_nav, render
from linli.identity.deps import PageOperator
from linli.live import preheat, service
from linli.live.models import SessionStatus
from linli.live.preheat_api import campaign_read

router = APIRouter(include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=2**62)]

register_admin_nav("/admin/preheat", "live.preheat.nav", 32)


class BadTime(Unprocessable):
    pass


def _local(value: str, field: str) -> datetime:
    try:
        return from_local(datetime.fromisoformat(value))
    except ValueError:
        raise BadTime("enter a date and time", field=field) from None


@router.get("/admin/preheat", response_class=HTMLResponse)
async def campaigns_page(
    request: Request,
    session: SessionDep,
    operator: PageOperator,
    error: Annotated[str, Query(max_length=300)] = "",
) -> HTMLResponse:
    upcoming = await service.list_sessions(session, status=SessionStatus.scheduled, per_page=100)
    campaigns = await feed_preheat.list_campaigns(session)
    communities = await service.community_choices(session)
    tasters = await feed_posts.tasters_of(session, [c for c, _ in communities])
    names = await feed_posts.names_of(session, [t.user_id for t in tasters])
    return render(
        request,
        "live/preheat_list.html",
        {
            "sessions": upcoming.items,
            "campaigns": campaigns,
            "communities": communities,
            "tasters": sorted({(t.user_id, names.get(t.user_id, "")) for t in tasters}),
            "error": error,
        },
    )


@router.post("/admin/preheat")
async def plan_from_page(
    session: SessionDep,
    operator: PageOperator,
    session_id: Annotated[int, Form(ge=1, le=2**62)],
    title: Annotated[str, Form(max_length=120)],
    community_ids: Annotated[list[int], Form()],
    teaser_at: Annotated[str, Form(max_length=40)] = "",
    teaser_text: Annotated[str, Form(max_length=4000)] = "",
    teaser_video: Annotated[str, Form(max_length=500)] = "",
    topic_at: Annotated[str, Form(max_length=40)] = "",
    question: Annotated[str, Form(max_length=400)] = "",
    answer: Annotated[str, Form(max_length=400)] = "",
    reveal_at: Annotated[str, Form(max_length=40)] = "",
    reveal_text: Annotated[str, Form(max_length=500)] = "",
    prize_mode: Annotated[str, Form(pattern="^(all|draw)$")] = "all",
    winner_count: Annotated[int, Form(ge=0, le=100)] = 0,
    prize_name: Annotated[str, Form(max_length=60)] = "",
    coupon_template_id: Annotated[str, Form(max_length=20)] = "",
    taster_at: Annotated[str, Form(max_length=40)] = "",
    taster_brief: Annotated[str, Form(max_length=4000)] = "",
    taster_ids: Annotated[list[int] | None, Form()] = None,
) -> RedirectResponse:
    items: list[feed_preheat.ItemPlan] = []
    try:
        async with session.begin_nested():
            if teaser_at:
                items.append(
                    feed_preheat.ItemPlan(
                        kind="teaser",
                        publish_at=_local(teaser_at, "teaser_at"),
                        text=teaser_text,
                        video_url=teaser_video or None,
                    )
                )
            if topic_at:
                items.append(
                    feed_preheat.ItemPlan(
                        kind="topic",
                        publish_at=_local(topic_at, "topic_at"),
                        question=question,
                        answer=answer,
                        reveal_at=_local(reveal_at, "reveal_at") if reveal_at else None,
                        reveal_text=reveal_text,
                        prize_mode=prize_mode,
                        winner_count=winner_count,
                        prize_name=prize_name,
                        coupon_template_id=int(coupon_template_id) if coupon_template_id.isdigit() else None,
                    )
                )
            if taster_at:
                items.append(
                    feed_preheat.ItemPlan(
                        kind="taster",
                        publish_at=_local(taster_at, "taster_at"),
                        text=taster_brief,
                        taster_ids=taster_ids or [],
                    )
                )
            live_session = await service.get_session(session, session_id)
            campaign = await preheat.plan(
                session, live_session, operator, title=title, community_ids=community_ids, items=items
            )
    except LinliError as exc:
        field = exc.context.get("field")
        message = f"{field}: {exc.message}" if field else exc.message
        return RedirectResponse(f"/admin/preheat?error={quote(message)}", status_code=303)
    return RedirectResponse(f"/admin/preheat/{campaign.id}", status_code=303)


@router.get("/admin/preheat/{campaign_id}", response_class=HTMLResponse)
async def campaign_page(
    request: Request, session: SessionDep, operator: PageOperator, campaign_id: Id
) -> HTMLResponse:
    campaign = await feed_preheat.get_campaign(session, campaign_id)
    return render(
        request, "live/preheat_campaign.html", {"c": await campaign_read(session, campaign, with_reach=True)}
    )


@router.post("/admin/preheat/{campaign_id}/cancel")
async def cancel_from_page(session: SessionDep, operator: PageOperator, campaign_id: Id) -> RedirectResponse:
    await feed_preheat.cancel_campaign(session, operator, campaign_id)
    return RedirectResponse(f"/admin/preheat/{campaign_id}", status_code=303)
