"""Engine, sessions, and the few spatial SQL pieces that differ between PostGIS and SpatiaLite.

Everything dialect-specific about geometry lives in this module: the rest of the code
builds queries with :func:`point`, :func:`within_bbox` and :func:`distance_m` and never
asks which database it talks to.

The app is synchronous throughout (sync sessions, sync endpoints run in the threadpool):
SpatiaLite is only reachable through the synchronous ``sqlite3``/``pysqlite3`` driver,
and one code path for both databases is worth more than async on one of them.
"""

import asyncio
import hashlib
import importlib
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from ctypes.util import find_library
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import orjson
from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Engine,
    Text,
    bindparam,
    cast,
    column,
    create_engine,
    event,
    exists,
    func,
    insert,
    literal_column,
    make_url,
    select,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import (
    InstrumentedAttribute,
    ORMExecuteState,
    Session,
    SessionTransaction,
    sessionmaker,
)
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Boolean, Float, Integer, TypeDecorator

from app.errors import ConfigurationError, DatabaseBusy

SRID = 4326
METRES_PER_DEGREE_LAT = 111_320.0


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on PostgreSQL (timestamptz) and SQLite (text) alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Where Debian's libsqlite3-mod-spatialite puts the module; SQLite also searches its own path.
_SPATIALITE_CANDIDATES = (
    "mod_spatialite",
    "/usr/lib/x86_64-linux-gnu/mod_spatialite.so",
    "/usr/lib/aarch64-linux-gnu/mod_spatialite.so",
)
_BEGIN_OPTION = "sqlite_begin"
DATABASE = "sentinel_database"
_WRITING = "sentinel_writing"
logger = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30
_ON_ROLLBACK = "sentinel_on_rollback"
_AFTER_COMMIT = "sentinel_after_commit"


def sqlite_driver() -> Any:
    """The stdlib ``sqlite3`` when it can load extensions, else ``pysqlite3``."""
    import sqlite3

    if hasattr(sqlite3.Connection, "enable_load_extension"):
        return sqlite3
    try:
        return importlib.import_module("pysqlite3.dbapi2")
    except ImportError as exc:
        raise ConfigurationError(
            "this Python's sqlite3 cannot load extensions: pip install pysqlite3-binary"
        ) from exc


def _load_spatialite(dbapi_conn: Any) -> None:
    explicit = os.environ.get("SPATIALITE_LIBRARY_PATH")
    candidates = [explicit] if explicit else [*_SPATIALITE_CANDIDATES, find_library("spatialite")]
    dbapi_conn.enable_load_extension(True)
    try:
        for path in filter(None, candidates):
            try:
                dbapi_conn.load_extension(path)
                return
            except Exception:  # the driver's OperationalError: try the next place
                continue
        raise ConfigurationError(
            "SpatiaLite (mod_spatialite) is not installed: "
            "apt-get install libsqlite3-mod-spatialite (or set SPATIALITE_LIBRARY_PATH)"
        )
    finally:
        dbapi_conn.enable_load_extension(False)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself, so that write
        # transactions can take the write lock up front.
        dbapi_conn.isolation_level = None
        _load_spatialite(dbapi_conn)
        cursor = dbapi_conn.cursor()
        # WAL lets readers run beside the one writer. synchronous=FULL fsyncs the WAL at
        # every commit: an acknowledged report survives a power cut, which NORMAL does
        # not promise; the cost is one fsync per write transaction.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A deferred transaction that reads and then writes can fail to upgrade its lock
        # with "database is locked" no matter the busy timeout; IMMEDIATE takes the write
        # lock at BEGIN and waits for it politely instead.
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


# Enough pooled connections for every threadpool thread (anyio's default is 40): a
# connection opened beyond the pool is closed again when returned, and opening one costs a
# PostgreSQL backend (and its prepared statements) or a SpatiaLite load, each time.
POOL_SIZE = 40


def create_db_engine(url: str, pool_size: int = POOL_SIZE) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            module=sqlite_driver(),
            pool_size=pool_size,
            max_overflow=10,
            connect_args={"check_same_thread": False},
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=10)


def is_embedded(url: str) -> bool:
    """Whether ``url`` names the embedded (SQLite) database rather than a server."""
    return make_url(url).get_backend_name() == "sqlite"


