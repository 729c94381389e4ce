"""The community feed as JSON: a community's posts, likes, comments, guesses, taster tasks, views;
testimonials; and the operators' moderation, tasters, WeCom robots and delivery log.

A neighbour reads only their own community's feed (another's is a 403 on the feed, a 404 on its posts);
operators read every feed. Every page action of ``/c/{community}`` is here too."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile

from linli.community.feed import posts, preheat, reviews, wecom
from linli.community.feed.schemas import (
    AttemptRead,
    CommentCreate,
    CommentRead,
    DeliveryRead,
    FeedPage,
    GuessCreate,
    ImageUploaded,
    LikeState,
    MuteCreate,
    PostCreate,
    PostRead,
    ReviewableRead,
    ReviewRead,
    RobotRead,
    RobotWrite,
    TaskPost,
    TaskRead,
    TasterCreate,
    TasterRead,
    Testimonial,
    TopicRead,
    ViewsBody,
    ViewsRecorded,
    comments_read,
    posts_read,
    robot_read,
    topic_read,
)
from linli.community.feed.uploads import store_upload
from linli.community.service import membership_of
from linli.core.config import Settings
from linli.core.deps import RuntimeDep, SessionDep, SettingsDep
from linli.core.errors import Unprocessable
from linli.identity.deps import CurrentUser, OperatorUser, OptionalUser

router = APIRouter()
Id = Annotated[int, Path(ge=1, le=2**62)]
TAG, ADMIN_TAG = "community: feed", "community: feed (operators)"
_IMAGE_PATH = re.compile(r"^(feed|reviews)/[A-Za-z0-9_./-]{1,200}$")


class InvalidImage(Unprocessable):
    pass


def checked_image_path(path: str | None, settings: Settings) -> str | None:
    """An image uploaded through ``/api/v1/feed/images`` (a path under our media folder, nothing else)."""
    if not path:
        return None
    if not _IMAGE_PATH.match(path) or ".." in path or not (settings.media_dir / path).is_file():
        raise InvalidImage("upload the image first (POST /api/v1/feed/images)", field="image_path")
    return path


@router.get("/api/v1/c/{community_id}/posts", tags=[TAG])
async def list_feed(
    session: SessionDep,
    user: CurrentUser,
    community_id: Id,
    before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    person_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = posts.PAGE_SIZE,
) -> FeedPage:
    """A community's feed, pinned first then newest; ``person_id``: the posts by or mentioning someone."""
    standing = await posts.require_reader(session, user, community_id)
    community = await posts.open_community(session, community_id)
    rows = await posts.list_posts(
        session, community_id, before_id=before_id, limit=limit + 1, person_id=person_id
    )
    unpinned = [p for p in rows if p.pinned_at is None]
    more = len(unpinned) > limit
    if more:
        rows.remove(unpinned[-1])
        unpinned = unpinned[:-1]
    return FeedPage(
        community_id=community_id,
        community_name=community.name,
        can_post=standing.can_post,
        can_moderate=standing.can_moderate,
        posts=await posts_read(session, user, rows),
        next_before_id=unpinned[-1].id if more and unpinned else None,
    )


@router.post("/api/v1/c/{community_id}/posts", status_code=201, tags=[TAG])
async def create_post(
    session: SessionDep, runtime: RuntimeDep, user: CurrentUser, community_id: Id, body: PostCreate
) -> PostRead:
    """Post in a community's feed: the brand (operators), its leaders and its invited tasters."""
    post = await posts.create_post(
        session,
        runtime,
        user,
        community_id,
        text=body.text,
        video_url=body.video_url,
        image_path=checked_image_path(body.image_path, runtime.settings),
        mention_user_ids=body.mention_user_ids,
    )
    return (await posts_read(session, user, [post]))[0]


@router.post("/api/v1/feed/images", status_code=201, tags=[TAG])
async def upload_image(
    settings: SettingsDep,
    user: CurrentUser,
    file: Annotated[UploadFile, File(description="JPEG, PNG or WebP")],
) -> ImageUploaded:
    """Upload a post's or a review's photo (checked and re-encoded); pass its ``image_path`` on."""
    path = await store_upload(file, settings, folder="feed")
    if path is None:
        raise InvalidImage("choose an image file", field="file")
    return ImageUploaded(image_path=path, url=f"/media/{path}")


