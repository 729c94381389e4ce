"""Database engine, sessions and the declarative base shared by every domain's tables."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Integer,
    MetaData,
    Table,
    TextClause,
    TypeDecorator,
    event,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    UOWTransaction,
    make_transient_to_detached,
    mapped_column,
)
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool

from linli.core.clock import as_utc, utcnow
from linli.core.errors import LinliError

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a real bigint.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out, on both databases."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class IdMixin:
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


# How long a request may queue for a connection (SQLite's one writer, or a full PostgreSQL pool) before
# it is refused (503) rather than served.
SQLITE_QUEUE_SECONDS = 30.0


class DatabaseBusy(LinliError):
    """Every connection stayed taken for longer than a request may wait: refused, nothing changed."""

    status_code = 503


class _QueuePool(AsyncAdaptedQueuePool):
    """A pool whose wait for a connection, when it runs out, is our clean refusal rather than a 500."""

    def _do_get(self) -> Any:
        try:
            return super()._do_get()
        except sa_exc.TimeoutError as exc:
            raise DatabaseBusy(
                "the server is too busy to take this request now; please try again in a moment",
                retry_after=1,
            ) from exc


def _is_sqlite_file(url: str) -> bool:
    return url.startswith("sqlite") and ":memory:" not in url and not url.rstrip("/").endswith(":")


# Connections a process keeps open to PostgreSQL. Requests beyond them wait for one (up to the pool
# timeout) rather than open more: under a rush, connections opened and dropped for each request cost
# more than the requests (a backend forked and torn down each time, a fifth of the app's CPU).
PG_POOL_SIZE = 32
PG_MAX_OVERFLOW = 0


def create_engine(url: str, *, pool: bool = True, pool_size: int = PG_POOL_SIZE) -> AsyncEngine:
    """An async engine; SQLite files get WAL, foreign keys and a busy timeout on every connection."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 10}
        if pool and _is_sqlite_file(url):
            # One writer, in line: SQLite runs one write transaction at a time anyway (every transaction
            # takes the write lock at BEGIN), and connections fighting over the file lock wait in its busy
            # handler's growing sleeps — under a rush that stalled the server for minutes. With a single
            # pooled connection, transactions queue in order in the pool (a fair FIFO) and each holds the
            # file only while it runs; a request that waits longer than SQLITE_QUEUE_SECONDS gets a clean
            # 503 (``DatabaseBusy``). Readers outside this process (WAL) are unaffected.
            kwargs.update(
                poolclass=_QueuePool, pool_size=1, max_overflow=0, pool_timeout=SQLITE_QUEUE_SECONDS
            )
    elif pool:
        # No pre-ping: it is a round trip on every checkout of a connection, i.e. on every request (a
        # quarter of a sold-out refusal's). A connection the server dropped fails once and is replaced;
        # recycling keeps them from growing old behind a proxy's idle timeout.
        kwargs.update(
            poolclass=_QueuePool,
            pool_size=pool_size,
            max_overflow=PG_MAX_OVERFLOW,
            pool_timeout=SQLITE_QUEUE_SECONDS,
            pool_recycle=1800,
        )
    if not pool:
        kwargs["poolclass"] = NullPool
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        # Take the write lock at BEGIN so concurrent writers queue on busy_timeout instead of
        # failing to upgrade a read transaction (SQLITE_BUSY without retry).
        event.listen(engine.sync_engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))

        @event.listens_for(engine.sync_engine, "connect")
        def _no_pysqlite_begin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

    return engine


def create_sessionmaker(
    engine: AsyncEngine, sync_session_class: type[Session] = Session
) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(
        engine, expire_on_commit=False, autoflush=False, sync_session_class=sync_session_class
    )


# What a commit hook is told: the (type, user id) of each event the committed transaction appended.
CommitHook = Callable[[list[tuple[str, int | None]]], None]


def _note_events(session: Session, _flush: UOWTransaction) -> None:
    """Note the events a transaction appends (``core.events`` rows are ``events``)."""
    appended = [
        (row.type, row.user_id) for row in session.new if getattr(row, "__tablename__", None) == "events"
    ]
    if appended:
        session.info.setdefault("linli.events", []).extend(appended)


M = TypeVar("M", bound="Base")


_UNLESS_TAKEN: dict[tuple[str, str, tuple[str, ...] | None, int], Any] = {}


