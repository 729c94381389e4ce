"""The WeCom group-robot bridge against a local receiver that checks the documented request shape: the
three message formats, retries with exponential backoff, the 20-a-minute rate limit per robot (counted
in the database, so it holds for another process), the delivery log, and the secret webhook."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from linli import community
from linli.community.feed import posts, wecom
from linli.community.feed.models import WecomAttempt, WecomDelivery, WecomRobot
from linli.core.clock import utcnow
from linli.core.config import Settings
from linli.core.consumers import ConsumerRegistry, drain, run_consumer_once
from linli.core.db import Database
from linli.core.hub import LocalHub
from linli.core.jobs import PENDING, Job, run_due_jobs
from linli.core.runtime import Runtime
from tests.community.feedkit import Place, make_place
from tests.community.wecom_receiver import Receiver, running_receiver, shape_errors
from tests.factories import Caller


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def receiver():
    with running_receiver() as r:
        yield r


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr("linli.community.feed.wecom.utcnow", c)
    return c


def _runtime(settings: Settings, receiver: Receiver) -> Runtime:
    configured = settings.model_copy(
        update={"wecom_webhook_base": receiver.base, "wecom_retry_base_seconds": 5.0}
    )
    rt = Runtime(settings=configured, db=Database(settings.database_url), hub=LocalHub())
    community.register_background(rt)
    return rt


async def _robot(db: Database, place: Place, url: str) -> WecomRobot:
    async with db.sessionmaker() as session:
        robot = WecomRobot(community_id=place.community.id, webhook_url=url, enabled=True)
        session.add(robot)
        await session.commit()
        return robot


async def _publish(rt: Runtime, place: Place, texts: list[str], **extra: object) -> None:
    """System posts (bridged), then the bridge consumer moves them into the outbox."""
    consumer = rt.consumers.consumers[wecom.CONSUMER]
    await run_consumer_once(rt.db, consumer)  # its cursor starts at the end of the log
    async with rt.db.sessionmaker() as session:
        for text in texts:
            await posts.publish_post(
                session,
                community_id=place.community.id,
                text=text,
                kind="system",
                bridge=True,
                **extra,  # type: ignore[arg-type]
            )
        await session.commit()
    await drain(rt.db, ConsumerRegistry({consumer.name: consumer}))


async def _deliveries(db: Database) -> list[WecomDelivery]:
    async with db.sessionmaker() as session:
        return list((await session.scalars(select(WecomDelivery).order_by(WecomDelivery.id))).all())


async def _attempts(db: Database) -> list[WecomAttempt]:
    async with db.sessionmaker() as session:
        return list((await session.scalars(select(WecomAttempt).order_by(WecomAttempt.id))).all())


class TestFormats:
    async def test_markdown_text_with_mobiles_and_news_card_in_the_documented_shape(
        self, settings: Settings, db: Database, receiver: Receiver, clock: Clock
    ) -> None:
        place = await make_place(db, nicknames=("张哥",))
        rt = _runtime(settings, receiver)
        try:
            await _robot(rt.db, place, receiver.webhook)
            await _publish(rt, place, ["【成团】梧桐苑拼团成团啦!"])
            await _publish(
                rt, place, ["恭喜@张哥 成为推荐官"], mention_ids=[place.neighbours[0].user.id], dedupe_key="h"
            )
            await _publish(
                rt,
                place,
                ["有件春天的事…" + "很长" * 400],
                session_id=42,
                session_title="春日青团节",
                dedupe_key="t",
            )
            assert await run_due_jobs(rt.db, rt.jobs, now=clock.now) == 3
        finally:
            await rt.db.dispose()
        assert receiver.rejected == []
        markdown, text, news = receiver.requests
        assert markdown["msgtype"] == "markdown"
        assert markdown["markdown"]["content"].startswith(
            f"**{place.community.name}**\n> 【成团】梧桐苑拼团成团啦!"
        )
        assert text == {
            "msgtype": "text",
            "text": {
                "content": "恭喜@张哥 成为推荐官",
                "mentioned_mobile_list": [place.neighbours[0].user.phone],
            },
        }
        [article] = news["news"]["articles"]
        assert article["title"] == "春日青团节"
        assert article["url"] == f"{settings.public_base_url}/live/42"
        assert len(article["description"].encode()) <= 512
        assert [d.status for d in await _deliveries(db)] == ["sent", "sent", "sent"]

    def test_the_receiver_refuses_what_wecom_refuses(self) -> None:
        assert shape_errors({"msgtype": "text", "text": {"content": "x" * 2049}})
        assert shape_errors({"msgtype": "news", "news": {"articles": []}})
        assert shape_errors(
            {"msgtype": "markdown", "markdown": {"content": "ok", "mentioned_mobile_list": ["1"]}}
        )
        assert shape_errors({"msgtype": "image"})
        assert not shape_errors({"msgtype": "markdown", "markdown": {"content": "ok"}})


class TestDelivery:
    async def test_failures_are_retried_with_exponential_backoff_and_logged(
        self, settings: Settings, db: Database, receiver: Receiver, clock: Clock
    ) -> None:
        place = await make_place(db)
        receiver.script = [("http", 502), ("errcode", -1)]
        rt = _runtime(settings, receiver)
        try:
            await _robot(rt.db, place, receiver.webhook)
            await _publish(rt, place, ["明早 8 点到货"])
            t0 = clock.now
            assert await run_due_jobs(rt.db, rt.jobs, now=t0) == 1  # HTTP 502
            [d] = await _deliveries(rt.db)
            assert (d.status, d.attempts, d.next_attempt_at) == ("pending", 1, t0 + timedelta(seconds=5))
            clock.now = t0 + timedelta(seconds=4)
            assert await run_due_jobs(rt.db, rt.jobs, now=clock.now) == 0  # not before its backoff
            clock.now = t0 + timedelta(seconds=5)
            assert await run_due_jobs(rt.db, rt.jobs, now=clock.now) == 1  # errcode -1 (system busy)
            [d] = await _deliveries(rt.db)
            assert (d.status, d.attempts, d.next_attempt_at) == ("pending", 2, t0 + timedelta(seconds=15))
            clock.now = t0 + timedelta(seconds=15)
            assert await run_due_jobs(rt.db, rt.jobs, now=clock.now) == 1
        finally:
            await rt.db.dispose()
        [d] = await _deliveries(db)
        assert (d.status, d.attempts, d.sent_at) == ("sent", 3, t0 + timedelta(seconds=15))
        log = await _attempts(db)
        assert [(a.http_status, a.errcode, a.outcome) for a in log] == [
            (502, None, "error"),
            (200, -1, "error"),
            (200, 0, "sent"),
        ]
        assert len(receiver.requests) == 3
        assert receiver.requests[0] == receiver.requests[2]  # the same message each time

    async def test_a_delivery_gives_up_after_its_attempts(
        self, settings: Settings, db: Database, receiver: Receiver, clock: Clock
    ) -> None:
        place = await make_place(db)
        receiver.script = [("http", 500)] * 10
        rt = _runtime(settings, receiver)
        rt.settings = rt.settings.model_copy(update={"wecom_max_attempts": 3})
        rt.jobs.handlers[wecom.SEND_JOB] = wecom.send_job(rt.settings)
        try:
            await _robot(rt.db, place, receiver.webhook)
            await _publish(rt, place, ["x"])
            for _ in range(5):
                clock.now += timedelta(hours=1)
                await run_due_jobs(rt.db, rt.jobs, now=clock.now)
        finally:
            await rt.db.dispose()
        [d] = await _deliveries(db)
        assert (d.status, d.attempts) == ("failed", 3)
        assert len(receiver.requests) == 3

    async def test_twenty_a_minute_per_robot_across_processes(
        self, settings: Settings, db: Database, receiver: Receiver, clock: Clock
    ) -> None:
        place = await make_place(db)
        rt = _runtime(settings, receiver)
        t0 = clock.now
        try:
            await _robot(rt.db, place, receiver.webhook)
            await _publish(rt, place, [f"第 {i} 条" for i in range(25)])
            assert await run_due_jobs(rt.db, rt.jobs, now=t0, limit=100) == 25
        finally:
            await rt.db.dispose()
        assert len(receiver.requests) == 20
        deferred = [d for d in await _deliveries(db) if d.status == "pending"]
        assert len(deferred) == 5
        assert {d.next_attempt_at for d in deferred} == {t0 + timedelta(seconds=60, milliseconds=10)}
        # Another process, thirty seconds on: the window is counted in the database, so it waits too.
        other = _runtime(settings, receiver)
        try:
            clock.now = t0 + timedelta(seconds=30)
            async with other.db.sessionmaker() as session:
                assert (
                    await wecom.attempt_delivery(
                        session, deferred[0].id, settings=other.settings, now=clock.now
                    )
                    == "deferred"
                )
                await session.commit()
            assert len(receiver.requests) == 20
            clock.now = t0 + timedelta(seconds=61)
            assert await run_due_jobs(other.db, other.jobs, now=clock.now, limit=100) >= 5
            async with other.db.sessionmaker() as session:
                pending = (
                    await session.scalars(
                        select(Job).where(Job.kind == wecom.SEND_JOB, Job.status == PENDING)
                    )
                ).all()
        finally:
            await other.db.dispose()
        assert len(receiver.requests) == 25
        assert [d.status for d in await _deliveries(db)] == ["sent"] * 25
        assert list(pending) == []
        # Never more than 20 requests in any minute.
        times = sorted(a.attempted_at for a in await _attempts(db))
        assert all(sum(1 for t in times if s <= t < s + timedelta(seconds=60)) <= 20 for s in times)

    async def test_errcode_45009_waits_a_minute(
        self, settings: Settings, db: Database, receiver: Receiver, clock: Clock
    ) -> None:
        place = await make_place(db)
        receiver.script = [("errcode", wecom.RATE_LIMITED)]
        rt = _runtime(settings, receiver)
        try:
            await _robot(rt.db, place, receiver.webhook)
            await _publish(rt, place, ["x"])
            await run_due_jobs(rt.db, rt.jobs, now=clock.now)
        finally:
            await rt.db.dispose()
        [d] = await _deliveries(db)
        assert d.status == "pending"
        assert d.next_attempt_at == clock.now + timedelta(seconds=60)


class TestRobotSettings:
    async def test_the_webhook_is_validated_masked_and_for_operators_only(
        self, client: httpx.AsyncClient, db: Database, operator: Caller, receiver: Receiver, app
    ) -> None:
        app.state.runtime.settings = app.state.runtime.settings.model_copy(
            update={"wecom_webhook_base": receiver.base}
        )
        place = await make_place(db)
        url = f"/api/v1/admin/communities/{place.community.id}/wecom-robot"
        for bad in (
            "https://evil.example/cgi-bin/webhook/send?key=abcdefgh12",
            receiver.base + "?key=短",
            receiver.base,
        ):
            r = await client.put(url, json={"webhook_url": bad}, headers=operator.headers)
            assert r.status_code == 422, bad
        assert (
            await client.put(url, json={"webhook_url": receiver.webhook}, headers=place.leader.headers)
        ).status_code == 403
        r = await client.put(url, json={"webhook_url": receiver.webhook}, headers=operator.headers)
        assert r.status_code == 200, r.text
        assert r.json()["webhook_url_masked"] == f"{receiver.base}?key=693a…5aaa"
        for response in (
            await client.get(url, headers=operator.headers),
            await client.put(url, json={"enabled": False}, headers=operator.headers),
            await client.get("/admin/wecom", headers={**operator.headers, "accept": "text/html"}),
        ):
            assert response.status_code == 200
            assert receiver.key not in response.text
        assert (await client.get(url, headers=operator.headers)).json()["enabled"] is False
        assert (
            await client.get("/api/v1/admin/wecom/deliveries", headers=place.neighbours[0].headers)
        ).status_code == 403

    async def test_the_delivery_log_shows_each_request(
        self, client: httpx.AsyncClient, db: Database, operator: Caller, receiver: Receiver, app, clock: Clock
    ) -> None:
        rt: Runtime = app.state.runtime
        rt.settings = rt.settings.model_copy(update={"wecom_webhook_base": receiver.base})
        rt.jobs.handlers[wecom.SEND_JOB] = wecom.send_job(rt.settings)
        place = await make_place(db)
        receiver.script = [("http", 503)]
        put = await client.put(
            f"/api/v1/admin/communities/{place.community.id}/wecom-robot",
            json={"webhook_url": receiver.webhook},
            headers=operator.headers,
        )
        assert put.status_code == 200
        r = await client.post(
            f"/api/v1/admin/communities/{place.community.id}/wecom-robot/test", headers=operator.headers
        )
        assert r.status_code == 202
        await run_due_jobs(db, rt.jobs, now=clock.now)
        clock.now += timedelta(seconds=5)
        await run_due_jobs(db, rt.jobs, now=clock.now)
        [entry] = (await client.get("/api/v1/admin/wecom/deliveries", headers=operator.headers)).json()
        assert (entry["status"], entry["msgtype"], entry["attempts"]) == ("sent", "markdown", 2)
        assert [(a["http_status"], a["outcome"]) for a in entry["log"]] == [(503, "error"), (200, "sent")]
        page = await client.get("/admin/wecom", headers={**operator.headers, "accept": "text/html"})
        assert "HTTP 503" in page.text
        assert 'data-status="sent"' in page.text


class TestNoLockOverTheNetwork:
    async def test_sqlite_writers_are_not_blocked_while_a_message_is_in_flight(
        self, settings: Settings, db: Database, receiver: Receiver, clock: Clock
    ) -> None:
        if not settings.is_sqlite:
            pytest.skip("the write lock is SQLite's; PostgreSQL's robot row lock is released the same way")
        path = settings.database_url.split("///", 1)[1]
        took: list[bool] = []

        def write_meanwhile() -> None:
            conn = sqlite3.connect(path, timeout=0.5)
            try:
                conn.execute("BEGIN IMMEDIATE")  # fails with "database is locked" if the sender holds it
                conn.rollback()
                took.append(True)
            except sqlite3.OperationalError:
                took.append(False)
            finally:
                conn.close()

        receiver.on_request = write_meanwhile
        place = await make_place(db)
        rt = _runtime(settings, receiver)
        try:
            await _robot(rt.db, place, receiver.webhook)
            await _publish(rt, place, ["不占锁"])
            assert await run_due_jobs(rt.db, rt.jobs, now=clock.now) == 1
        finally:
            await rt.db.dispose()
        assert took == [True]
        assert [d.status for d in await _deliveries(db)] == ["sent"]
