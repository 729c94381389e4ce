"""The WeCom group-robot bridge (企业微信群机器人): a community's system and pre-heat posts also go to the
brand's WeCom group for that community, through the robot's webhook, in its documented formats:

- ``text`` {content ≤ 2048 bytes, mentioned_mobile_list} when the post @mentions people (their phones);
- ``news`` {articles: [{title ≤ 128 bytes, description ≤ 512 bytes, url, picurl}]} when it links to a
  live session (the card opens the room);
- ``markdown`` {content ≤ 4096 bytes} otherwise.

``POST {webhook}`` answers ``{"errcode": 0, "errmsg": "ok"}``; any other errcode (45009: over the limit of
20 messages a minute per robot), an HTTP error or a network failure is retried with exponential backoff,
up to ``wecom_max_attempts``. The outbox (``wecom_deliveries``) is filled by a consumer after the post's
transaction committed; each send is a durable job. The rate window is counted from the attempt log
(``wecom_attempts``: one row per request, also the delivery log operators read) while holding the robot's
row lock, so it holds across processes. A send whose commit fails may be repeated (at least once).

The webhook URL carries the robot's key, a secret: it is validated against ``wecom_webhook_base`` (WeCom's
in production, a local receiver in tests), stored, and only ever shown masked.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community.feed.models import FeedPost, WecomAttempt, WecomDelivery, WecomRobot
from linli.community.feed.posts import POST_PUBLISHED, mentions_of
from linli.community.models import Community
from linli.core.clock import as_utc, utcnow
from linli.core.config import Settings
from linli.core.consumers import Consumer
from linli.core.errors import Forbidden, NotFound, Unprocessable
from linli.core.events import Event, Subjects, record_event
from linli.core.jobs import Job, JobHandler, schedule_job
from linli.identity.models import Role, User

log = logging.getLogger(__name__)

SEND_JOB = "community.wecom_send"
CONSUMER = "community.wecom_bridge"
ROBOT_SET, ROBOT_REMOVED = "feed.wecom_robot_set", "feed.wecom_robot_removed"
PENDING, SENT, FAILED = "pending", "sent", "failed"
RATE_LIMITED = 45009
WINDOW = timedelta(seconds=60)
_KEY = re.compile(r"^[A-Za-z0-9-]{8,64}$")


class InvalidWebhook(Unprocessable):
    pass


class RobotNotFound(NotFound):
    pass


# --- the robot -----------------------------------------------------------------------------------


def webhook_key(url: str, settings: Settings) -> str:
    """The robot's key, if ``url`` is a robot webhook under the configured base (else 422)."""
    prefix = settings.wecom_webhook_base.rstrip("?") + "?key="
    url = (url or "").strip()
    if not url.startswith(prefix):
        raise InvalidWebhook(f"a WeCom group robot webhook starts with {prefix}", field="webhook_url")
    key = url[len(prefix) :]
    if not _KEY.match(key):
        raise InvalidWebhook("the webhook's key is 8 to 64 letters, digits or dashes", field="webhook_url")
    return key


def masked(url: str) -> str:
    """The webhook as pages and APIs show it: its key cut to its first and last four characters."""
    base, _, key = url.partition("?key=")
    return f"{base}?key={key[:4]}…{key[-4:]}" if len(key) > 8 else f"{base}?key=…"


def _require_operator(actor: User) -> None:
    if not actor.has_role(Role.operator):
        raise Forbidden("only operators manage WeCom robots")


async def robot_of(session: AsyncSession, community_id: int) -> WecomRobot | None:
    return await session.scalar(select(WecomRobot).where(WecomRobot.community_id == community_id))