@router.get("/api/v1/feed/posts/{post_id}", tags=[TAG])
async def read_post(session: SessionDep, user: CurrentUser, post_id: Id) -> PostRead:
    post, _ = await posts.readable_post(session, user, post_id)
    return (await posts_read(session, user, [post]))[0]


@router.delete("/api/v1/feed/posts/{post_id}", status_code=204, tags=[TAG])
async def delete_post(session: SessionDep, user: CurrentUser, post_id: Id) -> Response:
    """Its author or the community's staff remove a post."""
    await posts.delete_post(session, user, post_id)
    return Response(status_code=204)


@router.put("/api/v1/feed/posts/{post_id}/pin", tags=[TAG])
async def pin_post(session: SessionDep, user: CurrentUser, post_id: Id) -> PostRead:
    post = await posts.set_pinned(session, user, post_id, True)
    return (await posts_read(session, user, [post]))[0]


@router.delete("/api/v1/feed/posts/{post_id}/pin", tags=[TAG])
async def unpin_post(session: SessionDep, user: CurrentUser, post_id: Id) -> PostRead:
    post = await posts.set_pinned(session, user, post_id, False)
    return (await posts_read(session, user, [post]))[0]


@router.put("/api/v1/feed/posts/{post_id}/like", tags=[TAG])
async def like_post(session: SessionDep, user: CurrentUser, post_id: Id) -> LikeState:
    post = await posts.like(session, user, post_id, True)
    return LikeState(post_id=post.id, liked=True, like_count=post.like_count)


@router.delete("/api/v1/feed/posts/{post_id}/like", tags=[TAG])
async def unlike_post(session: SessionDep, user: CurrentUser, post_id: Id) -> LikeState:
    post = await posts.like(session, user, post_id, False)
    return LikeState(post_id=post.id, liked=False, like_count=post.like_count)


@router.get("/api/v1/feed/posts/{post_id}/comments", tags=[TAG])
async def list_comments(session: SessionDep, user: CurrentUser, post_id: Id) -> list[CommentRead]:
    post, _ = await posts.readable_post(session, user, post_id)
    return await comments_read(
        session, (await posts.comments_of(session, [post.id], per_post=200)).get(post.id, [])
    )


@router.post("/api/v1/feed/posts/{post_id}/comments", status_code=201, tags=[TAG])
async def add_comment(
    session: SessionDep, runtime: RuntimeDep, user: CurrentUser, post_id: Id, body: CommentCreate
) -> CommentRead:
    """Comment (plain text, 200 characters; sensitive words refused; 5 per 10 seconds)."""
    comment = await posts.add_comment(session, runtime, user, post_id, body.text)
    return (await comments_read(session, [comment]))[0]


@router.delete("/api/v1/feed/comments/{comment_id}", status_code=204, tags=[TAG])
async def delete_comment(session: SessionDep, user: CurrentUser, comment_id: Id) -> Response:
    await posts.delete_comment(session, user, comment_id)
    return Response(status_code=204)


@router.post("/api/v1/feed/views", tags=[TAG])
async def record_views(session: SessionDep, user: CurrentUser, body: ViewsBody) -> ViewsRecorded:
    """A client showed these posts (the page records its own): impressions and distinct views."""
    seen = []
    for post_id in dict.fromkeys(body.post_ids):
        try:
            post, _ = await posts.readable_post(session, user, post_id)
        except posts.PostNotFound:
            continue
        seen.append(post)
    return ViewsRecorded(new_views=await posts.record_views(session, user, seen))


@router.get("/api/v1/feed/topics/{topic_id}", tags=[TAG])
async def read_topic(session: SessionDep, user: CurrentUser, topic_id: Id) -> TopicRead:
    """A guessing topic; its answer is null until the reveal."""
    topic = await preheat.get_topic(session, topic_id)
    await preheat.topic_community_for(session, user, topic)
    return await topic_read(session, topic, user)


