"""The community feed (社区动态): who reads and writes where, posts, @mentions, likes, comments, pins,
views, and moderation (the live room's sensitive words, per-user rate limits, deletion and mutes by staff).

Who may read ``/c/{community}``: its members, its pickup points' leaders, its invited tasters, and
operators (every feed). Who may post: operators (as the brand), the community's leaders and its tasters;
neighbours like, comment and guess. Another community's post is reported as not found, so ids reveal
nothing. Texts are plain: stored as typed and never rendered as HTML.

Verbs check first, then write and append their event in the caller's transaction; they flush, never
commit. ``publish_post`` is the one way a post appears; ``feed.post_published`` tells the WeCom bridge.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community import inbox
from linli.community.feed.models import (
    FeedComment,
    FeedLike,
    FeedMention,
    FeedMute,
    FeedPost,
    FeedTaster,
    FeedView,
)
from linli.community.models import Community, Membership, PickupPoint
from linli.core.clock import utcnow
from linli.core.errors import Conflict, Forbidden, NotFound, TooManyRequests, Unprocessable
from linli.core.events import Subjects, record_event
from linli.core.i18n import Message
from linli.core.ratelimit import count_hit
from linli.core.wordfilter import active_filter
from linli.identity.models import Role, User

POST_PUBLISHED = "feed.post_published"  # {post_id, kind, bridge}
POST_DELETED = "feed.post_deleted"
POST_PINNED, POST_UNPINNED = "feed.post_pinned", "feed.post_unpinned"
POST_LIKED, POST_UNLIKED = "feed.post_liked", "feed.post_unliked"
COMMENT_POSTED, COMMENT_DELETED = "feed.comment_posted", "feed.comment_deleted"
POST_VIEWED = "feed.post_viewed"  # {post_id, campaign_id}; once per viewer and post
USER_MUTED = "feed.user_muted"
TASTER_INVITED = "feed.taster_invited"

MAX_POST_CHARS = 1000
MAX_COMMENT_CHARS = 200
MAX_MENTIONS = 20
PAGE_SIZE = 20
COMMENT_RATE_LIMIT, COMMENT_RATE_WINDOW = 5, 10
POST_RATE_LIMIT, POST_RATE_WINDOW = 10, 600
MAX_MUTE_MINUTES = 7 * 24 * 60
KIND_MENTION = "feed_mention"


class PostNotFound(NotFound):
    pass


class CommentNotFound(NotFound):
    pass


class FeedNotVisible(Forbidden):
    """Not a member (leader, taster) of this community."""


class NotAllowedToPost(Forbidden):
    pass


class InvalidPost(Unprocessable):
    pass


class TextRefused(Unprocessable):
    """The text contains a sensitive word."""


class MutedInFeed(Forbidden):
    pass


class AlreadyTaster(Conflict):
    pass


# --- who may do what -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """What ``user`` is to one community."""

    operator: bool
    member: bool
    leader: bool
    taster: bool

    @property
    def can_read(self) -> bool:
        return self.operator or self.member or self.leader or self.taster

    @property
    def can_post(self) -> bool:
        return self.operator or self.leader or self.taster

    @property
    def can_moderate(self) -> bool:
        return self.operator or self.leader


async def standing(session: AsyncSession, user: User, community_id: int) -> Standing:
    member = await session.scalar(
        select(Membership.user_id).where(
            Membership.user_id == user.id, Membership.community_id == community_id
        )
    )
    leader = user.has_role(Role.leader) and (
        await session.scalar(
            select(PickupPoint.id)
            .where(
                PickupPoint.community_id == community_id,
                PickupPoint.leader_id == user.id,
                PickupPoint.archived_at.is_(None),
            )
            .limit(1)
        )
        is not None
    )
    taster = await session.scalar(
        select(FeedTaster.id).where(FeedTaster.community_id == community_id, FeedTaster.user_id == user.id)
    )
    return Standing(
        operator=user.has_role(Role.operator),
        member=member is not None,
        leader=leader,
        taster=taster is not None,
    )


async def open_community(session: AsyncSession, community_id: int) -> Community:
    community = await session.get(Community, community_id)
    if community is None or community.archived_at is not None:
        raise PostNotFound(f"no community {community_id}", community_id=community_id)
    return community


async def require_reader(session: AsyncSession, user: User, community_id: int) -> Standing:
    """The caller's standing, if they may read this community's feed (else 403)."""
    await open_community(session, community_id)
    s = await standing(session, user, community_id)
    if not s.can_read:
        raise FeedNotVisible("this is another community's feed; you can read your own community's")
    return s


async def readable_post(session: AsyncSession, user: User, post_id: int) -> tuple[FeedPost, Standing]:
    """A post the caller may see; a deleted one or another community's is not found."""
    post = await session.get(FeedPost, post_id)
    if post is None or post.deleted_at is not None:
        raise PostNotFound(f"no post {post_id}", post_id=post_id)
    s = await standing(session, user, post.community_id)
    if not s.can_read:
        raise PostNotFound(f"no post {post_id}", post_id=post_id)
    return post, s


