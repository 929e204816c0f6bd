"""Engine, sessions, and the few spatial SQL pieces that differ between PostGIS and SpatiaLite.

Everything dialect-specific about geometry lives in this module: the rest of the code
builds queries with :func:`point`, :func:`within_bbox` and :func:`distance_m` and never
asks which database it talks to.

The app is synchronous throughout (sync sessions, sync endpoints run in the threadpool):
SpatiaLite is only reachable through the synchronous ``sqlite3``/``pysqlite3`` driver,
and one code path for both databases is worth more than async on one of them.
"""

import hashlib
import importlib
import math
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from ctypes.util import find_library
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Boolean, Float, Integer

from app.errors import ConfigurationError, DatabaseBusy

SRID = 4326
METRES_PER_DEGREE_LAT = 111_320.0

# Where Debian's libsqlite3-mod-spatialite puts the module; SQLite also searches its own path.
_SPATIALITE_CANDIDATES = ("mod_spatialite", "/usr/lib/x86_64-linux-gnu/mod_spatialite.so",
                          "/usr/lib/aarch64-linux-gnu/mod_spatialite.so")
_BEGIN_OPTION = "sqlite_begin"
DATABASE = "sentinel_database"
_WRITING = "sentinel_writing"
BUSY_TIMEOUT_S = 30
_ON_ROLLBACK = "sentinel_on_rollback"


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
        engine = create_engine(url, module=sqlite_driver(), pool_size=pool_size,
                               max_overflow=10, connect_args={"check_same_thread": False})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=10)


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
        self._sessions = sessionmaker(self.engine, expire_on_commit=False,
                                      info={DATABASE: self})
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
                for undo in session.info.pop(_ON_ROLLBACK, []):
                    undo()
                raise

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
        session.execute(text("SELECT count(pg_advisory_xact_lock(k)) "
                             "FROM unnest(CAST(:keys AS bigint[])) AS k"), {"keys": keys})


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


class unindexed(FunctionElement[Any]):
    """``column``, kept from steering SQLite's planner (a unary ``+``).

    SQLite picks one index per table; where a spatial filter is the selective one, a
    b-tree on another column would make it walk every row that b-tree matches.
    PostgreSQL weighs both and needs no hint.
    """

    inherit_cache = True
    name = "sentinel_unindexed"


@compiles(unindexed, "postgresql")
def _unindexed_pg(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"



class checked_per_row(FunctionElement[Any]):
    """A timestamp ``column`` that no index may search by range (SQLite: a unary ``+``;
    PostgreSQL: ``+ interval '0'``): the condition is checked on the rows another index
    walks. For filters that hold for many rows, where a range search would fetch them
    all and sort them while the walk stops at a page's worth."""

    inherit_cache = True
    name = "sentinel_checked_per_row"

    @property
    def type(self) -> Any:  # type: ignore[override]
        return next(iter(self.clauses)).type  # type: ignore[attr-defined]


@compiles(checked_per_row, "postgresql")
def _checked_per_row_pg(element: checked_per_row, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} + interval '0 seconds')"


@compiles(checked_per_row, "sqlite")
def _checked_per_row_sqlite(element: checked_per_row, compiler: SQLCompiler,
                            **kw: Any) -> str:
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
    table = column.table  # type: ignore[attr-defined]
    base_table = getattr(table, "original", table)
    index = f"idx_{base_table.name}_{column.name}"  # type: ignore[attr-defined]
    alias = compiler.preparer.format_table(table) if not hasattr(table, "original") \
        else compiler.preparer.quote(table.name)
    p = compiler.process
    return (
        f"{alias}.ROWID IN (SELECT pkid FROM \"{index}\" WHERE "
        f"xmin <= {p(max_x, **kw)} AND xmax >= {p(min_x, **kw)} AND "
        f"ymin <= {p(max_y, **kw)} AND ymax >= {p(min_y, **kw)})"
    )


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
