"""Pre-heat campaigns (预热) for a live session, and their guessing topics and taster tasks.

An operator plans a campaign 1–3 days ahead (through the live domain, which knows the session and passes
its id, title and start down: the feed never reads live's tables). Each item is published by a durable
timer (``core.jobs``) at its time in every community of the campaign, so a restart in between changes
nothing: the job is in the database and fires when due.

Guessing topics (猜猜看): the answer is stored and never leaves the server before the reveal — no schema,
page or event carries it until ``revealed_at`` is set by the reveal timer. Guesses are matched by
normalised text against the answer's ``|``-separated alternatives. The prize goes to every correct
guesser, or to N drawn with the lottery's verifiable method (``core.draw``): the seed's hash is public from
the topic's publication, the seed with the reveal. Each winner's ``feed.guess_won`` event carries the
coupon template for the orders domain to issue.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community import inbox
from linli.community.feed import posts
from linli.community.feed.models import (
    FeedCampaign,
    FeedCampaignItem,
    FeedGuess,
    FeedPost,
    FeedTaster,
    FeedTopic,
    FeedView,
    TasterTask,
)
from linli.community.models import Community, Membership
from linli.core import draw
from linli.core.clock import as_utc, to_local, utcnow
from linli.core.errors import Conflict, Forbidden, NotFound, Unprocessable
from linli.core.events import Event, Subjects, record_event
from linli.core.i18n import Message
from linli.core.jobs import Job, cancel_job, schedule_job
from linli.core.wordfilter import normalise
from linli.identity.models import Role, User

log = logging.getLogger(__name__)

PUBLISH_JOB = "community.preheat_publish"
REVEAL_JOB = "community.topic_reveal"
CAMPAIGN_PLANNED = "feed.campaign_planned"
CAMPAIGN_CANCELLED = "feed.campaign_cancelled"
GUESS_SUBMITTED = "feed.guess_submitted"
TOPIC_REVEALED = "feed.topic_revealed"
GUESS_WON = "feed.guess_won"  # subjects user_id, community_id; {user_id, coupon_template_id, topic_id}
TASK_DONE = "feed.taster_task_done"

MAX_ITEMS = 20
MAX_GUESS_CHARS = 50
MAX_WINNERS = 100


class CampaignNotFound(NotFound):
    pass


class TopicNotFound(NotFound):
    pass


class TaskNotFound(NotFound):
    pass


class InvalidCampaign(Unprocessable):
    pass


class GuessClosed(Conflict):
    """The reveal time has come: no more guesses."""


class TaskDone(Conflict):
    pass


@dataclass
class ItemPlan:
    kind: str  # teaser | topic | taster
    publish_at: datetime
    text: str = ""
    video_url: str | None = None
    # topic
    question: str = ""
    answer: str = ""
    reveal_at: datetime | None = None
    reveal_text: str = ""
    prize_mode: str = "all"
    winner_count: int = 0
    prize_name: str = ""
    coupon_template_id: int | None = None
    # taster
    taster_ids: list[int] = field(default_factory=list)


def _after(value: datetime, now: datetime) -> bool:
    return as_utc(value) > now


async def plan_campaign(
    session: AsyncSession,
    *,
    actor: User,
    session_id: int,
    session_title: str,
    session_start: datetime,
    title: str,
    community_ids: Sequence[int],
    items: Sequence[ItemPlan],
    now: datetime | None = None,
) -> FeedCampaign:
    """Store a campaign and schedule each item's publication (and each topic's reveal) as durable jobs.
    Every time must lie ahead, and publications no later than the session's start."""
    if not actor.has_role(Role.operator):
        raise Forbidden("only operators plan pre-heat campaigns")
    now = now or utcnow()
    session_start = as_utc(session_start)
    title = posts.clean_text(title, limit=60, field="title", multiline=False)
    wanted = list(dict.fromkeys(int(c) for c in community_ids))
    if not wanted:
        raise InvalidCampaign("choose at least one community", field="community_ids")
    open_ids = set(
        (
            await session.scalars(
                select(Community.id).where(Community.id.in_(wanted), Community.archived_at.is_(None))
            )
        ).all()
    )
    if len(open_ids) != len(wanted):
        raise InvalidCampaign("unknown or archived community", field="community_ids")
    if not 1 <= len(items) <= MAX_ITEMS:
        raise InvalidCampaign(f"a campaign has 1 to {MAX_ITEMS} items", field="items")
    taster_rows = await posts.tasters_of(session, wanted)
    tasters = {t.user_id for t in taster_rows}
    campaign = FeedCampaign(
        session_id=session_id,
        session_title=session_title[:60],
        session_start=session_start,
        title=title,
        community_ids=wanted,
        created_by_id=actor.id,
        created_at=now,
    )
    session.add(campaign)
    await session.flush()
    for index, plan in enumerate(items):
        where = f"items[{index}]"
        if plan.kind not in ("teaser", "topic", "taster"):
            raise InvalidCampaign("an item is a teaser, a topic or a taster task", field=f"{where}.kind")
        publish_at = as_utc(plan.publish_at)
        if not _after(publish_at, now) or publish_at > session_start:
            raise InvalidCampaign(
                "an item is published between now and the session's start", field=f"{where}.publish_at"
            )
        item = FeedCampaignItem(
            campaign_id=campaign.id,
            kind=plan.kind,
            publish_at=publish_at,
            text=posts.clean_text(plan.text, limit=posts.MAX_POST_CHARS, field=f"{where}.text")
            if plan.text or plan.kind != "topic"
            else "",
            video_url=posts.clean_video_url(plan.video_url),
            taster_ids=[],
        )
        if plan.kind == "topic":
            item.topic_id = (await _new_topic(session, campaign, plan, publish_at, where)).id
        if plan.kind == "taster":
            ids = list(dict.fromkeys(int(u) for u in plan.taster_ids))
            if not ids or any(u not in tasters for u in ids):
                raise InvalidCampaign(
                    "taster tasks go to invited tasters of these communities", field=f"{where}.taster_ids"
                )
            item.taster_ids = ids
        session.add(item)
        await session.flush()
        await schedule_job(
            session, PUBLISH_JOB, publish_at, {"item_id": item.id}, key=f"{PUBLISH_JOB}:{item.id}"
        )
    record_event(
        session,
        CAMPAIGN_PLANNED,
        actor_id=actor.id,
        subjects=Subjects(session_id=session_id),
        payload={"campaign_id": campaign.id, "community_ids": wanted, "items": len(items)},
    )
    await session.flush()
    return campaign