# --- text ----------------------------------------------------------------------------------------


def clean_text(raw: str, *, limit: int, field: str = "text", multiline: bool = True) -> str:
    """Trimmed; newlines kept in posts (at most two in a row), collapsed in comments; no control chars."""
    text = (raw or "").replace("\r\n", "\n").strip()
    if multiline:
        text = re.sub(r"[ \t]+", " ", text)
        text = re.sub(r"\n{3,}", "\n\n", text)
    else:
        text = " ".join(text.split())
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Co") and ch != "\n" for ch in text):
        raise InvalidPost(f"{field} cannot contain control characters", field=field)
    if not text:
        raise InvalidPost("write something first", field=field)
    if len(text) > limit:
        raise InvalidPost(f"{field} has at most {limit} characters", field=field, max=limit)
    return text


async def refuse_sensitive(session: AsyncSession, runtime: Any, text: str) -> None:
    """The live room's sensitive-word list applies in the feed too."""
    found = (await active_filter(session, runtime)).matches(text)
    if found:
        raise TextRefused("this contains a word that is not allowed here", words=found)


def clean_video_url(raw: str | None) -> str | None:
    if not raw:
        return None
    url = raw.strip()
    if len(url) > 500 or not re.match(r"^https?://[^\s<>\"']+$", url):
        raise InvalidPost("a video link is an http(s) URL", field="video_url")
    return url


# --- publishing ----------------------------------------------------------------------------------


async def publish_post(
    session: AsyncSession,
    *,
    community_id: int,
    text: str,
    kind: str = "post",
    author_id: int | None = None,
    label: str = "",
    image_path: str | None = None,
    video_url: str | None = None,
    session_id: int | None = None,
    session_title: str = "",
    session_start: datetime | None = None,
    campaign_id: int | None = None,
    topic_id: int | None = None,
    mention_ids: Sequence[int] = (),
    dedupe_key: str | None = None,
    bridge: bool = False,
) -> FeedPost:
    """Add a post to a community's feed and tell each @mentioned neighbour once (inbox). With a known
    ``dedupe_key`` nothing is written and the existing post is returned (at-least-once publishers).
    ``bridge``: also send it to the community's WeCom group robot (system and pre-heat posts)."""
    if dedupe_key is not None:
        existing = await session.scalar(select(FeedPost).where(FeedPost.dedupe_key == dedupe_key))
        if existing is not None:
            return existing
    post = FeedPost(
        community_id=community_id,
        author_id=author_id,
        kind=kind,
        label=label,
        text=text,
        image_path=image_path,
        video_url=video_url,
        session_id=session_id,
        session_title=session_title[:60],
        session_start=session_start,
        campaign_id=campaign_id,
        topic_id=topic_id,
        like_count=0,
        comment_count=0,
        view_count=0,
        dedupe_key=dedupe_key,
        created_at=utcnow(),
    )
    try:
        async with session.begin_nested():
            session.add(post)
    except IntegrityError:
        if dedupe_key is None:
            raise
        winner = await session.scalar(select(FeedPost).where(FeedPost.dedupe_key == dedupe_key))
        if winner is None:
            raise
        return winner
    mentioned = list(dict.fromkeys(int(u) for u in mention_ids))[:MAX_MENTIONS]
    for user_id in mentioned:
        session.add(FeedMention(post_id=post.id, user_id=user_id))
    record_event(
        session,
        POST_PUBLISHED,
        actor_id=author_id,
        subjects=Subjects(community_id=community_id, session_id=session_id, user_id=author_id),
        payload={"post_id": post.id, "kind": kind, "bridge": bridge, "campaign_id": campaign_id},
    )
    await session.flush()
    if mentioned:
        title = _clip(text.split("\n", 1)[0], 60)
        for user_id in mentioned:
            await inbox.notify(
                session,
                user_id=user_id,
                kind=KIND_MENTION,
                message=Message("community.inbox.mention", {"text": title}),
                link=f"/c/{community_id}#post-{post.id}",
                dedupe_key=f"feed.mention:{post.id}",
            )
    return post


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def check_mentions(session: AsyncSession, community_id: int, user_ids: Sequence[int]) -> list[int]:
    """Mentions a poster may make: people of this community (members), at most ``MAX_MENTIONS``."""
    wanted = list(dict.fromkeys(int(u) for u in user_ids))
    if len(wanted) > MAX_MENTIONS:
        raise InvalidPost(f"at most {MAX_MENTIONS} mentions", field="mention_user_ids")
    if not wanted:
        return []
    found = set(
        (
            await session.scalars(
                select(Membership.user_id).where(
                    Membership.user_id.in_(wanted), Membership.community_id == community_id
                )
            )
        ).all()
    )
    missing = [u for u in wanted if u not in found]
    if missing:
        raise InvalidPost("you can mention neighbours of this community only", field="mention_user_ids")
    return wanted


