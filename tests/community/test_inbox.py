"""The in-app inbox: ``notify`` (deduplicated, with its event), listing newest first, unread counts, and
marking read — each neighbour only ever sees and marks their own messages."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from linli.community import inbox
from linli.community.models import InboxItem
from linli.core.db import Database
from linli.core.events import Event
from tests.factories import Caller, make_user, make_user_with_token


async def _events(db: Database, type_: str) -> list[Event]:
    async with db.sessionmaker() as session:
        return list(
            (await session.scalars(select(Event).where(Event.type == type_).order_by(Event.id))).all()
        )


class TestNotify:
    async def test_adds_an_unread_item_and_an_event(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            user = await make_user(session)
            item = await inbox.notify(
                session, user_id=user.id, kind="mention", title="主播@了你", body="你好", link="/live/1"
            )
            await session.commit()
        assert item.id is not None
        assert item.read_at is None
        events = await _events(db, inbox.INBOX_NOTIFIED)
        assert [(e.user_id, e.payload["item_id"], e.payload["kind"]) for e in events] == [
            (user.id, item.id, "mention")
        ]

    async def test_same_dedupe_key_returns_the_first_item_and_writes_nothing(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            user = await make_user(session)
            other = await make_user(session)
            first = await inbox.notify(
                session, user_id=user.id, kind="k", title="一", body="", dedupe_key="x"
            )
            again = await inbox.notify(
                session, user_id=user.id, kind="k", title="二", body="", dedupe_key="x"
            )
            # The key is per user: the same key for someone else is their own item.
            theirs = await inbox.notify(
                session, user_id=other.id, kind="k", title="一", body="", dedupe_key="x"
            )
            await session.commit()
        # Delivered again in a later transaction (an at-least-once consumer after a crash).
        async with db.sessionmaker() as session:
            later = await inbox.notify(
                session, user_id=user.id, kind="k", title="三", body="", dedupe_key="x"
            )
            await session.commit()
        assert again.id == first.id == later.id
        assert later.title == "一"
        assert theirs.id != first.id
        assert len(await _events(db, inbox.INBOX_NOTIFIED)) == 2

    async def test_concurrent_deliveries_of_one_key_add_one_item(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            user = await make_user(session)
            await session.commit()

        async def deliver() -> int:
            async with db.sessionmaker() as session:
                item = await inbox.notify(
                    session, user_id=user.id, kind="k", title="t", body="", dedupe_key="race"
                )
                await session.commit()
                return item.id

        ids = await asyncio.gather(*(deliver() for _ in range(4)))
        assert len(set(ids)) == 1
        async with db.sessionmaker() as session:
            count = await session.scalar(select(func.count()).select_from(InboxItem))
        assert count == 1

    async def test_many_at_once_skips_those_who_have_it(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            users = [await make_user(session) for _ in range(5)]
            ids = [u.id for u in users]
            early = await inbox.notify(session, user_id=ids[0], kind="k", title="t", body="", dedupe_key="go")
            added = await inbox.notify_many(
                session, user_ids=[*ids, ids[1]], kind="k", title="t", body="b", dedupe_key="go", chunk=2
            )
            again = await inbox.notify_many(
                session, user_ids=ids, kind="k", title="t", body="b", dedupe_key="go"
            )
            await session.commit()
        assert (added, again) == (4, 0)
        async with db.sessionmaker() as session:
            rows = (await session.scalars(select(InboxItem).order_by(InboxItem.user_id))).all()
        assert [r.user_id for r in rows] == ids
        assert next(r for r in rows if r.user_id == ids[0]).id == early.id
        events = await _events(db, inbox.INBOX_NOTIFIED)
        assert sorted(e.payload["item_id"] for e in events) == sorted(r.id for r in rows)

    async def test_long_text_is_clipped_not_refused(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            user = await make_user(session)
            item = await inbox.notify(session, user_id=user.id, kind="k", title="长" * 500, body="字" * 900)
            await session.commit()
        assert len(item.title) == inbox.TITLE_MAX
        assert item.title.endswith("…")
        assert len(item.body) == inbox.BODY_MAX


class TestReading:
    async def test_newest_first_paged_and_counted(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            user = await make_user(session)
            items = [
                await inbox.notify(session, user_id=user.id, kind="k", title=f"#{n}", body="")
                for n in range(5)
            ]
            first_page = await inbox.list_items(session, user_id=user.id, limit=3)
            second_page = await inbox.list_items(
                session, user_id=user.id, before_id=first_page[-1].id, limit=3
            )
            assert [i.title for i in first_page] == ["#4", "#3", "#2"]
            assert [i.title for i in second_page] == ["#1", "#0"]
            assert await inbox.unread_count(session, user_id=user.id) == 5
            await inbox.mark_read(session, user_id=user.id, item_id=items[0].id)
            await inbox.mark_read(session, user_id=user.id, item_id=items[0].id)  # twice: no change
            assert await inbox.unread_count(session, user_id=user.id) == 4
            unread = await inbox.list_items(session, user_id=user.id, unread_only=True)
            assert items[0].id not in {i.id for i in unread}
            assert await inbox.mark_all_read(session, user_id=user.id) == 4
            assert await inbox.mark_all_read(session, user_id=user.id) == 0
            assert await inbox.unread_count(session, user_id=user.id) == 0
            await session.commit()
        read_events = await _events(db, inbox.INBOX_READ)
        assert [e.payload for e in read_events] == [{"item_ids": [items[0].id]}, {"all": True, "count": 4}]

    async def test_someone_elses_item_is_not_found(self, db: Database) -> None:
        async with db.sessionmaker() as session:
            owner = await make_user(session)
            other = await make_user(session)
            item = await inbox.notify(session, user_id=owner.id, kind="k", title="t", body="")
            with pytest.raises(inbox.InboxItemNotFound):
                await inbox.mark_read(session, user_id=other.id, item_id=item.id)
            assert await inbox.list_items(session, user_id=other.id) == []
            assert await inbox.unread_count(session, user_id=other.id) == 0
            assert await inbox.mark_all_read(session, user_id=other.id) == 0
            assert await inbox.unread_count(session, user_id=owner.id) == 1


async def _notified(db: Database, user_id: int, n: int, *, link: str | None = "/live/7") -> list[int]:
    async with db.sessionmaker() as session:
        ids = [
            (
                await inbox.notify(
                    session, user_id=user_id, kind="session_live", title=f"开播{i}", body="b", link=link
                )
            ).id
            for i in range(n)
        ]
        await session.commit()
        return ids


class TestApi:
    async def test_needs_a_login(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/api/v1/me/inbox")).status_code == 401
        assert (await client.get("/api/v1/me/inbox/unread")).status_code == 401
        assert (await client.post("/api/v1/me/inbox/read")).status_code == 401

    async def test_list_page_count_and_mark(
        self, client: httpx.AsyncClient, db: Database, customer: Caller
    ) -> None:
        ids = await _notified(db, customer.user.id, 3)
        page = (await client.get("/api/v1/me/inbox?limit=2", headers=customer.headers)).json()
        assert [i["id"] for i in page["items"]] == [ids[2], ids[1]]
        assert page["unread"] == 3
        assert page["next_before_id"] == ids[1]
        rest = (
            await client.get(f"/api/v1/me/inbox?limit=2&before_id={ids[1]}", headers=customer.headers)
        ).json()
        assert [i["id"] for i in rest["items"]] == [ids[0]]
        assert rest["next_before_id"] is None

        marked = await client.post(f"/api/v1/me/inbox/{ids[0]}/read", headers=customer.headers)
        assert marked.status_code == 200
        assert marked.json()["read_at"] is not None
        assert (await client.get("/api/v1/me/inbox/unread", headers=customer.headers)).json() == {"unread": 2}
        all_read = await client.post("/api/v1/me/inbox/read", headers=customer.headers)
        assert all_read.json() == {"marked": 2, "unread": 0}

    async def test_only_the_owner_reads_or_marks(
        self, client: httpx.AsyncClient, db: Database, customer: Caller
    ) -> None:
        [item_id] = await _notified(db, customer.user.id, 1)
        intruder = Caller(*await make_user_with_token(db))
        refused = await client.post(f"/api/v1/me/inbox/{item_id}/read", headers=intruder.headers)
        assert refused.status_code == 404
        assert refused.json()["error"] == "InboxItemNotFound"
        assert (await client.get("/api/v1/me/inbox", headers=intruder.headers)).json()["items"] == []
        await client.post("/api/v1/me/inbox/read", headers=intruder.headers)
        assert (await client.get("/api/v1/me/inbox/unread", headers=customer.headers)).json() == {"unread": 1}

    async def test_bad_ids_are_4xx(self, client: httpx.AsyncClient, customer: Caller) -> None:
        for path in ("/api/v1/me/inbox/0/read", f"/api/v1/me/inbox/{2**63}/read", "/api/v1/me/inbox/x/read"):
            assert (await client.post(path, headers=customer.headers)).status_code == 422
        assert (await client.get("/api/v1/me/inbox?limit=500", headers=customer.headers)).status_code == 422


class TestPage:
    async def test_anonymous_goes_to_login(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/inbox")
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")

    async def test_lists_and_opening_marks_read_and_follows_the_link(
        self, client: httpx.AsyncClient, db: Database, customer: Caller
    ) -> None:
        [item_id] = await _notified(db, customer.user.id, 1)
        page = await client.get("/inbox", headers=customer.headers)
        assert page.status_code == 200
        assert "开播0" in page.text
        assert 'data-unread="true"' in page.text
        assert 'data-testid="inbox-badge"' in page.text  # the shell's badge for a logged-in neighbour
        opened = await client.post(f"/inbox/{item_id}/open", headers=customer.headers)
        assert opened.status_code == 303
        assert opened.headers["location"] == "/live/7"
        assert 'data-unread="true"' not in (await client.get("/inbox", headers=customer.headers)).text

    async def test_a_foreign_link_never_redirects_away(
        self, client: httpx.AsyncClient, db: Database, customer: Caller
    ) -> None:
        [item_id] = await _notified(db, customer.user.id, 1, link="//evil.example/x")
        opened = await client.post(f"/inbox/{item_id}/open", headers=customer.headers)
        assert opened.headers["location"] == "/inbox"

    async def test_english_and_empty(self, client: httpx.AsyncClient, customer: Caller) -> None:
        page = await client.get("/inbox?lang=en", headers=customer.headers)
        assert "No messages yet" in page.text
        assert 'data-testid="inbox-tab"' in page.text


# --- property: whatever deliveries and reads arrive, the counts agree with a model -----------------------

steps = st.lists(
    st.one_of(
        st.tuples(st.just("notify"), st.sampled_from([None, "a", "b", "c"])),
        st.tuples(st.just("read"), st.integers(0, 6)),
        st.tuples(st.just("read_all"), st.just(None)),
    ),
    max_size=15,
)


async def _check(url: str, ops: list[tuple[str, object]]) -> None:
    db = Database(url, pool=False)
    try:
        async with db.sessionmaker() as session:
            user = await make_user(session)
            await session.commit()
        keys: dict[object, int] = {}
        ids: list[int] = []
        read: set[int] = set()
        for op, arg in ops:
            async with db.sessionmaker() as session:
                if op == "notify":
                    item = await inbox.notify(
                        session,
                        user_id=user.id,
                        kind="k",
                        title="t",
                        body="",
                        dedupe_key=arg,  # type: ignore[arg-type]
                    )
                    if arg is None or arg not in keys:
                        ids.append(item.id)
                        if arg is not None:
                            keys[arg] = item.id
                    else:
                        assert item.id == keys[arg]
                elif op == "read" and ids:
                    target = ids[int(arg) % len(ids)]  # type: ignore[call-overload]
                    await inbox.mark_read(session, user_id=user.id, item_id=target)
                    read.add(target)
                elif op == "read_all":
                    assert await inbox.mark_all_read(session, user_id=user.id) == len(set(ids) - read)
                    read |= set(ids)
                await session.commit()
            async with db.sessionmaker() as session:
                listed = await inbox.list_items(session, user_id=user.id, limit=100)
                assert [i.id for i in listed] == sorted(ids, reverse=True)
                assert await inbox.unread_count(session, user_id=user.id) == len(set(ids) - read)
    finally:
        await db.dispose()


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=steps)
def test_counts_follow_deliveries_and_reads(database_url: str, ops: list[tuple[str, object]]) -> None:
    asyncio.run(_check(database_url, ops))


class TestLocales:
    """Items written as a message read in their reader's locale; items written as plain text (every row
    from before) read as written in every locale."""

    async def _items(self, db: Database, user_id: int) -> dict[str, int]:
        from linli.core.i18n import Message

        async with db.sessionmaker() as session:
            keyed = await inbox.notify(
                session,
                user_id=user_id,
                kind="feed_taster",
                message=Message("community.inbox.taster"),
                dedupe_key="keyed",
            )
            nested = await inbox.notify(
                session,
                user_id=user_id,
                kind="guess_won",
                message=Message(
                    "community.inbox.guess_won",
                    {"prize": Message("community.inbox.a_prize"), "question": "几个?", "answer": "3"},
                ),
                dedupe_key="nested",
            )
            plain = await inbox.notify(
                session,
                user_id=user_id,
                kind="mention",
                title="旧消息",
                body="写成纯文本",
                dedupe_key="plain",
            )
            gone = await inbox.notify(
                session,
                user_id=user_id,
                kind="mention",
                message=Message("community.inbox.taster"),
                dedupe_key="gone",
            )
            gone.message_key = "community.inbox.no_such_message"  # a key the catalog dropped since
            await session.commit()
        return {"keyed": keyed.id, "nested": nested.id, "plain": plain.id, "gone": gone.id}

    async def test_the_same_item_reads_in_zh_cn_and_in_english(
        self, db: Database, client: httpx.AsyncClient, customer: Caller
    ) -> None:
        ids = await self._items(db, customer.user.id)
        async with db.sessionmaker() as session:
            row = await session.get(InboxItem, ids["keyed"])
        assert row is not None
        # The row keeps the zh-CN text as written, and the key to write it again.
        assert (row.title, row.message_key, row.message_params) == (
            "你被邀请成为社区试吃官",
            "community.inbox.taster",
            {},
        )

        def by_id(response: httpx.Response) -> dict[int, tuple[str, str]]:
            assert response.status_code == 200, response.text
            return {i["id"]: (i["title"], i["body"]) for i in response.json()["items"]}

        zh = by_id(await client.get("/api/v1/me/inbox", headers=customer.headers))
        en = by_id(await client.get("/api/v1/me/inbox?lang=en", headers=customer.headers))
        assert zh[ids["keyed"]][0] == "你被邀请成为社区试吃官"
        assert en[ids["keyed"]][0] == "You are invited to be a community taster"
        assert zh[ids["nested"]] == ("你猜中了!奖品", "「几个?」答案是3。")
        assert en[ids["nested"]] == ("You guessed right! a prize", "“几个?”: the answer is 3.")
        assert zh[ids["plain"]] == en[ids["plain"]] == ("旧消息", "写成纯文本")
        assert (
            zh[ids["gone"]]
            == en[ids["gone"]]
            == (
                "你被邀请成为社区试吃官",
                "新品上市前你会收到试吃任务,在社区动态里分享你的体验。",
            )
        )
        marked = await client.post(f"/api/v1/me/inbox/{ids['keyed']}/read?lang=en", headers=customer.headers)
        assert marked.json()["title"] == "You are invited to be a community taster"
        page = await client.get("/inbox?lang=en", headers={**customer.headers, "Accept": "text/html"})
        assert "You guessed right! a prize" in page.text
        assert "旧消息" in page.text
        page = await client.get("/inbox?lang=zh-CN", headers={**customer.headers, "Accept": "text/html"})
        assert "你猜中了!奖品" in page.text

    async def test_many_at_once_from_a_message(self, db: Database) -> None:
        from linli.core.i18n import Message

        async with db.sessionmaker() as session:
            users = [await make_user(session) for _ in range(3)]
            added = await inbox.notify_many(
                session,
                user_ids=[u.id for u in users],
                kind="feed_taster_task",
                message=Message("community.inbox.taster_task_default", {"session": "春日青团节"}),
                dedupe_key="task:1",
            )
            await session.commit()
            rows = (await session.scalars(select(InboxItem).order_by(InboxItem.id))).all()
        assert added == 3
        assert {(r.title, r.message_key) for r in rows} == {
            ("试吃任务:春日青团节", "community.inbox.taster_task_default")
        }
        assert {inbox.shown(r, "en").title for r in rows} == {"Tasting task: 春日青团节"}