@router.put("/api/v1/feed/topics/{topic_id}/guess", tags=[TAG])
async def guess(
    session: SessionDep, runtime: RuntimeDep, user: CurrentUser, topic_id: Id, body: GuessCreate
) -> TopicRead:
    """My guess (guessing again before the reveal replaces it; 409 once the reveal time has come)."""
    await preheat.submit_guess(session, runtime, user, topic_id, body.text)
    return await topic_read(session, await preheat.get_topic(session, topic_id), user)


@router.get("/api/v1/me/feed/tasks", tags=[TAG])
async def my_tasks(session: SessionDep, user: CurrentUser) -> list[TaskRead]:
    """My open taster tasks, in my communities."""
    tasks = []
    for t in await posts.tasters_of_user(session, user.id):
        tasks += await preheat.open_tasks(session, user.id, t.community_id)
    return [TaskRead.model_validate(t) for t in tasks]


@router.post("/api/v1/feed/tasks/{task_id}/post", status_code=201, tags=[TAG])
async def complete_task(
    session: SessionDep, runtime: RuntimeDep, user: CurrentUser, task_id: Id, body: TaskPost
) -> PostRead:
    """Post my taster review for a task (labelled as a taster's review, linked to the session)."""
    post = await preheat.complete_task(
        session,
        runtime,
        user,
        task_id,
        text=body.text,
        image_path=checked_image_path(body.image_path, runtime.settings),
    )
    return (await posts_read(session, user, [post]))[0]


# --- testimonials --------------------------------------------------------------------------------