class Database:
    """The engine, and sessions whose transactions become writes only when asked to.

    Every transaction begins as a read. A service calls :func:`begin_writes` before it
    reads what it is about to change. On SQLite that ends the read, waits for this
    process's writer mutex and begins ``IMMEDIATE``: the database's one write lock is held
    only while writing, never while a request authenticates, parses or routes. On
    PostgreSQL it changes nothing: one request stays one transaction.
    """

    def __init__(self, url: str, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self.engine = create_db_engine(url, pool_size)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        # Which database this is, for those who report it (``/readyz``).
        self.kind = self.engine.dialect.name
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, info={DATABASE: self})
        # SQLite lets one writer in at a time and makes the others poll with growing
        # sleeps (up to 100 ms each), which under load turns into long, unfair waits.
        # Within this process, writers queue on a mutex instead and get the database
        # the moment it is free; other processes still meet the busy timeout.
        self.writer_turn = threading.Lock()

    def session(self, *, write: bool = False) -> Session:
        session = self._sessions()
        if write:
            begin_writes(session)
        return session

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Session]:
        """One unit of work: commit on success, roll back on any error."""
        with self.session(write=write) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                session.info.pop(_AFTER_COMMIT, None)
                for undo in session.info.pop(_ON_ROLLBACK, []):
                    undo()
                raise
            session.info.pop(_ON_ROLLBACK, None)
            for then in session.info.pop(_AFTER_COMMIT, []):
                try:
                    then()
                except Exception:
                    # What the commit made true stays true; what was not cleaned up
                    # (a blob of a deleted photo) is swept later.
                    logger.exception("a step after a commit failed")

    def dispose(self) -> None:
        self.engine.dispose()


def begin_writes(session: Session) -> None:
    """From here on, this transaction writes (see :class:`Database`)."""
    if session.info.get(_WRITING):
        return
    database: Database = session.info[DATABASE]
    if database.is_sqlite:
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("begin_writes() must come before the first change")
        session.commit()  # ends the read; what was loaded stays usable
        if not database.writer_turn.acquire(timeout=BUSY_TIMEOUT_S):
            raise DatabaseBusy()
        session.info[_WRITING] = True
        session.connection(execution_options={_BEGIN_OPTION: "IMMEDIATE"})
    else:
        session.info[_WRITING] = True


_Row = TypeVar("_Row")


def claim_due(
    session: Session, model: type[_Row], *due: ColumnElement[bool], order_by: Any, limit: int
) -> Sequence[_Row]:
    """The worker's claim: the first ``limit`` rows of ``model`` that are ``due``, in
    ``order_by`` order, locked for this transaction (rows another worker holds are
    skipped). Most rounds find nothing: that is asked before taking SQLite's write lock."""
    if not session.scalar(select(exists().where(*due))):
        return []
    begin_writes(session)
    return session.scalars(
        select(model).where(*due).order_by(order_by).limit(limit).with_for_update(skip_locked=True)
    ).all()


@event.listens_for(Session, "after_transaction_end")
def _end_of_writes(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None and session.info.pop(_WRITING, False):
        database: Database | None = session.info.get(DATABASE)
        if database is not None and database.is_sqlite:
            database.writer_turn.release()


@event.listens_for(Session, "before_flush")
def _writes_need_begin_writes(session: Session, *_: Any) -> None:
    _check_writing(session)


@event.listens_for(Session, "do_orm_execute")
def _statements_need_begin_writes(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        _check_writing(state.session)


def _check_writing(session: Session) -> None:
    database: Database | None = session.info.get(DATABASE)
    if database is not None and database.is_sqlite and not session.info.get(_WRITING):
        # A read transaction that writes can fail with "database is locked" whatever the
        # busy timeout: every write path must say so first.
        raise RuntimeError("call begin_writes(session) before changing anything")


def on_rollback(session: Session, undo: Callable[[], None]) -> None:
    """Run ``undo`` if the transaction of ``session`` is rolled back (files written for it)."""
    session.info.setdefault(_ON_ROLLBACK, []).append(undo)


def after_commit(session: Session, then: Callable[[], None]) -> None:
    """Run ``then`` once the transaction of ``session`` has committed (files to remove
    because rows that named them are gone), never if it rolls back."""
    session.info.setdefault(_AFTER_COMMIT, []).append(then)


# --- locks ---------------------------------------------------------------------------


def _lock_key(parts: tuple[object, ...]) -> int:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock(session: Session, *names: tuple[object, ...]) -> None:
    """Hold the locks ``names`` (each a tuple of parts) until the transaction ends.

    PostgreSQL: transaction-scoped advisory locks, all taken in one round trip and in key
    order, so that two transactions wanting overlapping sets cannot deadlock. SQLite:
    nothing to do, because write transactions already run one at a time.
    """
    if names and session.get_bind().dialect.name == "postgresql":
        keys = sorted({_lock_key(name) for name in names})
        session.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS bigint[])) AS k"
            ),
            {"keys": keys},
        )