async def _new_topic(
    session: AsyncSession, campaign: FeedCampaign, plan: ItemPlan, publish_at: datetime, where: str
) -> FeedTopic:
    question = posts.clean_text(plan.question, limit=200, field=f"{where}.question", multiline=False)
    answer = posts.clean_text(plan.answer, limit=200, field=f"{where}.answer", multiline=False)
    if not any(normalise(a) for a in answer.split("|")):
        raise InvalidCampaign("the answer needs letters or digits", field=f"{where}.answer")
    if plan.reveal_at is None or as_utc(plan.reveal_at) <= publish_at:
        raise InvalidCampaign("the reveal comes after the topic is published", field=f"{where}.reveal_at")
    reveal_at = as_utc(plan.reveal_at)
    if reveal_at > campaign.session_start + timedelta(days=1):
        raise InvalidCampaign("reveal within a day of the session's start", field=f"{where}.reveal_at")
    if plan.prize_mode not in ("all", "draw"):
        raise InvalidCampaign(
            "the prize goes to all correct guessers or to N drawn", field=f"{where}.prize_mode"
        )
    if plan.prize_mode == "draw" and not 1 <= plan.winner_count <= MAX_WINNERS:
        raise InvalidCampaign(f"draw 1 to {MAX_WINNERS} winners", field=f"{where}.winner_count")
    if plan.coupon_template_id is not None and plan.coupon_template_id < 1:
        raise InvalidCampaign("no such coupon template", field=f"{where}.coupon_template_id")
    seed = draw.new_seed()
    topic = FeedTopic(
        campaign_id=campaign.id,
        session_id=campaign.session_id,
        question=question,
        answer=answer,
        reveal_text=(plan.reveal_text or "")[:500],
        reveal_at=reveal_at,
        prize_mode=plan.prize_mode,
        winner_count=plan.winner_count if plan.prize_mode == "draw" else 0,
        prize_name=(plan.prize_name or "")[:60],
        coupon_template_id=plan.coupon_template_id,
        seed=seed,
        seed_hash=draw.commitment(seed),
        guess_count=0,
        correct_count=0,
        winner_ids=[],
    )
    session.add(topic)
    await session.flush()
    await schedule_job(session, REVEAL_JOB, reveal_at, {"topic_id": topic.id}, key=f"{REVEAL_JOB}:{topic.id}")
    return topic