@router.get("/api/v1/reviews", tags=[TAG])
async def list_testimonials(
    session: SessionDep,
    user: OptionalUser,
    product_id: Annotated[list[int] | None, Query(max_length=50)] = None,
    community_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> list[Testimonial]:
    """Approved reviews of these products, the viewer's community first (``community_id``, else mine)."""
    if community_id is None and user is not None:
        membership = await membership_of(session, user.id)
        community_id = membership.community_id if membership else None
    rows = await reviews.approved_for(session, product_ids=product_id, community_id=community_id, limit=limit)
    return [Testimonial(**r) for r in rows]


@router.get("/api/v1/me/reviews/pending", tags=[TAG])
async def reviewable(session: SessionDep, user: CurrentUser) -> list[ReviewableRead]:
    """What I picked up and have not reviewed yet."""
    return [ReviewableRead.model_validate(r) for r in await reviews.to_review(session, user.id)]


@router.post("/api/v1/reviews", status_code=201, tags=[TAG])
async def submit_review(
    session: SessionDep,
    runtime: RuntimeDep,
    user: CurrentUser,
    order_id: Annotated[int, Form(ge=1, le=2**62)],
    product_id: Annotated[int, Form(ge=1, le=2**62)],
    rating: Annotated[int, Form(ge=1, le=5)],
    text: Annotated[str, Form(max_length=2000)],
    photo: Annotated[UploadFile | None, File()] = None,
) -> ReviewRead:
    """Review a product I picked up (multipart: rating 1–5, text, optional photo); shown once approved."""
    photo_path = await store_upload(photo, runtime.settings, folder="reviews")
    review = await reviews.submit_review(
        session,
        runtime,
        user,
        order_id=order_id,
        product_id=product_id,
        rating=rating,
        text=text,
        photo_path=photo_path,
    )
    return ReviewRead.model_validate(review)


@router.get("/api/v1/admin/reviews", tags=[ADMIN_TAG])
async def admin_reviews(
    session: SessionDep,
    operator: OperatorUser,
    status: Annotated[str, Query(pattern="^(pending|approved|rejected|all)$")] = "pending",
) -> list[ReviewRead]:
    rows = await reviews.list_reviews(session, status=None if status == "all" else status)
    return [ReviewRead.model_validate(r) for r in rows]


@router.post("/api/v1/admin/reviews/{review_id}/approve", tags=[ADMIN_TAG])
async def approve_review(session: SessionDep, operator: OperatorUser, review_id: Id) -> ReviewRead:
    return ReviewRead.model_validate(await reviews.decide(session, operator, review_id, True))


@router.post("/api/v1/admin/reviews/{review_id}/reject", tags=[ADMIN_TAG])
async def reject_review(session: SessionDep, operator: OperatorUser, review_id: Id) -> ReviewRead:
    return ReviewRead.model_validate(await reviews.decide(session, operator, review_id, False))


# --- operators: moderation, tasters, robots ------------------------------------------------------


@router.post("/api/v1/admin/feed/mutes", status_code=201, tags=[ADMIN_TAG])
async def mute(session: SessionDep, operator: OperatorUser, body: MuteCreate) -> dict[str, str]:
    """Keep a neighbour from commenting in the feeds for a while."""
    row = await posts.mute_user(session, operator, body.user_id, minutes=body.minutes, reason=body.reason)
    return {"until": row.until.isoformat()}


@router.post("/api/v1/admin/communities/{community_id}/tasters", status_code=201, tags=[ADMIN_TAG])
async def invite_taster(
    session: SessionDep, operator: OperatorUser, community_id: Id, body: TasterCreate
) -> TasterRead:
    """Invite a neighbour as this community's taster (试吃官): they may post and get pre-heat tasks."""
    return TasterRead.model_validate(await posts.invite_taster(session, operator, community_id, body.user_id))


@router.get("/api/v1/admin/communities/{community_id}/tasters", tags=[ADMIN_TAG])
async def list_tasters(session: SessionDep, operator: OperatorUser, community_id: Id) -> list[TasterRead]:
    return [TasterRead.model_validate(t) for t in await posts.tasters_of(session, [community_id])]


@router.get("/api/v1/admin/communities/{community_id}/wecom-robot", tags=[ADMIN_TAG])
async def get_robot(session: SessionDep, operator: OperatorUser, community_id: Id) -> RobotRead:
    """The community's robot, its webhook masked (the key is never shown again)."""
    robot = await wecom.robot_of(session, community_id)
    if robot is None:
        raise wecom.RobotNotFound("this community has no WeCom robot")
    return robot_read(robot)


@router.put("/api/v1/admin/communities/{community_id}/wecom-robot", tags=[ADMIN_TAG])
async def put_robot(
    session: SessionDep, settings: SettingsDep, operator: OperatorUser, community_id: Id, body: RobotWrite
) -> RobotRead:
    """Set the robot's webhook (a WeCom group-robot URL) or switch it on/off (omit ``webhook_url``)."""
    robot = await wecom.set_robot(
        session, operator, community_id, webhook_url=body.webhook_url, enabled=body.enabled, settings=settings
    )
    return robot_read(robot)


@router.delete("/api/v1/admin/communities/{community_id}/wecom-robot", status_code=204, tags=[ADMIN_TAG])
async def delete_robot(session: SessionDep, operator: OperatorUser, community_id: Id) -> Response:
    await wecom.remove_robot(session, operator, community_id)
    return Response(status_code=204)


@router.post("/api/v1/admin/communities/{community_id}/wecom-robot/test", status_code=202, tags=[ADMIN_TAG])
async def check_robot(session: SessionDep, operator: OperatorUser, community_id: Id) -> dict[str, int]:
    """Send a test message through the outbox (see the delivery log)."""
    delivery = await wecom.send_test(session, operator, community_id)
    return {"delivery_id": delivery.id}


@router.get("/api/v1/admin/wecom/deliveries", tags=[ADMIN_TAG])
async def delivery_log(
    session: SessionDep,
    operator: OperatorUser,
    community_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> list[DeliveryRead]:
    """The WeCom delivery log, newest first: each message, its status and every request made."""
    rows = await wecom.deliveries(session, community_id=community_id)
    log = await wecom.attempts_of(session, [d.id for d, _ in rows])
    return [
        DeliveryRead(
            id=d.id,
            community_id=r.community_id,
            post_id=d.post_id,
            msgtype=d.msgtype,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at,
            last_error=d.last_error,
            created_at=d.created_at,
            sent_at=d.sent_at,
            log=[AttemptRead.model_validate(a) for a in log.get(d.id, [])],
        )
        for d, r in rows
    ]