async def create_post(
    session: AsyncSession,
    runtime: Any,
    user: User,
    community_id: int,
    *,
    text: str,
    video_url: str | None = None,
    image_path: str | None = None,
    mention_user_ids: Sequence[int] = (),
    label: str = "",
    kind: str = "post",
) -> FeedPost:
    """A post by the brand (operator), one of the community's leaders or tasters."""
    await open_community(session, community_id)
    s = await standing(session, user, community_id)
    if not s.can_post:
        if s.can_read:
            raise NotAllowedToPost("posts here are by the brand, the community's leader and its tasters")
        raise FeedNotVisible("this is another community's feed")
    text = clean_text(text, limit=MAX_POST_CHARS)
    await refuse_sensitive(session, runtime, text)
    video = clean_video_url(video_url)
    mentions = await check_mentions(session, community_id, mention_user_ids)
    if not s.operator:
        count, retry = await count_hit(session, f"feed.post:{user.id}", window_seconds=POST_RATE_WINDOW)
        if count > POST_RATE_LIMIT:
            raise TooManyRequests("too many posts; try again later", retry_after=retry)
    if not label:
        label = "brand" if s.operator else "leader" if s.leader else "taster"
    return await publish_post(
        session,
        community_id=community_id,
        text=text,
        kind=kind,
        author_id=user.id,
        label=label,
        image_path=image_path,
        video_url=video,
        mention_ids=mentions,
    )


async def delete_post(session: AsyncSession, user: User, post_id: int) -> FeedPost:
    """Its author or staff (an operator, the community's leader) removes a post."""
    post, s = await readable_post(session, user, post_id)
    if not (s.can_moderate or post.author_id == user.id):
        raise Forbidden("only its author or the community's staff can remove a post")
    post.deleted_at = utcnow()
    record_event(
        session,
        POST_DELETED,
        actor_id=user.id,
        subjects=Subjects(community_id=post.community_id),
        payload={"post_id": post.id},
    )
    await session.flush()
    return post


async def set_pinned(session: AsyncSession, user: User, post_id: int, pinned: bool) -> FeedPost:
    """Staff pin a post to the top of its feed (or unpin it); repeating changes nothing."""
    post, s = await readable_post(session, user, post_id)
    if not s.can_moderate:
        raise Forbidden("only the community's staff can pin posts")
    if (post.pinned_at is not None) != pinned:
        post.pinned_at = utcnow() if pinned else None
        record_event(
            session,
            POST_PINNED if pinned else POST_UNPINNED,
            actor_id=user.id,
            subjects=Subjects(community_id=post.community_id),
            payload={"post_id": post.id},
        )
        await session.flush()
    return post


# --- reading -------------------------------------------------------------------------------------