async def set_robot(
    session: AsyncSession,
    actor: User,
    community_id: int,
    *,
    webhook_url: str | None,
    enabled: bool,
    settings: Settings,
) -> WecomRobot:
    """Save a community's robot (operators). ``webhook_url`` None keeps the stored one (so a form that
    never shows the secret can still switch the robot on or off)."""
    _require_operator(actor)
    community = await session.get(Community, community_id)
    if community is None:
        raise RobotNotFound(f"no community {community_id}")
    robot = await robot_of(session, community_id)
    if webhook_url:
        webhook_key(webhook_url, settings)
    elif robot is None:
        raise InvalidWebhook("enter the robot's webhook URL", field="webhook_url")
    if robot is None:
        robot = WecomRobot(community_id=community_id, webhook_url=webhook_url.strip() if webhook_url else "")
        session.add(robot)
    elif webhook_url:
        robot.webhook_url = webhook_url.strip()
    robot.enabled = enabled
    robot.updated_by_id = actor.id
    robot.updated_at = utcnow()
    record_event(
        session,
        ROBOT_SET,
        actor_id=actor.id,
        subjects=Subjects(community_id=community_id),
        payload={"enabled": enabled, "url_changed": bool(webhook_url)},
    )
    await session.flush()
    return robot


async def remove_robot(session: AsyncSession, actor: User, community_id: int) -> bool:
    _require_operator(actor)
    robot = await robot_of(session, community_id)
    if robot is None:
        return False
    robot.enabled = False
    robot.webhook_url = ""
    record_event(session, ROBOT_REMOVED, actor_id=actor.id, subjects=Subjects(community_id=community_id))
    await session.flush()
    return True


# --- messages ------------------------------------------------------------------------------------


def clip_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, never inside a character."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", errors="ignore") + "…"


def message_for(
    post: FeedPost, *, community_name: str, phones: list[str], public_base_url: str
) -> dict[str, Any]:
    """The robot message for a post (see the module docstring for which format when)."""
    base = public_base_url.rstrip("/")
    if phones:
        content = post.text
        if post.session_id:
            content += f"\n{base}/live/{post.session_id}"
        return {
            "msgtype": "text",
            "text": {"content": clip_bytes(content, 2048), "mentioned_mobile_list": phones},
        }
    if post.session_id:
        article: dict[str, Any] = {
            "title": clip_bytes(post.session_title or post.text.split("\n", 1)[0], 128),
            "description": clip_bytes(post.text, 512),
            "url": f"{base}/live/{post.session_id}",
        }
        if post.image_path:
            article["picurl"] = f"{base}/media/{post.image_path}"
        return {"msgtype": "news", "news": {"articles": [article]}}
    content = f"**{community_name}**\n" + "\n".join(f"> {line}" for line in post.text.split("\n"))
    content += f"\n[查看社区动态]({base}/c/{post.community_id})"
    return {"msgtype": "markdown", "markdown": {"content": clip_bytes(content, 4096)}}