async def cancel_campaign(session: AsyncSession, actor: User, campaign_id: int) -> FeedCampaign:
    """Stop what has not been published yet (its timers are cancelled; published posts stay)."""
    if not actor.has_role(Role.operator):
        raise Forbidden("only operators cancel campaigns")
    campaign = await get_campaign(session, campaign_id)
    if campaign.cancelled_at is None:
        campaign.cancelled_at = utcnow()
        for item in await items_of(session, campaign.id):
            await cancel_job(session, f"{PUBLISH_JOB}:{item.id}")
            if item.topic_id is not None:
                await cancel_job(session, f"{REVEAL_JOB}:{item.topic_id}")
        record_event(
            session,
            CAMPAIGN_CANCELLED,
            actor_id=actor.id,
            subjects=Subjects(session_id=campaign.session_id),
            payload={"campaign_id": campaign.id},
        )
        await session.flush()
    return campaign


async def get_campaign(session: AsyncSession, campaign_id: int) -> FeedCampaign:
    campaign = await session.get(FeedCampaign, campaign_id)
    if campaign is None:
        raise CampaignNotFound(f"no campaign {campaign_id}")
    return campaign


async def list_campaigns(session: AsyncSession, *, session_id: int | None = None) -> list[FeedCampaign]:
    query = select(FeedCampaign).order_by(FeedCampaign.id.desc()).limit(200)
    if session_id is not None:
        query = query.where(FeedCampaign.session_id == session_id)
    return list((await session.scalars(query)).all())


async def items_of(session: AsyncSession, campaign_id: int) -> list[FeedCampaignItem]:
    return list(
        (
            await session.scalars(
                select(FeedCampaignItem)
                .where(FeedCampaignItem.campaign_id == campaign_id)
                .order_by(FeedCampaignItem.publish_at, FeedCampaignItem.id)
            )
        ).all()
    )


async def campaigns_for_session(session: AsyncSession, session_id: int) -> list[FeedCampaign]:
    return list(
        (
            await session.scalars(
                select(FeedCampaign).where(
                    FeedCampaign.session_id == session_id, FeedCampaign.cancelled_at.is_(None)
                )
            )
        ).all()
    )


# --- the timers ----------------------------------------------------------------------------------


def _when(start: datetime) -> str:
    return to_local(start).strftime("%m月%d日 %H:%M")