async def list_posts(
    session: AsyncSession,
    community_id: int,
    *,
    before_id: int | None = None,
    limit: int = PAGE_SIZE,
    person_id: int | None = None,
) -> list[FeedPost]:
    """A feed, pinned posts first (on the first page), then newest first; ``person_id`` keeps the posts by
    or mentioning one person."""
    base = select(FeedPost).where(FeedPost.community_id == community_id, FeedPost.deleted_at.is_(None))
    if person_id is not None:
        mentioned = select(FeedMention.post_id).where(FeedMention.user_id == person_id)
        base = base.where((FeedPost.author_id == person_id) | FeedPost.id.in_(mentioned))
    pinned: list[FeedPost] = []
    if before_id is None:
        pinned = list(
            (
                await session.scalars(
                    base.where(FeedPost.pinned_at.is_not(None)).order_by(FeedPost.pinned_at.desc())
                )
            ).all()
        )
    rest = base.where(FeedPost.pinned_at.is_(None))
    if before_id is not None:
        rest = rest.where(FeedPost.id < before_id)
    rows = list((await session.scalars(rest.order_by(FeedPost.id.desc()).limit(limit))).all())
    return pinned + rows


async def mentions_of(session: AsyncSession, post_ids: Sequence[int]) -> dict[int, list[int]]:
    if not post_ids:
        return {}
    rows = (
        await session.execute(
            select(FeedMention.post_id, FeedMention.user_id)
            .where(FeedMention.post_id.in_(list(post_ids)))
            .order_by(FeedMention.id)
        )
    ).all()
    out: dict[int, list[int]] = {}
    for post_id, user_id in rows:
        out.setdefault(post_id, []).append(user_id)
    return out


async def names_of(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, str]:
    ids = list({u for u in user_ids if u is not None})
    if not ids:
        return {}
    users = (await session.scalars(select(User).where(User.id.in_(ids)))).all()
    return {u.id: u.display_name for u in users}


async def liked_by(session: AsyncSession, user_id: int, post_ids: Sequence[int]) -> set[int]:
    if not post_ids:
        return set()
    rows = await session.scalars(
        select(FeedLike.post_id).where(FeedLike.user_id == user_id, FeedLike.post_id.in_(list(post_ids)))
    )
    return set(rows.all())


async def comments_of(
    session: AsyncSession, post_ids: Sequence[int], *, per_post: int = 20
) -> dict[int, list[FeedComment]]:
    if not post_ids:
        return {}
    rows = (
        await session.scalars(
            select(FeedComment)
            .where(FeedComment.post_id.in_(list(post_ids)), FeedComment.deleted_at.is_(None))
            .order_by(FeedComment.id)
        )
    ).all()
    out: dict[int, list[FeedComment]] = {}
    for c in rows:
        out.setdefault(c.post_id, []).append(c)
    return {k: v[-per_post:] for k, v in out.items()}


def segments(text: str, people: dict[int, str]) -> list[tuple[str, int | None]]:
    """``text`` cut into plain pieces and ``@name`` pieces of the mentioned people (longest names first),
    so a page links each mention to the person without ever treating the text as markup."""
    if not people:
        return [(text, None)]
    by_name = sorted(((name, uid) for uid, name in people.items() if name), key=lambda p: -len(p[0]))
    if not by_name:
        return [(text, None)]
    pattern = re.compile("@(" + "|".join(re.escape(name) for name, _ in by_name) + ")")
    ids = {name: uid for name, uid in by_name}
    out: list[tuple[str, int | None]] = []
    last = 0
    for m in pattern.finditer(text):
        if m.start() > last:
            out.append((text[last : m.start()], None))
        out.append((m.group(0), ids[m.group(1)]))
        last = m.end()
    if last < len(text):
        out.append((text[last:], None))
    return out


# --- likes and comments --------------------------------------------------------------------------


async def like(session: AsyncSession, user: User, post_id: int, liked: bool) -> FeedPost:
    """Like (or unlike) a post; repeating is a no-op. The count moves by a conditional update."""
    post, _ = await readable_post(session, user, post_id)
    existing = await session.scalar(
        select(FeedLike).where(FeedLike.post_id == post_id, FeedLike.user_id == user.id)
    )
    if liked and existing is None:
        try:
            async with session.begin_nested():
                session.add(FeedLike(post_id=post_id, user_id=user.id, created_at=utcnow()))
        except IntegrityError:
            return post
        await session.execute(
            update(FeedPost).where(FeedPost.id == post_id).values(like_count=FeedPost.like_count + 1)
        )
        record_event(
            session,
            POST_LIKED,
            actor_id=user.id,
            subjects=Subjects(user_id=user.id, community_id=post.community_id),
            payload={"post_id": post_id},
        )
    elif not liked and existing is not None:
        await session.delete(existing)
        await session.execute(
            update(FeedPost)
            .where(FeedPost.id == post_id, FeedPost.like_count > 0)
            .values(like_count=FeedPost.like_count - 1)
        )
        record_event(
            session,
            POST_UNLIKED,
            actor_id=user.id,
            subjects=Subjects(user_id=user.id, community_id=post.community_id),
            payload={"post_id": post_id},
        )
    await session.flush()
    await session.refresh(post)
    return post


