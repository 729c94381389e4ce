"""The stock ledger of lineup items and the per-user purchase counts: the only code that moves them.

Every move is one conditional statement the database checks atomically (and the CHECK constraints stand
behind it: ``reserved + sold <= stock`` on the item, ``units >= 0`` on the count), so no interleaving of
requests, processes or databases can oversell or go past a limit. On PostgreSQL a move locks the row it
changes until the transaction ends; callers take them in one order — the order row, then the purchase
count, then the lineup item — so two transactions never wait on each other in a circle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from linli.core.clock import utcnow
from linli.core.db import dialect_insert
from linli.live.models import LineupItem
from linli.orders.errors import LineupItemNotFound, PurchaseLimitReached, SoldOut
from linli.orders.models import PurchaseCount


class StockLedgerError(RuntimeError):
    """A release or commit found fewer units than it was told it held: a bug, never a client's doing."""


@dataclass(frozen=True, slots=True)
class StockLevel:
    stock: int
    reserved: int
    sold: int

    @property
    def left(self) -> int:
        return self.stock - self.reserved - self.sold


_left = LineupItem.stock - LineupItem.reserved - LineupItem.sold
_LEVEL = (LineupItem.stock, LineupItem.reserved, LineupItem.sold)


def _positive(qty: int) -> None:
    if qty <= 0:
        raise ValueError(f"a stock move needs a positive quantity, got {qty}")


def _sync(session: AsyncSession, item_id: int, level: StockLevel) -> None:
    """Keep a loaded item's counters equal to the row we just changed (the statements bypass the ORM)."""
    item = session.identity_map.get(identity_key(LineupItem, item_id))
    if item is not None:
        for name in ("stock", "reserved", "sold"):
            set_committed_value(item, name, getattr(level, name))