async def publish_item(session: AsyncSession, item_id: int) -> int:
    """Publish one campaign item in each of its communities (idempotent: posts are keyed by item and
    community); returns how many posts were new."""
    item = await session.get(FeedCampaignItem, item_id)
    if item is None:
        return 0
    campaign = await session.get(FeedCampaign, item.campaign_id)
    if campaign is None or campaign.cancelled_at is not None:
        return 0
    topic = await session.get(FeedTopic, item.topic_id) if item.topic_id else None
    new = 0
    for community_id in campaign.community_ids:
        if item.kind == "taster":
            new += await _assign_tasks(session, campaign, item, community_id)
            continue
        key = f"preheat:{item.id}:{community_id}"
        before = await session.scalar(select(FeedPost.id).where(FeedPost.dedupe_key == key))
        text = item.text
        if topic is not None:
            text = f"【竞猜】{topic.question}" + (f"\n{item.text}" if item.text else "")
            text += f"\n{_when(topic.reveal_at)} 揭晓答案"
        await posts.publish_post(
            session,
            community_id=community_id,
            text=text,
            kind="topic" if topic is not None else "teaser",
            label="preheat",
            video_url=item.video_url,
            image_path=item.image_path,
            session_id=campaign.session_id,
            session_title=campaign.session_title,
            session_start=campaign.session_start,
            campaign_id=campaign.id,
            topic_id=topic.id if topic is not None else None,
            dedupe_key=key,
            bridge=True,
        )
        new += before is None
    if item.published_at is None:
        item.published_at = utcnow()
        await session.flush()
    return new


async def _assign_tasks(
    session: AsyncSession, campaign: FeedCampaign, item: FeedCampaignItem, community_id: int
) -> int:
    rows = (
        await session.scalars(
            select(FeedTaster).where(
                FeedTaster.community_id == community_id, FeedTaster.user_id.in_(item.taster_ids)
            )
        )
    ).all()
    new = 0
    for taster in rows:
        existing = await session.scalar(
            select(TasterTask).where(TasterTask.item_id == item.id, TasterTask.user_id == taster.user_id)
        )
        if existing is not None:
            continue
        task = TasterTask(
            item_id=item.id,
            user_id=taster.user_id,
            community_id=community_id,
            brief=item.text,
            created_at=utcnow(),
        )
        try:
            async with session.begin_nested():
                session.add(task)
        except IntegrityError:
            continue
        await inbox.notify(
            session,
            user_id=taster.user_id,
            kind="feed_taster_task",
            message=Message(
                "community.inbox.taster_task" if item.text else "community.inbox.taster_task_default",
                {"session": campaign.session_title, "brief": item.text},
            ),
            link=f"/c/{community_id}#tasks",
            dedupe_key=f"feed.task:{item.id}",
        )
        new += 1
    return new


async def publish_item_job(session: AsyncSession, job: Job) -> None:
    item_id = job.payload.get("item_id")
    if isinstance(item_id, int):
        await publish_item(session, item_id)


def fold_guess(text: str) -> str:
    return normalise(text)


def is_correct(topic: FeedTopic, guess_text: str) -> bool:
    folded = fold_guess(guess_text)
    return bool(folded) and any(
        folded == fold_guess(alt) for alt in topic.answer.split("|") if fold_guess(alt)
    )