async def active_mute(session: AsyncSession, user_id: int) -> FeedMute | None:
    return await session.scalar(
        select(FeedMute)
        .where(FeedMute.user_id == user_id, FeedMute.until > utcnow())
        .order_by(FeedMute.until.desc())
        .limit(1)
    )


async def add_comment(
    session: AsyncSession, runtime: Any, user: User, post_id: int, text: str
) -> FeedComment:
    """A neighbour's comment: the live room's moderation (sensitive words refused, 5 per 10 s per user,
    muted users refused); staff are exempt from the rate limit."""
    post, s = await readable_post(session, user, post_id)
    text = clean_text(text, limit=MAX_COMMENT_CHARS, multiline=False)
    if not s.can_moderate:
        mute = await active_mute(session, user.id)
        if mute is not None:
            raise MutedInFeed("you are muted in the community feeds for now", until=mute.until.isoformat())
    await refuse_sensitive(session, runtime, text)
    if not s.can_moderate:
        count, retry = await count_hit(session, f"feed.comment:{user.id}", window_seconds=COMMENT_RATE_WINDOW)
        if count > COMMENT_RATE_LIMIT:
            raise TooManyRequests("you are commenting too fast; wait a few seconds", retry_after=retry)
    comment = FeedComment(post_id=post_id, user_id=user.id, text=text, created_at=utcnow())
    session.add(comment)
    await session.flush()
    await session.execute(
        update(FeedPost).where(FeedPost.id == post_id).values(comment_count=FeedPost.comment_count + 1)
    )
    record_event(
        session,
        COMMENT_POSTED,
        actor_id=user.id,
        subjects=Subjects(user_id=user.id, community_id=post.community_id),
        payload={"post_id": post_id, "comment_id": comment.id},
    )
    await session.flush()
    return comment


async def delete_comment(session: AsyncSession, user: User, comment_id: int) -> FeedComment:
    comment = await session.get(FeedComment, comment_id)
    if comment is None or comment.deleted_at is not None:
        raise CommentNotFound(f"no comment {comment_id}")
    post, s = await readable_post(session, user, comment.post_id)
    if not (s.can_moderate or comment.user_id == user.id):
        raise Forbidden("only its author or the community's staff can remove a comment")
    comment.deleted_at = utcnow()
    await session.execute(
        update(FeedPost)
        .where(FeedPost.id == post.id, FeedPost.comment_count > 0)
        .values(comment_count=FeedPost.comment_count - 1)
    )
    record_event(
        session,
        COMMENT_DELETED,
        actor_id=user.id,
        subjects=Subjects(community_id=post.community_id),
        payload={"comment_id": comment_id, "post_id": post.id},
    )
    await session.flush()
    return comment


async def mute_user(
    session: AsyncSession, actor: User, user_id: int, *, minutes: int, reason: str = ""
) -> FeedMute:
    """Operators keep a neighbour from commenting in the feeds for ``minutes``; staff cannot be muted."""
    if not actor.has_role(Role.operator):
        raise Forbidden("only operators mute in the feeds")
    target = await session.get(User, user_id)
    if target is None:
        raise NotFound(f"no user {user_id}")
    if target.has_role(Role.operator, Role.host):
        raise Forbidden("staff cannot be muted")
    if not 1 <= minutes <= MAX_MUTE_MINUTES:
        raise InvalidPost(f"a mute lasts 1 to {MAX_MUTE_MINUTES} minutes", field="minutes")
    mute = FeedMute(
        user_id=user_id,
        until=utcnow() + timedelta(minutes=minutes),
        reason=reason[:120],
        created_by_id=actor.id,
    )
    session.add(mute)
    record_event(
        session,
        USER_MUTED,
        actor_id=actor.id,
        subjects=Subjects(user_id=user_id),
        payload={"minutes": minutes},
    )
    await session.flush()
    return mute


