"""Property: whatever sequence of operator edits and order-side reservations arrives, reserved + sold never
exceeds stock, an edit below what is committed is refused, and the database CHECK stops a careless writer."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from linli.core.db import Database
from linli.live import service
from linli.live.errors import StockBelowCommitted
from linli.live.models import LineupItem, SessionStatus
from linli.live.schemas import LineupItemUpdate
from tests.live.factories import make_lineup_item, make_session

operations = st.lists(
    st.one_of(
        st.tuples(st.just("set_stock"), st.integers(0, 40)),
        st.tuples(st.just("reserve"), st.integers(1, 8)),  # what checkout will do: a conditional update
        st.tuples(st.just("pay"), st.integers(1, 8)),
        st.tuples(st.just("release"), st.integers(1, 8)),
        st.tuples(st.just("careless_reserve"), st.integers(1, 8)),  # no condition: only the CHECK stands
    ),
    max_size=25,
)


async def _run(url: str, ops: list[tuple[str, int]]) -> None:
    db = Database(url, pool=False)
    try:
        async with db.sessionmaker() as session:
            live_session = await make_session(session, status=SessionStatus.live)
            item = await make_lineup_item(session, live_session=live_session, stock=20)
            await session.commit()
        stock, reserved, sold = 20, 0, 0
        for op, n in ops:
            async with db.sessionmaker() as session:
                if op == "set_stock":
                    loaded = await service.get_session(session, live_session.id)
                    target = service.get_lineup_item(loaded, item.id)
                    try:
                        await service.update_lineup_item(
                            session, loaded, target, LineupItemUpdate(stock=n), actor=None
                        )
                        await session.commit()
                        assert n >= reserved + sold
                        stock = n
                    except StockBelowCommitted:
                        await session.rollback()
                        assert n < reserved + sold
                elif op == "reserve":
                    result = await session.execute(
                        update(LineupItem)
                        .where(
                            LineupItem.id == item.id,
                            LineupItem.reserved + LineupItem.sold + n <= LineupItem.stock,
                        )
                        .values(reserved=LineupItem.reserved + n)
                    )
                    await session.commit()
                    fits = reserved + sold + n <= stock
                    assert result.rowcount == (1 if fits else 0)  # type: ignore[attr-defined]
                    reserved += n if fits else 0
                elif op in ("pay", "release"):
                    k = min(n, reserved)
                    values = (
                        {"reserved": LineupItem.reserved - k, "sold": LineupItem.sold + k}
                        if op == "pay"
                        else {"reserved": LineupItem.reserved - k}
                    )
                    await session.execute(update(LineupItem).where(LineupItem.id == item.id).values(**values))
                    await session.commit()
                    reserved -= k
                    sold += k if op == "pay" else 0
                else:
                    try:
                        await session.execute(
                            update(LineupItem)
                            .where(LineupItem.id == item.id)
                            .values(reserved=LineupItem.reserved + n)
                        )
                        await session.commit()
                        assert reserved + sold + n <= stock, "the CHECK let an oversell through"
                        reserved += n
                    except IntegrityError:
                        await session.rollback()
                        assert reserved + sold + n > stock
            async with db.sessionmaker() as session:
                row = await session.get(LineupItem, item.id)
                assert row is not None
                assert (row.stock, row.reserved, row.sold) == (stock, reserved, sold)
                assert 0 <= row.reserved + row.sold <= row.stock
    finally:
        await db.dispose()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_stock_invariant_holds_under_any_sequence_of_edits(
    database_url: str, ops: list[tuple[str, int]]
) -> None:
    asyncio.run(_run(database_url, ops))