async def insert_unless_taken(
    session: AsyncSession,
    model: type[M],
    values: dict[str, Any],
    *,
    key: list[str] | None,
    where: ColumnElement[bool] | TextClause | None = None,
) -> M | None:
    """One ``INSERT … ON CONFLICT DO NOTHING RETURNING``: the new row as a persistent object of
    ``session``, or None when its unique ``key`` (a partial unique index when ``where`` is given; any of
    the table's unique keys when ``key`` is None) is taken — also by a concurrent transaction, whose end
    this statement waits for. Give ``where`` as the index's own SQL text without parameters: PostgreSQL
    must prove it implies the index's predicate when planning, and a prepared statement's generic plan
    has no parameter values to prove it with.

    What a lookup, a savepoint, the insert and the savepoint's release did in four round trips; the
    columns left out of ``values`` get their defaults, and the object comes back with every column."""
    table = cast(Table, model.__table__)
    dialect = session.get_bind().dialect.name
    # Built once per shape (``where`` is a module-level constant of its caller): a statement object
    # reused keeps its cache key, where building it afresh cost as much CPU as executing it.
    shape = (dialect, table.name, tuple(key) if key is not None else None, id(where))
    statement = _UNLESS_TAKEN.get(shape)
    if statement is None:
        statement = _UNLESS_TAKEN[shape] = (
            dialect_insert(session)(table)
            .on_conflict_do_nothing(index_elements=key, index_where=where)
            .returning(*table.columns)
        )
    row = (await session.execute(statement, values)).one_or_none()
    if row is None:
        return None
    obj = model.__mapper__.class_manager.new_instance()
    for column, value in zip(table.columns, row, strict=True):
        set_committed_value(obj, column.key, value)
    make_transient_to_detached(obj)
    session.add(obj)
    return obj


def insert_ignoring(
    session: AsyncSession, model: type[Base], rows: list[dict[str, Any]], *returning: Any
) -> Any:
    """One multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING returning``: the rows any of the table's
    unique keys already holds (also a row earlier in ``rows``) are skipped, and only the inserted ones
    come back. Execute it; for a batch, as ``insert_unless_taken`` is for one row."""
    statement = dialect_insert(session)(cast(Table, model.__table__))
    return statement.values(rows).on_conflict_do_nothing().returning(*returning)


def dialect_insert(session: AsyncSession) -> Any:
    """The ``insert`` of the session's database that knows ``ON CONFLICT`` (PostgreSQL's or SQLite's)."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def note_appended_events(session: AsyncSession | Session, appended: list[tuple[str, int | None]]) -> None:
    """Tell the commit bookkeeping about events appended without the ORM (a bulk ``INSERT``)."""
    if appended:
        session.info.setdefault("linli.events", []).extend(appended)


def _forget_events(session: Session) -> None:
    session.info.pop("linli.events", None)


class Database:
    """The engine and session factory of one running app (or test).

    ``event_commits`` counts this process's commits that appended events, so the background worker can
    tell a commit its consumers have to look at from one they need not (a read, a refusal).
    ``commit_hooks`` are told, right after such a commit and in this process only, which events it
    appended: for what must not wait for a consumer (a cache forgetting a revoked login)."""

    def __init__(self, url: str, *, pool: bool = True, pool_size: int = PG_POOL_SIZE) -> None:
        self.url = url
        self.engine = create_engine(url, pool=pool, pool_size=pool_size)
        self.event_commits = 0
        self.commit_hooks: list[CommitHook] = []
        tracking: type[Session] = type("LinliSession", (Session,), {})
        event.listen(tracking, "after_flush", _note_events)
        event.listen(tracking, "after_commit", self._count_event_commit)
        event.listen(tracking, "after_rollback", _forget_events)
        self.sessionmaker = create_sessionmaker(self.engine, tracking)

    def _count_event_commit(self, session: Session) -> None:
        appended = session.info.pop("linli.events", None)
        if appended:
            self.note_event_commit(appended)

    def note_event_commit(self, appended: list[tuple[str, int | None]]) -> None:
        """Count a commit that appended events and tell the hooks (also for a commit made through another
        ``Database`` of this process: the checkout queue's own)."""
        self.event_commits += 1
        for hook in self.commit_hooks:
            try:
                hook(appended)
            except Exception:
                log.exception("a commit hook failed")

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    async def session(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends cleanly, rolled back otherwise."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def dispose(self) -> None:
        await self.engine.dispose()