# --- views ---------------------------------------------------------------------------------------


async def record_views(session: AsyncSession, user: User, posts: Sequence[FeedPost]) -> int:
    """Count an impression of each post and, the first time this neighbour sees it, a distinct view
    (``feed.post_viewed``); staff's views do not count toward reach. Returns the new distinct views."""
    if not posts or user.has_role(Role.operator, Role.host):
        return 0
    ids = [p.id for p in posts]
    await session.execute(
        update(FeedPost).where(FeedPost.id.in_(ids)).values(view_count=FeedPost.view_count + 1)
    )
    viewer = f"u:{user.id}"
    seen = set(
        (
            await session.scalars(
                select(FeedView.post_id).where(FeedView.viewer == viewer, FeedView.post_id.in_(ids))
            )
        ).all()
    )
    added = 0
    for post in posts:
        if post.id in seen:
            continue
        try:
            async with session.begin_nested():
                session.add(
                    FeedView(
                        post_id=post.id,
                        viewer=viewer,
                        user_id=user.id,
                        community_id=post.community_id,
                        campaign_id=post.campaign_id,
                        created_at=utcnow(),
                    )
                )
        except IntegrityError:
            continue
        record_event(
            session,
            POST_VIEWED,
            actor_id=user.id,
            subjects=Subjects(user_id=user.id, community_id=post.community_id, session_id=post.session_id),
            payload={"post_id": post.id, "campaign_id": post.campaign_id},
        )
        added += 1
    await session.flush()
    return added


# --- tasters -------------------------------------------------------------------------------------


async def invite_taster(session: AsyncSession, actor: User, community_id: int, user_id: int) -> FeedTaster:
    """Operators invite a neighbour as a community's taster (试吃官); inviting twice is a 409."""
    if not actor.has_role(Role.operator):
        raise Forbidden("only operators invite tasters")
    await open_community(session, community_id)
    if await session.get(User, user_id) is None:
        raise NotFound(f"no user {user_id}")
    existing = await session.scalar(
        select(FeedTaster).where(FeedTaster.community_id == community_id, FeedTaster.user_id == user_id)
    )
    if existing is not None:
        raise AlreadyTaster("already a taster of this community")
    row = FeedTaster(community_id=community_id, user_id=user_id, invited_by_id=actor.id, created_at=utcnow())
    session.add(row)
    record_event(
        session,
        TASTER_INVITED,
        actor_id=actor.id,
        subjects=Subjects(user_id=user_id, community_id=community_id),
    )
    await session.flush()
    await inbox.notify(
        session,
        user_id=user_id,
        kind="feed_taster",
        message=Message("community.inbox.taster"),
        link=f"/c/{community_id}",
        dedupe_key=f"feed.taster:{community_id}",
    )
    return row


async def tasters_of(session: AsyncSession, community_ids: Sequence[int]) -> list[FeedTaster]:
    if not community_ids:
        return []
    return list(
        (
            await session.scalars(
                select(FeedTaster)
                .where(FeedTaster.community_id.in_(list(community_ids)))
                .order_by(FeedTaster.id)
            )
        ).all()
    )


async def member_count(session: AsyncSession, community_id: int) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(Membership).where(Membership.community_id == community_id)
        )
        or 0
    )


async def tasters_of_user(session: AsyncSession, user_id: int) -> list[FeedTaster]:
    return list((await session.scalars(select(FeedTaster).where(FeedTaster.user_id == user_id))).all())


async def communities_of_users(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, int]:
    """Each user's community (members only), for counting things per community."""
    if not user_ids:
        return {}
    rows = (
        await session.execute(
            select(Membership.user_id, Membership.community_id).where(Membership.user_id.in_(list(user_ids)))
        )
    ).all()
    return {u: c for u, c in rows}


async def led_community(session: AsyncSession, user_id: int) -> int | None:
    """The community of a pickup point this leader runs (the first, if several)."""
    return await session.scalar(
        select(PickupPoint.community_id)
        .where(PickupPoint.leader_id == user_id, PickupPoint.archived_at.is_(None))
        .order_by(PickupPoint.id)
        .limit(1)
    )