async def enqueue(
    session: AsyncSession,
    robot: WecomRobot,
    body: dict[str, Any],
    *,
    dedupe_key: str,
    post_id: int | None = None,
) -> WecomDelivery:
    """Put a message in the robot's outbox and schedule its send now (a keyed job: enqueuing the same
    ``dedupe_key`` twice sends once)."""
    existing = await session.scalar(select(WecomDelivery).where(WecomDelivery.dedupe_key == dedupe_key))
    if existing is not None:
        return existing
    now = utcnow()
    delivery = WecomDelivery(
        robot_id=robot.id,
        post_id=post_id,
        msgtype=body["msgtype"],
        body=body,
        status=PENDING,
        attempts=0,
        next_attempt_at=now,
        last_error="",
        dedupe_key=dedupe_key,
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(delivery)
    except IntegrityError:
        winner = await session.scalar(select(WecomDelivery).where(WecomDelivery.dedupe_key == dedupe_key))
        if winner is None:
            raise
        return winner
    await schedule_job(session, SEND_JOB, now, {"delivery_id": delivery.id}, key=f"{SEND_JOB}:{delivery.id}")
    return delivery


async def _on_published(session: AsyncSession, event: Event, settings: Settings) -> None:
    payload = event.payload or {}
    if not payload.get("bridge") or not isinstance(payload.get("post_id"), int):
        return
    post = await session.get(FeedPost, payload["post_id"])
    if post is None or post.deleted_at is not None:
        return
    robot = await robot_of(session, post.community_id)
    if robot is None or not robot.enabled or not robot.webhook_url:
        return
    community = await session.get(Community, post.community_id)
    mentioned = (await mentions_of(session, [post.id])).get(post.id, [])
    phones = []
    if mentioned:
        phones = list((await session.scalars(select(User.phone).where(User.id.in_(mentioned)))).all())
    body = message_for(
        post,
        community_name=community.name if community else "",
        phones=phones,
        public_base_url=settings.public_base_url,
    )
    await enqueue(session, robot, body, dedupe_key=f"post:{post.id}", post_id=post.id)


def bridge_consumer(settings: Settings) -> Consumer:
    async def handler(session: AsyncSession, event: Event) -> None:
        await _on_published(session, event, settings)

    return Consumer(name=CONSUMER, handler=handler, types=frozenset({POST_PUBLISHED}), from_beginning=False)


# --- sending -------------------------------------------------------------------------------------


async def _lock_robot(session: AsyncSession, robot_id: int) -> WecomRobot | None:
    query = select(WecomRobot).where(WecomRobot.id == robot_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return await session.scalar(query.execution_options(populate_existing=True))


async def window_use(session: AsyncSession, robot_id: int, now: datetime) -> tuple[int, datetime | None]:
    """Requests made to the robot in the minute before ``now``, and the oldest of them."""
    count, oldest = (
        await session.execute(
            select(func.count(), func.min(WecomAttempt.attempted_at)).where(
                WecomAttempt.robot_id == robot_id, WecomAttempt.attempted_at > now - WINDOW
            )
        )
    ).one()
    return int(count or 0), as_utc(oldest) if oldest is not None else None


def backoff(settings: Settings, attempts: int) -> timedelta:
    return timedelta(seconds=min(settings.wecom_retry_base_seconds * 2 ** (attempts - 1), 3600))


@dataclass(frozen=True)
class Slot:
    """A request the robot's minute has room for, taken (its attempt row counts in the window)."""

    delivery_id: int
    attempt_id: int
    robot_id: int
    url: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    http_status: int | None
    errcode: int | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.http_status == 200 and self.errcode == 0


async def claim_slot(
    session: AsyncSession, delivery_id: int, *, settings: Settings, now: datetime
) -> Slot | str:
    """Take a place in the robot's minute for one pending delivery (under the robot's row lock), or defer
    it to when the minute has room (``deferred``); ``skipped`` / ``failed`` when there is nothing to send."""
    delivery = await session.get(WecomDelivery, delivery_id, populate_existing=True)
    if delivery is None or delivery.status != PENDING:
        return "skipped"
    robot = await _lock_robot(session, delivery.robot_id)
    if robot is None or not robot.enabled or not robot.webhook_url:
        delivery.status, delivery.last_error = FAILED, "the robot was removed or switched off"
        await session.flush()
        return FAILED
    used, oldest = await window_use(session, robot.id, now)
    if used >= settings.wecom_rate_per_minute:
        at = (oldest or now) + WINDOW + timedelta(milliseconds=10)
        delivery.next_attempt_at = at
        await schedule_job(session, SEND_JOB, at, {"delivery_id": delivery.id})
        await session.flush()
        return "deferred"
    attempt = WecomAttempt(
        delivery_id=delivery.id, robot_id=robot.id, attempted_at=now, outcome="sending", detail=""
    )
    session.add(attempt)
    await session.flush()
    return Slot(delivery.id, attempt.id, robot.id, robot.webhook_url, dict(delivery.body))


async def post_message(
    slot: Slot, *, settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> Answer:
    """The request itself (no database): WeCom's answer, an HTTP error, or the network failure."""
    try:
        async with httpx.AsyncClient(timeout=settings.wecom_timeout_seconds, transport=transport) as client:
            response = await client.post(slot.url, json=slot.body)
    except httpx.HTTPError as exc:
        return Answer(None, None, f"{type(exc).__name__}: {exc}"[:500])
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("errcode"), int):
        return Answer(response.status_code, answer["errcode"], str(answer.get("errmsg", ""))[:500])
    return Answer(response.status_code, None, f"unexpected answer: {response.text[:200]}")


async def settle(
    session: AsyncSession, slot: Slot, answer: Answer, *, settings: Settings, now: datetime
) -> str:
    """Log the request's answer; on failure schedule a retry after an exponential backoff (a minute at
    least after 45009), or give up after ``wecom_max_attempts``. Returns ``sent``, ``retry`` or ``failed``."""
    attempt = await session.get(WecomAttempt, slot.attempt_id)
    delivery = await session.get(WecomDelivery, slot.delivery_id, populate_existing=True)
    assert attempt is not None
    assert delivery is not None
    attempt.http_status, attempt.errcode, attempt.detail = answer.http_status, answer.errcode, answer.detail
    attempt.outcome = SENT if answer.ok else "error"
    delivery.attempts += 1
    if answer.ok:
        delivery.status, delivery.sent_at, delivery.last_error = SENT, now, ""
        await session.flush()
        return SENT
    delivery.last_error = answer.detail or f"HTTP {answer.http_status}"
    if delivery.attempts >= settings.wecom_max_attempts:
        delivery.status = FAILED
        await session.flush()
        log.warning(
            "WeCom delivery %s given up after %s attempts: %s", delivery.id, delivery.attempts, answer.detail
        )
        return FAILED
    wait = backoff(settings, delivery.attempts)
    if answer.errcode == RATE_LIMITED:
        wait = max(wait, WINDOW)
    delivery.next_attempt_at = now + wait
    await schedule_job(session, SEND_JOB, delivery.next_attempt_at, {"delivery_id": delivery.id})
    await session.flush()
    return "retry"


async def attempt_delivery(
    session: AsyncSession,
    delivery_id: int,
    *,
    settings: Settings,
    now: datetime | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> str:
    """Claim, send and settle one delivery in the caller's transaction (the job commits in between, see
    ``send_job``). Returns ``sent``, ``deferred``, ``retry``, ``failed`` or ``skipped``."""
    now = now or utcnow()
    slot = await claim_slot(session, delivery_id, settings=settings, now=now)
    if isinstance(slot, str):
        return slot
    return await settle(
        session,
        slot,
        await post_message(slot, settings=settings, transport=transport),
        settings=settings,
        now=now,
    )


def send_job(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> JobHandler:
    """``community.wecom_send``: claim a slot and commit it — the request then runs with no transaction
    open, so SQLite's write lock and PostgreSQL's robot row lock are never held over the network — then
    record the answer (committed with the job). A runner lost mid-request leaves its slot counted and the
    job is run again when its lease lapses (at least once)."""

    async def handler(session: AsyncSession, job: Job) -> None:
        delivery_id = job.payload.get("delivery_id")
        if not isinstance(delivery_id, int):
            return
        # A job never runs before its time; ``run_at`` stands for "now" when a runner catches up late.
        now = max(utcnow(), as_utc(job.run_at))
        slot = await claim_slot(session, delivery_id, settings=settings, now=now)
        if isinstance(slot, str):
            return
        await session.commit()
        answer = await post_message(slot, settings=settings, transport=transport)
        await settle(session, slot, answer, settings=settings, now=now)

    return handler


# --- the log -------------------------------------------------------------------------------------


async def deliveries(
    session: AsyncSession, *, community_id: int | None = None, limit: int = 100
) -> list[tuple[WecomDelivery, WecomRobot]]:
    query = select(WecomDelivery, WecomRobot).join(WecomRobot, WecomRobot.id == WecomDelivery.robot_id)
    if community_id is not None:
        query = query.where(WecomRobot.community_id == community_id)
    rows = (await session.execute(query.order_by(WecomDelivery.id.desc()).limit(limit))).all()
    return [(d, r) for d, r in rows]


async def attempts_of(session: AsyncSession, delivery_ids: list[int]) -> dict[int, list[WecomAttempt]]:
    if not delivery_ids:
        return {}
    rows = (
        await session.scalars(
            select(WecomAttempt).where(WecomAttempt.delivery_id.in_(delivery_ids)).order_by(WecomAttempt.id)
        )
    ).all()
    out: dict[int, list[WecomAttempt]] = {}
    for a in rows:
        out.setdefault(a.delivery_id, []).append(a)
    return out


async def send_test(session: AsyncSession, actor: User, community_id: int) -> WecomDelivery:
    """Operators check a robot: a markdown test message through the same outbox."""
    _require_operator(actor)
    robot = await robot_of(session, community_id)
    if robot is None or not robot.webhook_url:
        raise RobotNotFound("this community has no WeCom robot")
    now = utcnow()
    body = {"msgtype": "markdown", "markdown": {"content": f"**邻里 Linli** 群机器人连接测试 {now:%H:%M:%S}"}}
    return await enqueue(session, robot, body, dedupe_key=f"test:{robot.id}:{now.timestamp()}")