async def reveal_topic(
    session: AsyncSession, topic_id: int, *, now: datetime | None = None
) -> FeedTopic | None:
    """Reveal a topic once its time has come: mark correct guesses, pick the winners (all correct, or N
    drawn from the correct guessers' sorted ids with the committed seed), publish the reveal post in each
    community with the winners @mentioned, and tell each winner (inbox + ``feed.guess_won``). Once only."""
    now = now or utcnow()
    topic = await session.get(FeedTopic, topic_id)
    if topic is None or topic.revealed_at is not None or as_utc(topic.reveal_at) > now:
        return topic
    campaign = await session.get(FeedCampaign, topic.campaign_id) if topic.campaign_id else None
    if campaign is not None and campaign.cancelled_at is not None:
        return topic
    guesses = list((await session.scalars(select(FeedGuess).where(FeedGuess.topic_id == topic.id))).all())
    correct = [g for g in guesses if is_correct(topic, g.text)]
    for g in guesses:
        g.correct = g in correct
    if topic.prize_mode == "draw":
        winners = draw.draw(topic.seed, [g.user_id for g in correct], topic.winner_count)
    else:
        winners = [g.user_id for g in sorted(correct, key=lambda g: (g.created_at, g.id))]
    rank = {u: i + 1 for i, u in enumerate(winners)}
    by_user = {g.user_id: g for g in guesses}
    for user_id, r in rank.items():
        by_user[user_id].won_rank = r
    topic.revealed_at = now
    topic.guess_count = len(guesses)
    topic.correct_count = len(correct)
    topic.winner_ids = winners
    await session.flush()
    names = await posts.names_of(session, winners)
    answer = topic.answer.split("|")[0]
    record_event(
        session,
        TOPIC_REVEALED,
        subjects=Subjects(session_id=topic.session_id),
        payload={
            "topic_id": topic.id,
            "answer": answer,
            "correct_count": len(correct),
            "winner_user_ids": winners,
            "seed": topic.seed,
            "seed_hash": topic.seed_hash,
            "entries": sorted(g.user_id for g in correct),
            "prize_mode": topic.prize_mode,
            "winner_count": topic.winner_count,
        },
    )
    communities = (
        campaign.community_ids if campaign is not None else sorted({g.community_id for g in guesses})
    )
    for community_id in communities:
        here = [u for u in winners if by_user[u].community_id == community_id]
        text = f"【揭晓】答案是:{answer}!"
        if topic.reveal_text:
            text += f"\n{topic.reveal_text}"
        text += f"\n共 {len(guesses)} 位邻居参与,{len(correct)} 位猜中。"
        if here:
            text += "\n恭喜" + " ".join(f"@{names.get(u, '')}" for u in here)
            if topic.prize_name:
                text += f" 获得{topic.prize_name}"
            text += "!"
        await posts.publish_post(
            session,
            community_id=community_id,
            text=text,
            kind="reveal",
            label="preheat",
            session_id=topic.session_id,
            session_title=campaign.session_title if campaign else "",
            session_start=campaign.session_start if campaign else None,
            campaign_id=topic.campaign_id,
            topic_id=topic.id,
            mention_ids=here,
            dedupe_key=f"reveal:{topic.id}:{community_id}",
            bridge=True,
        )
    for user_id in winners:
        guess = by_user[user_id]
        await inbox.notify(
            session,
            user_id=user_id,
            kind="guess_won",
            message=Message(
                "community.inbox.guess_won",
                {
                    "prize": topic.prize_name or Message("community.inbox.a_prize"),
                    "question": topic.question,
                    "answer": answer,
                },
            ),
            link=f"/c/{guess.community_id}#topic-{topic.id}",
            dedupe_key=f"feed.guess_won:{topic.id}",
        )
        record_event(
            session,
            GUESS_WON,
            subjects=Subjects(user_id=user_id, community_id=guess.community_id, session_id=topic.session_id),
            payload={
                "user_id": user_id,
                "topic_id": topic.id,
                "rank": rank[user_id],
                "coupon_template_id": topic.coupon_template_id,
                "prize_name": topic.prize_name,
            },
        )
    await session.flush()
    return topic


async def reveal_topic_job(session: AsyncSession, job: Job) -> None:
    topic_id = job.payload.get("topic_id")
    if isinstance(topic_id, int):
        # A job never runs before its time; ``run_at`` stands for "now" when a runner catches up late.
        await reveal_topic(session, topic_id, now=max(utcnow(), as_utc(job.run_at)))


# --- guesses -------------------------------------------------------------------------------------


async def get_topic(session: AsyncSession, topic_id: int) -> FeedTopic:
    topic = await session.get(FeedTopic, topic_id)
    if topic is None:
        raise TopicNotFound(f"no topic {topic_id}")
    return topic


async def topic_community_for(session: AsyncSession, user: User, topic: FeedTopic) -> int:
    """The community through which ``user`` sees this topic (a published topic post in a feed they read)."""
    rows = (
        await session.scalars(
            select(FeedPost.community_id).where(
                FeedPost.topic_id == topic.id, FeedPost.kind == "topic", FeedPost.deleted_at.is_(None)
            )
        )
    ).all()
    for community_id in rows:
        if (await posts.standing(session, user, community_id)).can_read:
            return community_id
    raise TopicNotFound(f"no topic {topic.id}")


