"""API shapes of the feed, and the one presenter that turns posts into them (pages use it too)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community.feed import posts, preheat
from linli.community.feed.models import FeedComment, FeedPost, FeedTopic, WecomRobot
from linli.community.feed.wecom import masked
from linli.core.clock import as_utc
from linli.identity.models import User


class Person(BaseModel):
    id: int
    name: str


class Segment(BaseModel):
    """A piece of a post's text: plain, or an @mention of ``user_id`` (link it to the person)."""

    text: str
    user_id: int | None = None


class SessionLink(BaseModel):
    id: int
    title: str
    start: datetime | None
    url: str


class TopicRead(BaseModel):
    """A guessing topic. ``answer``, ``seed`` and the results stay null until the reveal."""

    id: int
    question: str
    reveal_at: datetime
    revealed: bool
    answer: str | None
    prize_mode: str
    winner_count: int
    prize_name: str
    seed_hash: str
    seed: str | None
    guess_count: int
    correct_count: int | None
    winner_count_drawn: int | None
    algorithm: str
    my_guess: str | None
    my_guess_correct: bool | None
    i_won: bool | None


class CommentRead(BaseModel):
    id: int
    post_id: int
    author: Person
    text: str
    created_at: datetime


class PostRead(BaseModel):
    id: int
    community_id: int
    kind: str
    label: str
    text: str
    segments: list[Segment]
    author: Person | None
    mentions: list[Person]
    image_url: str | None
    video_url: str | None
    session: SessionLink | None
    topic: TopicRead | None
    like_count: int
    comment_count: int
    liked: bool
    pinned: bool
    created_at: datetime
    comments: list[CommentRead] = []


class FeedPage(BaseModel):
    community_id: int
    community_name: str
    can_post: bool
    can_moderate: bool
    posts: list[PostRead]
    next_before_id: int | None


class PostCreate(BaseModel):
    text: str = Field(max_length=4000)
    video_url: str | None = Field(default=None, max_length=500)
    image_path: str | None = Field(default=None, max_length=255)
    mention_user_ids: list[int] = Field(default_factory=list, max_length=posts.MAX_MENTIONS)


class CommentCreate(BaseModel):
    text: str = Field(max_length=1000)


class GuessCreate(BaseModel):
    text: str = Field(max_length=200)


class ViewsBody(BaseModel):
    post_ids: list[int] = Field(max_length=50)


class ViewsRecorded(BaseModel):
    new_views: int


class LikeState(BaseModel):
    post_id: int
    liked: bool
    like_count: int


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    community_id: int
    brief: str
    created_at: datetime
    done_at: datetime | None
    post_id: int | None


class TaskPost(BaseModel):
    text: str = Field(max_length=4000)
    image_path: str | None = Field(default=None, max_length=255)


class MuteCreate(BaseModel):
    user_id: int = Field(ge=1)
    minutes: int = Field(ge=1, le=posts.MAX_MUTE_MINUTES)
    reason: str = Field(default="", max_length=120)


class TasterCreate(BaseModel):
    user_id: int = Field(ge=1)


class TasterRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    community_id: int
    user_id: int
    created_at: datetime


class ImageUploaded(BaseModel):
    image_path: str
    url: str


class RobotWrite(BaseModel):
    webhook_url: str | None = Field(default=None, max_length=500)
    enabled: bool = True


class RobotRead(BaseModel):
    community_id: int
    webhook_url_masked: str
    enabled: bool
    updated_at: datetime


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempted_at: datetime
    http_status: int | None
    errcode: int | None
    outcome: str
    detail: str


class DeliveryRead(BaseModel):
    id: int
    community_id: int
    post_id: int | None
    msgtype: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str
    created_at: datetime
    sent_at: datetime | None
    log: list[AttemptRead]


class ReviewRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    order_id: int
    product_id: int
    product_name: str
    user_id: int
    community_id: int | None
    rating: int
    text: str
    photo_path: str | None
    status: str
    created_at: datetime


class Testimonial(BaseModel):
    id: int
    product_id: int
    product_name: str
    rating: int
    text: str
    photo_url: str | None
    who: str
    same_community: bool
    created_at: datetime


class ReviewableRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    order_id: int
    product_id: int
    product_name: str
    completed_at: datetime


async def topic_read(session: AsyncSession, topic: FeedTopic, user: User | None) -> TopicRead:
    mine = await preheat.my_guess(session, user.id, topic.id) if user is not None else None
    return TopicRead(
        **preheat.topic_view(topic, guesses=await preheat.guess_count(session, topic.id), mine=mine)
    )


async def comments_read(session: AsyncSession, comments: Sequence[FeedComment]) -> list[CommentRead]:
    names = await posts.names_of(session, [c.user_id for c in comments])
    return [
        CommentRead(
            id=c.id,
            post_id=c.post_id,
            author=Person(id=c.user_id, name=names.get(c.user_id, "")),
            text=c.text,
            created_at=c.created_at,
        )
        for c in comments
    ]


async def posts_read(
    session: AsyncSession, user: User | None, rows: Sequence[FeedPost], *, with_comments: bool = True
) -> list[PostRead]:
    """Posts as the API and the page show them: mentions resolved to people, topics without their answer
    until the reveal, the caller's like."""
    ids = [p.id for p in rows]
    mentions = await posts.mentions_of(session, ids)
    people = [u for m in mentions.values() for u in m] + [p.author_id for p in rows if p.author_id]
    names = await posts.names_of(session, people)
    liked = await posts.liked_by(session, user.id, ids) if user is not None else set()
    comments = await posts.comments_of(session, ids) if with_comments else {}
    topics: dict[int, TopicRead] = {}
    out = []
    for p in rows:
        mentioned = {u: names.get(u, "") for u in mentions.get(p.id, [])}
        topic = None
        if p.topic_id is not None:
            if p.topic_id not in topics:
                row = await session.get(FeedTopic, p.topic_id)
                if row is not None:
                    topics[p.topic_id] = await topic_read(session, row, user)
            topic = topics.get(p.topic_id)
        out.append(
            PostRead(
                id=p.id,
                community_id=p.community_id,
                kind=p.kind,
                label=p.label,
                text=p.text,
                segments=[Segment(text=t, user_id=u) for t, u in posts.segments(p.text, mentioned)],
                author=Person(id=p.author_id, name=names.get(p.author_id, "")) if p.author_id else None,
                mentions=[Person(id=u, name=n) for u, n in mentioned.items()],
                image_url=f"/media/{p.image_path}" if p.image_path else None,
                video_url=p.video_url,
                session=SessionLink(
                    id=p.session_id,
                    title=p.session_title,
                    start=as_utc(p.session_start) if p.session_start else None,
                    url=f"/live/{p.session_id}",
                )
                if p.session_id
                else None,
                topic=topic,
                like_count=p.like_count,
                comment_count=p.comment_count,
                liked=p.id in liked,
                pinned=p.pinned_at is not None,
                created_at=p.created_at,
                comments=await comments_read(session, comments.get(p.id, [])),
            )
        )
    return out


def robot_read(robot: WecomRobot) -> RobotRead:
    return RobotRead(
        community_id=robot.community_id,
        webhook_url_masked=masked(robot.webhook_url) if robot.webhook_url else "",
        enabled=robot.enabled,
        updated_at=robot.updated_at,
    )
