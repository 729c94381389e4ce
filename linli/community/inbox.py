"""Each neighbour's in-app inbox: mentions, reminders, honours, lottery wins and order updates.

Higher domains (live, orders, referral) deliver into it with ``notify``, usually from an event consumer,
which is at-least-once: a ``dedupe_key`` makes a repeated delivery return the item already there. Only
the owner lists or marks their items; someone else's item is reported as not found.

Texts are written as a ``Message`` (a catalog key whose ``.title`` and ``.body`` entries exist in every
locale, and its parameters) and shown in the reader's locale (``shown``); the zh-CN text is kept on the
row as written, which is what items written as plain text — older ones — show in every locale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from linli.community.models import InboxItem
from linli.core.clock import utcnow
from linli.core.errors import NotFound
from linli.core.events import Subjects, record_event
from linli.core.i18n import DEFAULT_LOCALE, Message, catalog

# The community domain's own inbox texts (feed mentions, tasters, guesses, reviews) are written wherever
# its consumers and timers run, pages or not.
catalog.load_dir(Path(__file__).parent / "locales")

INBOX_NOTIFIED = "inbox.notified"  # payload: {"item_id", "kind", "dedupe_key"}
INBOX_READ = "inbox.read"  # payload: {"item_ids": [...]} or {"all": true, "count"}

MAX_PAGE_SIZE = 50
TITLE_MAX, BODY_MAX, LINK_MAX, KIND_MAX, KEY_MAX, MESSAGE_KEY_MAX = 120, 500, 255, 32, 191, 80


class InboxItemNotFound(NotFound):
    pass


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _texts(
    title: str, body: str, message: Message | None
) -> tuple[str, str, str | None, dict[str, Any] | None]:
    """What a row stores: the zh-CN title and body (rendered from ``message`` when given), and the
    message's key and parameters to render it again in the reader's locale."""
    if message is None:
        return _clip(title, TITLE_MAX), _clip(body, BODY_MAX), None, None
    return (
        _clip(message.child("title").render(DEFAULT_LOCALE), TITLE_MAX),
        _clip(message.child("body").render(DEFAULT_LOCALE), BODY_MAX),
        message.key[:MESSAGE_KEY_MAX],
        message.to_json(),
    )


@dataclass(frozen=True)
class ShownItem:
    """An inbox item as its reader sees it, in their locale."""

    id: int
    kind: str
    title: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None


def shown(item: InboxItem, locale: str) -> ShownItem:
    """The item's title and body in ``locale``: rendered from its message key, or — for an item written
    as plain text, or one whose key or parameters the catalog no longer knows — the text stored."""
    title, body = item.title, item.body
    if item.message_key:
        message = Message.from_json(item.message_key, item.message_params)
        title = _clip(catalog.render(locale, message.child("title"), fallback=item.title), TITLE_MAX)
        body = _clip(catalog.render(locale, message.child("body"), fallback=item.body), BODY_MAX)
    return ShownItem(
        id=item.id,
        kind=item.kind,
        title=title,
        body=body,
        link=item.link,
        created_at=item.created_at,
        read_at=item.read_at,
    )


async def _by_key(session: AsyncSession, user_id: int, dedupe_key: str) -> InboxItem | None:
    return await session.scalar(
        select(InboxItem).where(InboxItem.user_id == user_id, InboxItem.dedupe_key == dedupe_key)
    )


async def notify(
    session: AsyncSession,
    *,
    user_id: int,
    kind: str,
    title: str = "",
    body: str = "",
    message: Message | None = None,
    link: str | None = None,
    dedupe_key: str | None = None,
) -> InboxItem:
    """Put an item in ``user_id``'s inbox and append ``inbox.notified``; flushes, never commits. Its
    text is ``message`` (shown in the reader's locale) or, for text that is not from the catalog, the
    plain ``title`` and ``body``.

    With a ``dedupe_key`` already used for this user, nothing is written and the existing item is
    returned (the unique ``(user_id, dedupe_key)`` constraint settles a race between two deliveries).
    Over-long text is clipped rather than refused: a reminder must not fail on a long session title."""
    if dedupe_key is not None:
        dedupe_key = dedupe_key[:KEY_MAX]
        existing = await _by_key(session, user_id, dedupe_key)
        if existing is not None:
            return existing
    title, body, message_key, message_params = _texts(title, body, message)
    item = InboxItem(
        user_id=user_id,
        kind=kind[:KIND_MAX],
        title=title,
        body=body,
        message_key=message_key,
        message_params=message_params,
        link=link[:LINK_MAX] if link else None,
        dedupe_key=dedupe_key,
        created_at=utcnow(),
    )
    try:
        async with session.begin_nested():
            session.add(item)
    except IntegrityError:
        if dedupe_key is None:
            raise
        winner = await _by_key(session, user_id, dedupe_key)
        if winner is None:
            raise
        return winner
    record_event(
        session,
        INBOX_NOTIFIED,
        subjects=Subjects(user_id=user_id),
        payload={"item_id": item.id, "kind": item.kind, "dedupe_key": dedupe_key},
    )
    await session.flush()
    return item


async def notify_many(
    session: AsyncSession,
    *,
    user_ids: list[int],
    kind: str,
    title: str = "",
    body: str = "",
    message: Message | None = None,
    link: str | None = None,
    dedupe_key: str,
    chunk: int = 500,
) -> int:
    """``notify`` for many neighbours at once (a session's reservers): the same item for each user not
    already holding ``dedupe_key``, inserted in batches; returns how many were added. Should another
    delivery of the same key race it, the batch falls back to ``notify`` one by one."""
    dedupe_key = dedupe_key[:KEY_MAX]
    stored_title, stored_body, message_key, message_params = _texts(title, body, message)
    added = 0
    for start in range(0, len(user_ids), chunk):
        part = list(dict.fromkeys(user_ids[start : start + chunk]))
        have = set(
            (
                await session.scalars(
                    select(InboxItem.user_id).where(
                        InboxItem.dedupe_key == dedupe_key, InboxItem.user_id.in_(part)
                    )
                )
            ).all()
        )
        todo = [u for u in part if u not in have]
        if not todo:
            continue
        now = utcnow()
        items = [
            InboxItem(
                user_id=user_id,
                kind=kind[:KIND_MAX],
                title=stored_title,
                body=stored_body,
                message_key=message_key,
                message_params=message_params,
                link=link[:LINK_MAX] if link else None,
                dedupe_key=dedupe_key,
                created_at=now,
            )
            for user_id in todo
        ]
        try:
            async with session.begin_nested():
                session.add_all(items)
        except IntegrityError:
            raced = set(
                (
                    await session.scalars(
                        select(InboxItem.user_id).where(
                            InboxItem.dedupe_key == dedupe_key, InboxItem.user_id.in_(todo)
                        )
                    )
                ).all()
            )
            for user_id in todo:
                if user_id not in raced:
                    await notify(
                        session,
                        user_id=user_id,
                        kind=kind,
                        title=title,
                        body=body,
                        message=message,
                        link=link,
                        dedupe_key=dedupe_key,
                    )
                    added += 1
            continue
        for item in items:
            record_event(
                session,
                INBOX_NOTIFIED,
                subjects=Subjects(user_id=item.user_id),
                payload={"item_id": item.id, "kind": item.kind, "dedupe_key": dedupe_key},
            )
        await session.flush()
        added += len(items)
    return added


async def list_items(
    session: AsyncSession,
    *,
    user_id: int,
    before_id: int | None = None,
    limit: int = 20,
    unread_only: bool = False,
) -> list[InboxItem]:
    """The owner's items, newest first; ``before_id`` pages past the last item already seen."""
    query = select(InboxItem).where(InboxItem.user_id == user_id)
    if before_id is not None:
        query = query.where(InboxItem.id < before_id)
    if unread_only:
        query = query.where(InboxItem.read_at.is_(None))
    query = query.order_by(InboxItem.id.desc()).limit(max(1, min(limit, 4 * MAX_PAGE_SIZE)))
    return list((await session.scalars(query)).all())


async def unread_count(session: AsyncSession, *, user_id: int) -> int:
    """How many of the owner's items are unread (one indexed count; the page shell runs it per render)."""
    count = await session.scalar(
        select(func.count())
        .select_from(InboxItem)
        .where(InboxItem.user_id == user_id, InboxItem.read_at.is_(None))
    )
    return int(count or 0)


async def get_item(session: AsyncSession, *, user_id: int, item_id: int) -> InboxItem:
    """One of the owner's items; another neighbour's item is not found, so ids reveal nothing."""
    item = await session.get(InboxItem, item_id)
    if item is None or item.user_id != user_id:
        raise InboxItemNotFound("this message is not in your inbox")
    return item


async def mark_read(session: AsyncSession, *, user_id: int, item_id: int) -> InboxItem:
    """Mark one of the owner's items read; marking it again changes nothing (and writes no event)."""
    item = await get_item(session, user_id=user_id, item_id=item_id)
    if item.read_at is None:
        item.read_at = utcnow()
        record_event(
            session,
            INBOX_READ,
            actor_id=user_id,
            subjects=Subjects(user_id=user_id),
            payload={"item_ids": [item.id]},
        )
        await session.flush()
    return item


async def mark_all_read(session: AsyncSession, *, user_id: int) -> int:
    """Mark every unread item of the owner read; returns how many changed."""
    result = await session.execute(
        update(InboxItem)
        .where(InboxItem.user_id == user_id, InboxItem.read_at.is_(None))
        .values(read_at=utcnow())
    )
    changed = int(result.rowcount or 0)  # type: ignore[attr-defined]
    if changed:
        record_event(
            session,
            INBOX_READ,
            actor_id=user_id,
            subjects=Subjects(user_id=user_id),
            payload={"all": True, "count": changed},
        )
        await session.flush()
    return changed