async def submit_guess(
    session: AsyncSession, runtime: Any, user: User, topic_id: int, text: str, *, now: datetime | None = None
) -> FeedGuess:
    """A neighbour's guess (one per topic; guessing again before the reveal replaces it)."""
    now = now or utcnow()
    topic = await get_topic(session, topic_id)
    community_id = await topic_community_for(session, user, topic)
    if topic.revealed_at is not None or as_utc(topic.reveal_at) <= now:
        raise GuessClosed("the answer is out; guessing is closed")
    text = posts.clean_text(text, limit=MAX_GUESS_CHARS, field="text", multiline=False)
    await posts.refuse_sensitive(session, runtime, text)
    guess = await session.scalar(
        select(FeedGuess).where(FeedGuess.topic_id == topic.id, FeedGuess.user_id == user.id)
    )
    if guess is None:
        guess = FeedGuess(
            topic_id=topic.id,
            user_id=user.id,
            community_id=community_id,
            text=text,
            created_at=now,
            updated_at=now,
        )
        try:
            async with session.begin_nested():
                session.add(guess)
        except IntegrityError:
            guess = await session.scalar(
                select(FeedGuess).where(FeedGuess.topic_id == topic.id, FeedGuess.user_id == user.id)
            )
            assert guess is not None
    guess.text, guess.updated_at = text, now
    record_event(
        session,
        GUESS_SUBMITTED,
        actor_id=user.id,
        subjects=Subjects(user_id=user.id, community_id=community_id, session_id=topic.session_id),
        payload={"topic_id": topic.id},
    )
    await session.flush()
    return guess


async def my_guess(session: AsyncSession, user_id: int, topic_id: int) -> FeedGuess | None:
    return await session.scalar(
        select(FeedGuess).where(FeedGuess.topic_id == topic_id, FeedGuess.user_id == user_id)
    )


async def guess_count(session: AsyncSession, topic_id: int) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(FeedGuess).where(FeedGuess.topic_id == topic_id)
        )
        or 0
    )


def topic_view(topic: FeedTopic, *, guesses: int, mine: FeedGuess | None) -> dict[str, Any]:
    """What anyone outside the server sees of a topic: the answer, the seed and the winners only once it
    has been revealed (``revealed_at`` set by the reveal timer), never before."""
    revealed = topic.revealed_at is not None
    return {
        "id": topic.id,
        "question": topic.question,
        "reveal_at": as_utc(topic.reveal_at).isoformat(),
        "revealed": revealed,
        "answer": topic.answer.split("|")[0] if revealed else None,
        "prize_mode": topic.prize_mode,
        "winner_count": topic.winner_count,
        "prize_name": topic.prize_name,
        "seed_hash": topic.seed_hash,
        "seed": topic.seed if revealed else None,
        "guess_count": guesses,
        "correct_count": topic.correct_count if revealed else None,
        "winner_count_drawn": len(topic.winner_ids) if revealed else None,
        "algorithm": draw.ALGORITHM,
        "my_guess": mine.text if mine is not None else None,
        "my_guess_correct": mine.correct if (mine is not None and revealed) else None,
        "i_won": (mine.won_rank is not None) if (mine is not None and revealed) else None,
    }


# --- taster tasks --------------------------------------------------------------------------------


async def open_tasks(session: AsyncSession, user_id: int, community_id: int) -> list[TasterTask]:
    return list(
        (
            await session.scalars(
                select(TasterTask)
                .where(
                    TasterTask.user_id == user_id,
                    TasterTask.community_id == community_id,
                    TasterTask.done_at.is_(None),
                )
                .order_by(TasterTask.id)
            )
        ).all()
    )