async def _move(
    session: AsyncSession, item_id: int, condition: ColumnElement[bool], values: dict[str, Any]
) -> StockLevel | None:
    """One conditional update of the item's counters; None when the condition refused it."""
    row = (
        await session.execute(
            update(LineupItem)
            .where(LineupItem.id == item_id, condition)
            .values(**values)
            .returning(*_LEVEL)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if row is None:
        return None
    level = StockLevel(*row)
    _sync(session, item_id, level)
    return level


async def stock_level(session: AsyncSession, item_id: int) -> StockLevel:
    row = (await session.execute(select(*_LEVEL).where(LineupItem.id == item_id))).one_or_none()
    if row is None:
        raise LineupItemNotFound(f"no lineup item with id {item_id}", item_id=item_id)
    return StockLevel(*row)


async def reserve_stock(session: AsyncSession, item_id: int, qty: int) -> StockLevel:
    """Hold ``qty`` units for an unpaid order: ``reserved += qty`` only where ``stock - reserved - sold >=
    qty``, in one statement; ``SoldOut`` (409) when fewer are left. Locks the item row on PostgreSQL."""
    _positive(qty)
    level = await _move(session, item_id, _left >= qty, {"reserved": LineupItem.reserved + qty})
    if level is None:
        raise sold_out(item_id, (await stock_level(session, item_id)).left, qty)
    return level


async def try_reserve_stock(session: AsyncSession, item_id: int, qty: int) -> StockLevel | None:
    """``reserve_stock`` without the refusal: the new level, or None when fewer than ``qty`` are left
    (nothing moved)."""
    _positive(qty)
    return await _move(session, item_id, _left >= qty, {"reserved": LineupItem.reserved + qty})


async def lock_stock_level(session: AsyncSession, item_id: int) -> StockLevel:
    """The item's counters, its row locked until the transaction ends (PostgreSQL; SQLite's writer
    already holds the database): nothing moves them until then but this transaction."""
    row = (
        await session.execute(select(*_LEVEL).where(LineupItem.id == item_id).with_for_update())
    ).one_or_none()
    if row is None:
        raise LineupItemNotFound(f"no lineup item with id {item_id}", item_id=item_id)
    return StockLevel(*row)


def over_limit(limit: int, held: int, qty: int) -> PurchaseLimitReached:
    """The per-user limit's refusal: how many the neighbour holds and may still buy."""
    left = max(limit - held, 0)
    return PurchaseLimitReached(
        f"the limit is {limit} per person and you already hold {held}: you can buy {left} more"
        if held
        else f"the limit is {limit} per person",
        limit=limit,
        held=held,
        left=left,
        requested=qty,
    )


def sold_out(item_id: int, left: int, qty: int) -> SoldOut:
    """The 409 a neighbour sees: 已售罄 when nothing is left, else how many are."""
    message = "sold out: no units are left" if left <= 0 else f"only {left} unit(s) left, {qty} requested"
    return SoldOut(message, item_id=item_id, left=max(left, 0), requested=qty)


async def release_stock(session: AsyncSession, item_id: int, qty: int) -> StockLevel:
    """Give an unpaid order's ``qty`` units back to the sale (``reserved -= qty``, never below zero)."""
    _positive(qty)
    level = await _move(session, item_id, LineupItem.reserved >= qty, {"reserved": LineupItem.reserved - qty})
    if level is None:
        raise StockLedgerError(f"item {item_id}: cannot release {qty} reserved unit(s)")
    return level


# Built once, as ``_move`` builds it for one quantity: every paid order runs it, on the sale's hottest row.
_COMMIT = (
    update(LineupItem)
    .where(LineupItem.id == bindparam("item_id"), LineupItem.reserved >= bindparam("qty"))
    .values(reserved=LineupItem.reserved - bindparam("qty"), sold=LineupItem.sold + bindparam("qty"))
    .returning(*_LEVEL)
    .execution_options(synchronize_session=False)
)


async def commit_stock(session: AsyncSession, item_id: int, qty: int) -> StockLevel:
    """Turn a paid order's ``qty`` reserved units into sold ones (``reserved -= qty, sold += qty``)."""
    _positive(qty)
    row = (await session.execute(_COMMIT, {"item_id": item_id, "qty": qty})).one_or_none()
    if row is None:
        raise StockLedgerError(f"item {item_id}: cannot commit {qty} reserved unit(s)")
    level = StockLevel(*row)
    _sync(session, item_id, level)
    return level


async def hold_purchase(session: AsyncSession, user_id: int, item_id: int, qty: int, *, limit: int) -> int:
    """Count ``qty`` more units against the neighbour's per-user limit of the item; returns the units now
    held. One upsert whose update only happens where ``units + qty <= limit``, so parallel requests by the
    same neighbour cannot pass the limit between them; ``PurchaseLimitReached`` (409) otherwise."""
    _positive(qty)
    held = 0
    if qty <= limit:
        insert = dialect_insert(session)
        now = utcnow()
        statement = (
            insert(PurchaseCount)
            .values(user_id=user_id, lineup_item_id=item_id, units=qty, updated_at=now)
            .on_conflict_do_update(
                index_elements=[PurchaseCount.user_id, PurchaseCount.lineup_item_id],
                set_={"units": PurchaseCount.units + qty, "updated_at": now},
                where=PurchaseCount.units + qty <= limit,
            )
            .returning(PurchaseCount.units)
        )
        units = (await session.execute(statement)).scalar_one_or_none()
        if units is not None:
            return int(units)
        held = await units_held(session, user_id, item_id)
    raise over_limit(limit, held, qty)


async def hold_purchases(
    session: AsyncSession, item_id: int, wanted: dict[int, int], *, limit: int
) -> dict[int, int]:
    """``hold_purchase`` for many neighbours at once (user id → units): one upsert, rows taken in user
    order (so two batches never wait on each other in a circle). Returns the units now held by those
    whose count stayed within ``limit``; the others are left as they were."""
    if not wanted:
        return {}
    for qty in wanted.values():
        _positive(qty)
    now = utcnow()
    rows = [
        {"user_id": user_id, "lineup_item_id": item_id, "units": qty, "updated_at": now}
        for user_id, qty in sorted(wanted.items())
        if qty <= limit
    ]
    if not rows:
        return {}
    insert = dialect_insert(session)
    upsert = insert(PurchaseCount)
    statement = upsert.on_conflict_do_update(
        index_elements=[PurchaseCount.user_id, PurchaseCount.lineup_item_id],
        set_={"units": PurchaseCount.units + upsert.excluded.units, "updated_at": upsert.excluded.updated_at},
        where=PurchaseCount.units + upsert.excluded.units <= limit,
    ).returning(PurchaseCount.user_id, PurchaseCount.units)
    # Many rows, one statement compiled once (SQLAlchemy's "insertmanyvalues").
    held = await session.execute(statement, rows)
    return {int(user_id): int(units) for user_id, units in held.all()}


async def release_purchases(session: AsyncSession, item_id: int, given_back: dict[int, int]) -> None:
    """``release_purchase`` for many neighbours at once (user id → units), in user order."""
    for user_id, qty in sorted(given_back.items()):
        await release_purchase(session, user_id, item_id, qty)


async def units_held_by(session: AsyncSession, item_id: int, user_ids: list[int]) -> dict[int, int]:
    """``units_held`` of several neighbours (those holding none are left out)."""
    rows = await session.execute(
        select(PurchaseCount.user_id, PurchaseCount.units).where(
            PurchaseCount.lineup_item_id == item_id, PurchaseCount.user_id.in_(user_ids)
        )
    )
    return {int(user_id): int(units) for user_id, units in rows.all()}


async def release_purchase(session: AsyncSession, user_id: int, item_id: int, qty: int) -> int:
    """Stop counting ``qty`` units against the neighbour's limit (never below zero); returns units held."""
    _positive(qty)
    units = (
        await session.execute(
            update(PurchaseCount)
            .where(
                PurchaseCount.user_id == user_id,
                PurchaseCount.lineup_item_id == item_id,
                PurchaseCount.units >= qty,
            )
            .values(units=PurchaseCount.units - qty, updated_at=utcnow())
            .returning(PurchaseCount.units)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if units is None:
        raise StockLedgerError(f"user {user_id}, item {item_id}: cannot release {qty} counted unit(s)")
    return int(units)


async def units_held(session: AsyncSession, user_id: int, item_id: int) -> int:
    """Units of the item held by the neighbour's live orders (they bound the checkout sheet's quantity)."""
    units = await session.scalar(
        select(PurchaseCount.units).where(
            PurchaseCount.user_id == user_id, PurchaseCount.lineup_item_id == item_id
        )
    )
    return int(units or 0)


async def per_user_limit(session: AsyncSession, item_id: int) -> int:
    """The item's current per-user limit."""
    limit = await session.scalar(select(LineupItem.per_user_limit).where(LineupItem.id == item_id))
    if limit is None:
        raise LineupItemNotFound(f"no lineup item with id {item_id}", item_id=item_id)
    return int(limit)
