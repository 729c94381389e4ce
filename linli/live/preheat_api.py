"""Pre-heat campaigns as JSON (operators): plan one for an upcoming session, list, read with its reach,
cancel. The neighbours' side (posts, guesses) is the community feed's API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community.feed import preheat as feed_preheat
from linli.community.feed.models import FeedCampaign, FeedTopic
from linli.core.deps import SessionDep
from linli.identity.deps import OperatorUser
from linli.live import preheat, service

router = APIRouter(tags=["live: pre-heat (operators)"])
Id = Annotated[int, Path(ge=1, le=2**62)]


class ItemCreate(BaseModel):
    kind: str = Field(pattern="^(teaser|topic|taster)$")
    publish_at: datetime
    text: str = Field(default="", max_length=4000)
    video_url: str | None = Field(default=None, max_length=500)
    question: str = Field(default="", max_length=400)
    answer: str = Field(
        default="", max_length=400, description="secret until reveal_at; '|' separates alternatives"
    )
    reveal_at: datetime | None = None
    reveal_text: str = Field(default="", max_length=500)
    prize_mode: str = Field(default="all", pattern="^(all|draw)$")
    winner_count: int = Field(default=0, ge=0, le=feed_preheat.MAX_WINNERS)
    prize_name: str = Field(default="", max_length=60)
    coupon_template_id: int | None = Field(default=None, ge=1, le=2**62)
    taster_ids: list[int] = Field(default_factory=list, max_length=200)


class CampaignCreate(BaseModel):
    title: str = Field(max_length=120)
    community_ids: list[int] = Field(default_factory=list, max_length=500)
    items: list[ItemCreate] = Field(min_length=1, max_length=feed_preheat.MAX_ITEMS)


class TopicSummary(BaseModel):
    """What the console shows of a topic: never its answer (it is kept for the reveal)."""

    id: int
    question: str
    reveal_at: datetime
    revealed_at: datetime | None
    prize_mode: str
    winner_count: int
    prize_name: str
    guess_count: int
    correct_count: int | None
    seed_hash: str


class ItemRead(BaseModel):
    id: int
    kind: str
    publish_at: datetime
    published_at: datetime | None
    text: str
    video_url: str | None
    taster_ids: list[int]
    topic: TopicSummary | None


class ReachRead(BaseModel):
    community_id: int
    community_name: str
    posts: int
    views: int
    viewers: int
    guesses: int
    reservations: int
    active: int
    active_reached: int
    reached_share: float


class CampaignRead(BaseModel):
    id: int
    session_id: int
    session_title: str
    session_start: datetime
    title: str
    community_ids: list[int]
    created_at: datetime
    cancelled_at: datetime | None
    items: list[ItemRead]
    reach: list[ReachRead] | None = None


def plans_of(items: list[ItemCreate]) -> list[feed_preheat.ItemPlan]:
    return [feed_preheat.ItemPlan(**item.model_dump()) for item in items]


async def campaign_read(session: AsyncSession, campaign: FeedCampaign, *, with_reach: bool) -> CampaignRead:
    items = []
    for item in await feed_preheat.items_of(session, campaign.id):
        topic = await session.get(FeedTopic, item.topic_id) if item.topic_id else None
        summary = None
        if topic is not None:
            summary = TopicSummary(
                id=topic.id,
                question=topic.question,
                reveal_at=topic.reveal_at,
                revealed_at=topic.revealed_at,
                prize_mode=topic.prize_mode,
                winner_count=topic.winner_count,
                prize_name=topic.prize_name,
                guess_count=await feed_preheat.guess_count(session, topic.id),
                correct_count=topic.correct_count if topic.revealed_at else None,
                seed_hash=topic.seed_hash,
            )
        items.append(
            ItemRead(
                id=item.id,
                kind=item.kind,
                publish_at=item.publish_at,
                published_at=item.published_at,
                text=item.text,
                video_url=item.video_url,
                taster_ids=item.taster_ids,
                topic=summary,
            )
        )
    reach: list[dict[str, Any]] | None = await preheat.reach(session, campaign) if with_reach else None
    return CampaignRead(
        id=campaign.id,
        session_id=campaign.session_id,
        session_title=campaign.session_title,
        session_start=campaign.session_start,
        title=campaign.title,
        community_ids=campaign.community_ids,
        created_at=campaign.created_at,
        cancelled_at=campaign.cancelled_at,
        items=items,
        reach=[ReachRead(**r) for r in reach] if reach is not None else None,
    )


@router.post("/api/v1/admin/sessions/{session_id}/preheat", status_code=201)
async def plan_campaign(
    session: SessionDep, operator: OperatorUser, session_id: Id, body: CampaignCreate
) -> CampaignRead:
    """Plan a pre-heat campaign for an upcoming session: teasers, a guessing topic (answer secret until
    its reveal, prize to all correct or N drawn fairly), taster tasks — each published at its time by a
    durable timer in every chosen community (default: the session's communities)."""
    live_session = await service.get_session(session, session_id)
    campaign = await preheat.plan(
        session,
        live_session,
        operator,
        title=body.title,
        community_ids=body.community_ids,
        items=plans_of(body.items),
    )
    return await campaign_read(session, campaign, with_reach=False)


@router.get("/api/v1/admin/preheat")
async def list_campaigns(session: SessionDep, operator: OperatorUser) -> list[CampaignRead]:
    return [
        await campaign_read(session, c, with_reach=False) for c in await feed_preheat.list_campaigns(session)
    ]


@router.get("/api/v1/admin/preheat/{campaign_id}")
async def read_campaign(session: SessionDep, operator: OperatorUser, campaign_id: Id) -> CampaignRead:
    """A campaign with its reach per community: views, distinct viewers, guesses, reservations, and the
    share of the community's active neighbours (acted in the last 30 days) who saw it."""
    campaign = await feed_preheat.get_campaign(session, campaign_id)
    return await campaign_read(session, campaign, with_reach=True)


@router.post("/api/v1/admin/preheat/{campaign_id}/cancel")
async def cancel_campaign(session: SessionDep, operator: OperatorUser, campaign_id: Id) -> CampaignRead:
    """Cancel what has not been published yet."""
    campaign = await feed_preheat.cancel_campaign(session, operator, campaign_id)
    return await campaign_read(session, campaign, with_reach=False)