def try_lock(session: Session, *parts: object) -> bool:
    """Like :func:`lock`, but False at once if another transaction holds it."""
    if session.get_bind().dialect.name == "postgresql":
        return bool(session.scalar(select(func.pg_try_advisory_xact_lock(_lock_key(parts)))))
    return True


# --- SQL that differs between the two databases --------------------------------------


def one_large_aggregate(session: Session) -> None:
    """Prepare this transaction for one GROUP BY over a few hundred thousand rows: on
    PostgreSQL, room to hash it in memory, and no parallel workers (on a few cores, their
    gathering and merging cost more than they save). Nothing to do on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL work_mem = '32MB'"))
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))


class _column_hint(FunctionElement[Any]):
    """A column wrapped so that the planner may not search it by an index: SQLite takes a
    unary ``+``, PostgreSQL an addition of zero of the column's own type."""

    inherit_cache = True
    pg_zero: ClassVar[str]

    @property
    def type(self) -> Any:  # type: ignore[override]
        return next(iter(self.clauses)).type


class unindexed(_column_hint):
    """An integer ``column`` that no index may search, where a spatial filter is the
    selective one.

    SQLite picks one index per table, and a b-tree on another column would make it walk
    every row that b-tree matches. PostgreSQL, planning a statement for many rows whose
    values it cannot see, would AND that b-tree's range into every search of the spatial
    index: a read that grows with the table.
    """

    inherit_cache = True
    name = "sentinel_unindexed"
    pg_zero = "0"


class checked_per_row(_column_hint):
    """A timestamp ``column`` that no index may search by range: the condition is checked
    on the rows another index walks. For filters that hold for many rows, where a range
    search would fetch them all and sort them while the walk stops at a page's worth."""

    inherit_cache = True
    name = "sentinel_checked_per_row"
    pg_zero = "interval '0 seconds'"


@compiles(unindexed, "postgresql")
@compiles(checked_per_row, "postgresql")
def _column_hint_pg(element: _column_hint, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} + {element.pg_zero})"