async def complete_task(
    session: AsyncSession, runtime: Any, user: User, task_id: int, *, text: str, image_path: str | None = None
) -> FeedPost:
    """A taster posts their preview review for a task; the post is labelled as a taster's review and links
    to the campaign's session."""
    task = await session.get(TasterTask, task_id)
    if task is None or task.user_id != user.id:
        raise TaskNotFound(f"no task {task_id}")
    if task.done_at is not None:
        raise TaskDone("this task is done already")
    item = await session.get(FeedCampaignItem, task.item_id)
    campaign = await session.get(FeedCampaign, item.campaign_id) if item else None
    text = posts.clean_text(text, limit=posts.MAX_POST_CHARS)
    await posts.refuse_sensitive(session, runtime, text)
    post = await posts.publish_post(
        session,
        community_id=task.community_id,
        text=text,
        kind="taster",
        label="taster",
        author_id=user.id,
        image_path=image_path,
        session_id=campaign.session_id if campaign else None,
        session_title=campaign.session_title if campaign else "",
        session_start=campaign.session_start if campaign else None,
        campaign_id=campaign.id if campaign else None,
        dedupe_key=f"task:{task.id}",
    )
    task.done_at, task.post_id = utcnow(), post.id
    record_event(
        session,
        TASK_DONE,
        actor_id=user.id,
        subjects=Subjects(user_id=user.id, community_id=task.community_id),
        payload={"task_id": task.id, "post_id": post.id},
    )
    await session.flush()
    return post


# --- reach ---------------------------------------------------------------------------------------

ACTIVE_DAYS = 30


@dataclass
class CommunityReach:
    community_id: int
    community_name: str
    posts: int
    views: int
    viewers: int
    guesses: int
    active: int
    active_reached: int

    @property
    def reached_share(self) -> float:
        return self.active_reached / self.active if self.active else 0.0


async def active_members(
    session: AsyncSession, community_id: int, *, now: datetime | None = None
) -> set[int]:
    """A community's active neighbours: members who did something themselves (an event they are the actor
    of: a view, a like, a comment, an order, a reservation, ...) in the last 30 days, or joined in them."""
    since = (now or utcnow()) - timedelta(days=ACTIVE_DAYS)
    members = select(Membership.user_id).where(Membership.community_id == community_id)
    acted = set(
        (
            await session.scalars(
                select(Event.actor_id)
                .where(Event.actor_id.in_(members), Event.occurred_at >= since)
                .distinct()
            )
        ).all()
    )
    joined = set(
        (
            await session.scalars(
                select(Membership.user_id).where(
                    Membership.community_id == community_id, Membership.joined_at >= since
                )
            )
        ).all()
    )
    return {u for u in acted | joined if u is not None}


async def campaign_reach(session: AsyncSession, campaign: FeedCampaign) -> list[CommunityReach]:
    """Per community of the campaign: its posts, impressions, distinct viewers, guesses, and the share of
    its active neighbours who saw at least one of the campaign's posts."""
    out = []
    names = dict(
        (
            await session.execute(
                select(Community.id, Community.name).where(Community.id.in_(campaign.community_ids))
            )
        ).all()
    )
    topic_ids = [i.topic_id for i in await items_of(session, campaign.id) if i.topic_id]
    for community_id in campaign.community_ids:
        count, views = (
            await session.execute(
                select(func.count(), func.coalesce(func.sum(FeedPost.view_count), 0)).where(
                    FeedPost.campaign_id == campaign.id,
                    FeedPost.community_id == community_id,
                    FeedPost.deleted_at.is_(None),
                )
            )
        ).one()
        viewers = set(
            (
                await session.scalars(
                    select(FeedView.user_id)
                    .where(FeedView.campaign_id == campaign.id, FeedView.community_id == community_id)
                    .distinct()
                )
            ).all()
        )
        guesses = 0
        if topic_ids:
            guesses = int(
                await session.scalar(
                    select(func.count())
                    .select_from(FeedGuess)
                    .where(FeedGuess.topic_id.in_(topic_ids), FeedGuess.community_id == community_id)
                )
                or 0
            )
        active = await active_members(session, community_id)
        out.append(
            CommunityReach(
                community_id=community_id,
                community_name=names.get(community_id, str(community_id)),
                posts=int(count or 0),
                views=int(views or 0),
                viewers=len({v for v in viewers if v is not None}),
                guesses=guesses,
                active=len(active),
                active_reached=len(active & {v for v in viewers if v is not None}),
            )
        )
    return out