@compiles(unindexed, "sqlite")
@compiles(checked_per_row, "sqlite")
def _column_hint_sqlite(element: _column_hint, compiler: SQLCompiler, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"


class epoch_bucket(FunctionElement[int]):
    """Which ``seconds``-long slice of Unix time a UTC timestamp ``column`` falls in
    (slices of 15 minutes line up with every time zone's days). ``seconds`` is written
    into the SQL, so the same expression can be selected and grouped by."""

    type = Integer()
    inherit_cache = False  # ``seconds`` is not part of a cache key

    def __init__(self, column: Any, seconds: int) -> None:
        self.seconds = int(seconds)
        super().__init__(column)


@compiles(epoch_bucket, "postgresql")
def _epoch_bucket_pg(element: epoch_bucket, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"CAST(floor(extract(epoch FROM {column}) / {element.seconds}) AS bigint)"


@compiles(epoch_bucket, "sqlite")
def _epoch_bucket_sqlite(element: epoch_bucket, compiler: SQLCompiler, **kw: Any) -> str:
    # Whole seconds first: strftime would round a fraction to the millisecond, and
    # 23:59:59.9996 into the next second, slice and day.
    column = compiler.process(element.clauses, **kw)
    return f"(CAST(strftime('%s', substr({column}, 1, 19)) AS INTEGER) / {element.seconds})"


class point(FunctionElement[Any]):
    """A WGS-84 point geometry from ``lon``, ``lat``."""

    inherit_cache = True
    name = "sentinel_point"


@compiles(point, "postgresql")
def _point_pg(element: point, compiler: SQLCompiler, **kw: Any) -> str:
    return f"ST_SetSRID(ST_MakePoint({compiler.process(element.clauses, **kw)}), {SRID})"


@compiles(point, "sqlite")
def _point_sqlite(element: point, compiler: SQLCompiler, **kw: Any) -> str:
    return f"MakePoint({compiler.process(element.clauses, **kw)}, {SRID})"


def lon_of(point_column: Any) -> Any:
    """The longitude of a point geometry (``ST_X``, in both databases)."""
    return func.ST_X(point_column, type_=Float())


def lat_of(point_column: Any) -> Any:
    """The latitude of a point geometry (``ST_Y``, in both databases)."""
    return func.ST_Y(point_column, type_=Float())


class distance_m(FunctionElement[float]):
    """Distance in metres between two WGS-84 geometries, on the ellipsoid."""

    type = Float()
    inherit_cache = True
    name = "sentinel_distance_m"


@compiles(distance_m, "postgresql")
def _distance_pg(element: distance_m, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"ST_Distance(CAST({a} AS geography), CAST({b} AS geography))"


@compiles(distance_m, "sqlite")
def _distance_sqlite(element: distance_m, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = (compiler.process(c, **kw) for c in element.clauses)
    return f"ST_Distance({a}, {b}, 1)"


class within_bbox(FunctionElement[bool]):
    """``column``'s bounding box meets ``min_lon, min_lat, max_lon, max_lat`` — via the index.

    PostGIS uses its GiST index for ``&&``. SpatiaLite never consults its R*Tree on its
    own, so the filter reads the R*Tree table that ``CreateSpatialIndex`` maintains.
    """

    type = Boolean()
    # Already a boolean expression: no "= 1" appended on SQLite, which would hide the
    # ROWID IN (…) from the planner and scan the table.
    _is_implicitly_boolean = True
    inherit_cache = True
    name = "sentinel_within_bbox"


@compiles(within_bbox, "postgresql")
def _bbox_pg(element: within_bbox, compiler: SQLCompiler, **kw: Any) -> str:
    column, *bounds = element.clauses
    box = ", ".join(compiler.process(b, **kw) for b in bounds)
    return f"{compiler.process(column, **kw)} && ST_MakeEnvelope({box}, {SRID})"


@compiles(within_bbox, "sqlite")
def _bbox_sqlite(element: within_bbox, compiler: SQLCompiler, **kw: Any) -> str:
    column, min_x, min_y, max_x, max_y = element.clauses
    table = column.table
    base_table = getattr(table, "original", table)
    index = f"idx_{base_table.name}_{column.name}"
    alias = (
        compiler.preparer.format_table(table)
        if not hasattr(table, "original")
        else compiler.preparer.quote(table.name)
    )
    p = compiler.process
    return (
        f'{alias}.ROWID IN (SELECT pkid FROM "{index}" WHERE '
        f"xmin <= {p(max_x, **kw)} AND xmax >= {p(min_x, **kw)} AND "
        f"ymin <= {p(max_y, **kw)} AND ymax >= {p(min_y, **kw)})"
    )


def first(query: Any, n: int = 1) -> Any:
    """``query`` limited to its first ``n`` rows, the limit written into the SQL. SQLite
    plans a limit given as a parameter (and the OFFSET its dialect adds) anew at every
    execution: a statement of a few keyed reads costs three times as much."""
    return query.limit(literal_column(str(int(n)))).offset(literal_column("0"))


def bbox_around(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """A lon/lat box that surely contains every point within ``radius_m`` of (lon, lat)."""
    d_lat = radius_m / METRES_PER_DEGREE_LAT * 1.01
    d_lon = d_lat / max(math.cos(math.radians(min(abs(lat) + d_lat, 89.9))), 1e-6)
    return lon - d_lon, lat - d_lat, lon + d_lon, lat + d_lat


class covers(FunctionElement[bool]):
    """``a`` covers ``b`` (boundary points included), as a true SQL boolean on both databases.

    SpatiaLite returns 1, 0 or -1 (error) where PostGIS returns a boolean.
    """

    type = Boolean()
    _is_implicitly_boolean = True
    inherit_cache = True
    name = "sentinel_covers"


@compiles(covers, "postgresql")
def _covers_pg(element: covers, compiler: SQLCompiler, **kw: Any) -> str:
    return f"ST_Covers({compiler.process(element.clauses, **kw)})"


@compiles(covers, "sqlite")
def _covers_sqlite(element: covers, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(ST_Covers({compiler.process(element.clauses, **kw)}) = 1)"


# --- statements written for one row, run for many --------------------------------------


class Rows:
    """The parameters of a statement written for one row, to run it for many rows at
    once: on PostgreSQL as one statement over a JSON array of the rows (unpacked by
    ``json_to_recordset`` into typed columns: one parameter, parsed by the server, where
    an array per column would cost the driver's Python for every value), on SQLite once
    per row (calls into the library, not round trips).

    A statement built with it reads each parameter as ``rows.<name>``, starts its FROM at
    ``rows.source``, and selects (or returns) ``rows.ordinal`` first, so that each result
    row is known by the row it answers. Through a session it runs as any statement, with
    one set of parameters per row (``Rows(types)``).
    """

    def __init__(self, types: dict[str, Any], *, as_json: bool = False) -> None:
        self.types = types
        self.as_json = as_json
        self.source: Any
        if as_json:
            unpacked = func.json_to_recordset(cast(bindparam("rows", type_=Text()), JSON()))
            self.source = unpacked.table_valued(
                column("ordinal", Integer()),
                *(column(name, t) for name, t in types.items()),
            ).render_derived(name="each_row", with_types=True)
            self.ordinal = self.source.c.ordinal
        else:
            self.source = select(literal_column("1").label("one")).subquery("each_row")
            self.ordinal = literal_column("1")

    def __getattr__(self, name: str) -> Any:
        if name not in self.types:
            raise AttributeError(name)
        return self.source.c[name] if self.as_json else bindparam(name, type_=self.types[name])

    def each(self, query: Any, name: str) -> Any:
        """``query`` (reading these parameters) as a FROM item: evaluated for each row."""
        return query.lateral(name) if self.as_json else query.subquery(name)

    @staticmethod
    def encode(rows: list[dict[str, Any]]) -> str:
        """``rows`` as the JSON array the statement unpacks, numbered from 1. (orjson
        writes UUIDs, enums and aware datetimes with their offset as PostgreSQL reads
        them.)"""
        return orjson.dumps(
            [{"ordinal": n, **row} for n, row in enumerate(rows, 1)], default=str
        ).decode()


class Statement:
    """A Core statement compiled once for one dialect, to run on a driver's own cursor.

    It keeps what SQLAlchemy works out on every execution — the SQL, the order of the
    parameters, the conversions of their values and of the result columns — so that a
    statement run for every report costs no compilation, no cache lookup and no result
    machinery: only the driver's own work. The conversions are SQLAlchemy's own, so values
    are stored and read exactly as through a session.
    """

    def __init__(self, statement: Any, dialect: Any, *, rows: Rows | None = None) -> None:
        compiled = statement.compile(dialect=dialect)
        if compiled.post_compile_params or compiled.literal_execute_params:
            raise ValueError("a Statement cannot hold expanding parameters (use literals)")
        if missing := [c.key for c in compiled.insert_prefetch + compiled.update_prefetch]:
            # Defaults computed in Python are not applied here: give every such column.
            raise ValueError(f"give these columns a value: {missing}")
        self.sql: str = compiled.string
        self.rows = rows
        self._constants: dict[str, Any] = compiled.construct_params(_check=False)
        processors = compiled._bind_processors
        names = compiled.positiontup if compiled.positional else list(self._constants)
        self._binds = tuple((name, processors.get(name)) for name in names)
        self._positional: bool = compiled.positional
        results = [_result_processor(entry.type, dialect) for entry in compiled._result_columns]
        self.returns_rows = bool(results)
        # A statement for rows answers with the row's ordinal first: not a value.
        self._results = tuple(results[1:] if rows is not None else results)

    def parameters(self, values: dict[str, Any]) -> Any:
        merged = {**self._constants, **values}
        if self._positional:
            return tuple(
                convert(merged[name]) if convert else merged[name] for name, convert in self._binds
            )
        return {
            name: convert(merged[name]) if convert else merged[name]
            for name, convert in self._binds
        }

    def parameters_of_rows(
        self, rows: list[dict[str, Any]], shared: dict[str, Any] | None = None
    ) -> Any:
        """The parameters of one execution over ``rows``, and the ``shared`` values of
        parameters that are not the rows'."""
        assert self.rows is not None and self.rows.as_json
        return self.parameters({**(shared or {}), "rows": Rows.encode(rows)})

    def values(self, row: Any) -> tuple[Any, ...]:
        results = self._results
        if not any(results):
            return tuple(row)
        return tuple(convert(v) if convert else v for convert, v in zip(results, row, strict=True))


def _result_processor(type_: Any, dialect: Any) -> Callable[[Any], Any] | None:
    try:
        processor: Callable[[Any], Any] | None = type_._cached_result_processor(dialect, None)
    except TypeError:
        # PostgreSQL's numeric types choose by the column's type code, known only once a
        # result arrives; for floats (the only ones read here) the drivers need nothing.
        return None
    return processor


@dataclass(frozen=True)
class Step:
    """One statement to run: with ``values``, or for each of ``rows`` (a statement built
    with :class:`Rows`; ``values`` then holds the parameters that are not the rows'); its
    result is its rows, or for ``rows`` the result rows of each."""

    statement: Statement
    values: dict[str, Any] | None = None
    rows: list[dict[str, Any]] | None = None


class advisory_locks(FunctionElement[int]):
    """Wait for the transaction-scoped locks of ``keys`` (a bigint array), in the order
    given (give them sorted, so two transactions never wait for each other in a circle).
    PostgreSQL only: SQLite write transactions already run one at a time (0 there)."""

    type = Integer()
    inherit_cache = True
    name = "sentinel_advisory_locks"


@compiles(advisory_locks, "postgresql")
def _advisory_locks_pg(element: advisory_locks, compiler: SQLCompiler, **kw: Any) -> str:
    keys = compiler.process(element.clauses, **kw)
    return f"(SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST({keys} AS bigint[])) AS k)"


@compiles(advisory_locks, "sqlite")
def _advisory_locks_sqlite(element: advisory_locks, compiler: SQLCompiler, **kw: Any) -> str:
    return "0"


class advisory_try_lock(FunctionElement[bool]):
    """Take the transaction-scoped lock of ``key`` if no other transaction holds it
    (true), else false at once. PostgreSQL only: true on SQLite, whose write
    transactions run one at a time."""

    type = Boolean()
    inherit_cache = True
    name = "sentinel_advisory_try_lock"


@compiles(advisory_try_lock, "postgresql")
def _advisory_try_lock_pg(element: advisory_try_lock, compiler: SQLCompiler, **kw: Any) -> str:
    return f"pg_try_advisory_xact_lock({compiler.process(element.clauses, **kw)})"


@compiles(advisory_try_lock, "sqlite")
def _advisory_try_lock_sqlite(element: advisory_try_lock, compiler: SQLCompiler, **kw: Any) -> str:
    return "1"


def lock_key(*parts: object) -> int:
    """The advisory lock key of ``parts`` (the same in every process)."""
    return _lock_key(parts)


def insert_rows(table: Any, rows: Rows, columns: list[str], **expressions: Any) -> Any:
    """``INSERT INTO table (columns)`` one row per row of ``rows``: each column its
    parameter of that name, or its expression in ``expressions``."""
    values = [expressions[name] if name in expressions else getattr(rows, name) for name in columns]
    return insert(table).from_select(
        columns, select(*values).select_from(rows.source), include_defaults=False
    )


def upsert_adding(
    table: Any, rows: Rows, *, keys: list[str], counters: tuple[str, ...], dialect: Any
) -> Any:
    """``INSERT INTO table … ON CONFLICT (keys) DO UPDATE SET c = c + excluded.c`` for each
    counter ``c``: a row's changes added to its row, which is created if it is the first.
    (The same SQL on both databases, from each dialect's own insert construct.)"""
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    columns = [*keys, *counters]
    insert_ = pg_insert if dialect.name == "postgresql" else sqlite_insert
    # SQLite reads "ON CONFLICT" after a SELECT without WHERE as part of a join.
    statement = insert_(table).from_select(
        columns,
        select(*(getattr(rows, name) for name in columns)).select_from(rows.source).where(true()),
        include_defaults=False,
    )
    return statement.on_conflict_do_update(
        index_elements=keys,
        set_={name: table.c[name] + statement.excluded[name] for name in counters},
    )


# --- the intake's own connection -------------------------------------------------------


class BatchConnection:
    """One connection that runs batches of statements in one transaction each, for the
    intake's writer on the event loop (``app.services.intake``).

    :meth:`run` sends its steps together and returns each step's result: on PostgreSQL
    in one round trip (psycopg's pipeline mode, prepared statements), a step over rows as
    one statement over their JSON; on SQLite one after another in this thread, a step over
    rows once per row. What can block — waiting for SQLite's write lock, and its
    commit's fsync — runs in a worker thread, so the event loop goes on serving requests.
    """

    dialect: Any
    rows_as_json: bool  # whether a step over rows is one statement over their JSON

    async def begin(self) -> None:
        raise NotImplementedError

    async def run(self, steps: list[Step], *, commit: bool = False) -> list[list[Any]]:
        raise NotImplementedError

    async def rollback(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    @property
    def broken(self) -> bool:
        return False

    async def explain(self, step: Step) -> str:
        """The plan of ``step`` on this connection (for a step over rows, of its first),
        one line per node."""
        raise NotImplementedError

    def prepare(self, statement: Any) -> Statement:
        return Statement(statement, self.dialect)

    def prepare_rows(self, build: Callable[[Rows], Any], types: dict[str, Any]) -> Statement:
        """The statement ``build`` writes for one row, for many rows."""
        rows = Rows(types, as_json=self.rows_as_json)
        return Statement(build(rows), self.dialect, rows=rows)


def _by_ordinal(statement: Statement, count: int, raw: list[Any]) -> list[list[tuple[Any, ...]]]:
    answers: list[list[tuple[Any, ...]]] = [[] for _ in range(count)]
    for row in raw:
        answers[row[0] - 1].append(statement.values(row[1:]))
    return answers


_PARAMETER = re.compile(r"%\((\w+)\)s")


def _writes_together(work: list[tuple[int, Step]]) -> list[list[tuple[int, Step]]]:
    """``work`` in groups to send as one statement each: runs of writes over rows that
    return nothing, and every other step alone."""
    groups: list[list[tuple[int, Step]]] = []
    for i, step in work:
        writes = step.rows is not None and not step.statement.returns_rows
        if (
            writes
            and groups
            and groups[-1][-1][1].rows is not None
            and not groups[-1][-1][1].statement.returns_rows
        ):
            groups[-1].append((i, step))
        else:
            groups.append([(i, step)])
    return groups


class _PostgresBatches(BatchConnection):
    rows_as_json = True

    def __init__(self, connection: Any, dialect: Any) -> None:
        self._connection = connection
        self.dialect = dialect
        self._combined: dict[tuple[int, ...], str] = {}

    @classmethod
    async def connect(cls, database: "Database") -> "_PostgresBatches":
        import psycopg

        url = database.engine.url.set(drivername="postgresql")
        connection = await psycopg.AsyncConnection.connect(
            url.render_as_string(hide_password=False),
            autocommit=True,
            application_name="sentinel-intake",
        )
        # Every statement of this connection reads or writes a batch's few rows by key.
        # The planner cannot know how few (it takes a JSON array of rows for a hundred)
        # and would hash whole tables to join them: nested reads by index are always the
        # plan here, and one plan per statement, made once (no planning per batch). Made
        # once means made with the statistics of the moment, perhaps of tables still
        # empty (a new deployment, a restore), where scanning is cheapest; the plan would
        # go on scanning as the tables grow: no scans where an index can serve.
        for setting in (
            "enable_hashjoin = off",
            "enable_mergejoin = off",
            "enable_seqscan = off",
            "plan_cache_mode = force_generic_plan",
        ):
            await connection.execute(f"SET {setting}")
        await connection.set_autocommit(False)
        return cls(connection, database.engine.dialect)

    async def begin(self) -> None:
        pass  # psycopg begins the transaction with the first statement

    async def run(self, steps: list[Step], *, commit: bool = False) -> list[list[Any]]:
        connection = self._connection
        work = [(i, step) for i, step in enumerate(steps) if step.rows is None or step.rows]
        sent: dict[int, Any] = {}
        async with connection.pipeline():
            for group in _writes_together(work):
                if len(group) == 1:
                    i, step = group[0]
                    statement = step.statement
                    parameters = (
                        statement.parameters_of_rows(step.rows, step.values)
                        if step.rows is not None
                        else statement.parameters(step.values or {})
                    )
                    sql = statement.sql
                else:
                    sql, parameters = self._together([step for _, step in group])
                cursor = connection.cursor()
                await cursor.execute(sql, parameters, prepare=True)
                for i, _ in group:
                    sent[i] = cursor
            if commit:
                await connection.commit()
        results: list[list[Any]] = []
        for i, step in enumerate(steps):
            statement, cursor = step.statement, sent.get(i)
            if cursor is None or not statement.returns_rows:
                results.append([[] for _ in step.rows] if step.rows is not None else [])
                continue
            raw = await cursor.fetchall()
            results.append(
                _by_ordinal(statement, len(step.rows), raw)
                if step.rows is not None
                else [statement.values(row) for row in raw]
            )
        return results

    def _together(self, steps: list[Step]) -> tuple[str, dict[str, Any]]:
        """Writes over rows as one statement: each a data-modifying ``WITH`` of it, its
        parameters renamed apart. (They write different tables and read none of each
        other's rows; the checks of their foreign keys run at the statement's end.)"""
        key = tuple(id(step.statement) for step in steps)
        sql = self._combined.get(key)
        if sql is None:
            parts = [
                _PARAMETER.sub(f"%(w{n}_\\1)s", step.statement.sql) for n, step in enumerate(steps)
            ]
            sql = self._combined[key] = (
                "WITH "
                + ", ".join(f"w{n} AS ({part})" for n, part in enumerate(parts))
                + " SELECT 1"
            )
        parameters: dict[str, Any] = {}
        for n, step in enumerate(steps):
            assert step.rows is not None
            values = step.statement.parameters_of_rows(step.rows, step.values)
            parameters.update({f"w{n}_{name}": value for name, value in values.items()})
        return sql, parameters

    async def rollback(self) -> None:
        if not self._connection.closed:
            await self._connection.rollback()

    async def explain(self, step: Step) -> str:
        statement = step.statement
        parameters = (
            statement.parameters_of_rows(step.rows, step.values)
            if step.rows is not None
            else statement.parameters(step.values or {})
        )
        cursor = await self._connection.execute("EXPLAIN " + statement.sql, parameters)
        plan = "\n".join(row[0] for row in await cursor.fetchall())
        await self._connection.rollback()
        return plan

    async def close(self) -> None:
        await self._connection.close()

    @property
    def broken(self) -> bool:
        return bool(self._connection.broken or self._connection.closed)


class _SqliteBatches(BatchConnection):
    rows_as_json = False

    def __init__(self, database: "Database") -> None:
        self._database = database
        self._pooled = database.engine.raw_connection()
        self._connection: Any = self._pooled.driver_connection
        self.dialect = database.engine.dialect
        self._writing = False

    async def begin(self) -> None:
        await asyncio.to_thread(self._begin)

    def _begin(self) -> None:
        if not self._database.writer_turn.acquire(timeout=BUSY_TIMEOUT_S):
            raise DatabaseBusy()
        try:
            self._connection.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._database.writer_turn.release()
            raise
        self._writing = True

    async def run(self, steps: list[Step], *, commit: bool = False) -> list[list[Any]]:
        results: list[list[Any]] = []
        cursor = self._connection.cursor()
        for step in steps:
            statement, shared = step.statement, step.values or {}
            if step.rows is None:
                cursor.execute(statement.sql, statement.parameters(shared))
                results.append(
                    [statement.values(row) for row in cursor.fetchall()]
                    if statement.returns_rows
                    else []
                )
            elif not statement.returns_rows:
                cursor.executemany(
                    statement.sql, [statement.parameters({**shared, **row}) for row in step.rows]
                )
                results.append([[] for _ in step.rows])
            else:
                answers = []
                for row in step.rows:
                    cursor.execute(statement.sql, statement.parameters({**shared, **row}))
                    answers.append([statement.values(r[1:]) for r in cursor.fetchall()])
                results.append(answers)
        cursor.close()
        if commit:
            await asyncio.to_thread(self._end, "COMMIT")
        return results

    def _end(self, how: str) -> None:
        try:
            self._connection.execute(how)
        finally:
            if self._writing:
                self._writing = False
                self._database.writer_turn.release()

    async def rollback(self) -> None:
        if self._connection.in_transaction:
            self._end("ROLLBACK")
        elif self._writing:
            self._writing = False
            self._database.writer_turn.release()

    async def close(self) -> None:
        await self.rollback()
        self._pooled.close()

    async def explain(self, step: Step) -> str:
        statement, values = step.statement, dict(step.values or {})
        if step.rows:
            values.update(step.rows[0])
        rows = self._connection.execute(
            "EXPLAIN QUERY PLAN " + statement.sql, statement.parameters(values)
        ).fetchall()
        return "\n".join(str(row[-1]) for row in rows)


async def connect_batches(database: "Database") -> BatchConnection:
    """A :class:`BatchConnection` of its own to ``database``."""
    if database.is_sqlite:
        return _SqliteBatches(database)
    return await _PostgresBatches.connect(database)


def median_hours(
    session: Session,
    start: InstrumentedAttribute[Any],
    end: InstrumentedAttribute[Any],
    where: list[ColumnElement[bool]],
) -> float | None:
    """The median of ``end - start`` in hours over the rows ``where`` selects, computed
    by the database (see :func:`median`)."""
    if session.get_bind().dialect.name == "postgresql":
        hours = func.extract("epoch", end - start) / 3600
    else:
        hours = (func.julianday(end) - func.julianday(start)) * 24
    return median(session, hours, where)


def median_by(
    session: Session,
    values: ColumnElement[Any] | InstrumentedAttribute[Any],
    key: ColumnElement[Any] | InstrumentedAttribute[Any],
    keys: list[Any],
    where: list[ColumnElement[bool]],
) -> dict[Any, float | None]:
    """The median of ``values`` for each of ``keys`` (a few: a district's streets): one
    grouped query on PostgreSQL, a query per key on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        found = {
            k: None if v is None else round(float(v), 2)
            for k, v in session.execute(
                select(key, func.percentile_cont(0.5).within_group(values))
                .where(*where, values.is_not(None), key.in_(keys))
                .group_by(key)
            )
        }
        return {k: found.get(k) for k in keys}
    return {k: median(session, values, [*where, key == k]) for k in keys}


def median(
    session: Session,
    values: ColumnElement[Any] | InstrumentedAttribute[Any],
    where: list[ColumnElement[bool]],
) -> float | None:
    """The median of ``values`` over the rows ``where`` selects (``values`` not null),
    computed by the database: ``percentile_cont`` on PostgreSQL; on SQLite, which has no
    percentile, the middle one or two of the sorted values."""
    if session.get_bind().dialect.name == "postgresql":
        value = session.scalar(select(func.percentile_cont(0.5).within_group(values)).where(*where))
    else:
        n = session.scalar(select(func.count(values)).where(*where)) or 0
        if not n:
            return None
        middle = session.scalars(
            select(values.label("value"))
            .where(*where, values.is_not(None))
            .order_by(literal_column("value"))
            .limit(2 - n % 2)
            .offset((n - 1) // 2)
        ).all()
        value = sum(middle) / len(middle)
    return None if value is None else round(float(value), 2)
