"""Engines and sessions for PostgreSQL and the embedded SQLite (with SpatiaLite), and
the guards of their transactions: writes begun as writes, advisory locks, work claimed
by one worker, hooks on commit and rollback.

The app is synchronous throughout (sync sessions, sync endpoints run in the threadpool):
SpatiaLite is only reachable through the synchronous ``sqlite3``/``pysqlite3`` driver,
and one code path for both databases is worth more than async on one of them (the
intake writer, the one asynchronous path, has its own connection: ``app.db.batch``)."""

import hashlib
import importlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from ctypes.util import find_library
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Engine,
    create_engine,
    event,
    exists,
    func,
    make_url,
    select,
    text,
)
from sqlalchemy.orm import (
    ORMExecuteState,
    Session,
    SessionTransaction,
    sessionmaker,
)

from app.errors import ConfigurationError, DatabaseBusy

# Where Debian's libsqlite3-mod-spatialite puts the module; SQLite also searches its own path.
_SPATIALITE_CANDIDATES = (
    "mod_spatialite",
    "/usr/lib/x86_64-linux-gnu/mod_spatialite.so",
    "/usr/lib/aarch64-linux-gnu/mod_spatialite.so",
)
_BEGIN_OPTION = "sqlite_begin"
DATABASE = "sentinel_database"
_WRITING = "sentinel_writing"
logger = logging.getLogger("app.db")

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
        # PIPL: an erasure (or a purge) must leave nothing recoverable in the file. Without
        # this SQLite only unlinks what it deletes, and the bytes stay in free pages and
        # unused cell space until reused, for anyone with a copy of the file to read. ON
        # zeroes them; FAST would leave them on freelist pages, to save their writes. It
        # holds for the connection that deletes, so every connection sets it. The old
        # pages in the write-ahead log are forget_freed_pages()'s.
        cursor.execute("PRAGMA secure_delete=ON")
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
# Connections opened beyond the pool when it is empty (closed again when returned).
MAX_OVERFLOW = 10


def create_db_engine(url: str, pool_size: int = POOL_SIZE, *, read_only: bool = False) -> Engine:
    """An engine on ``url``; with ``read_only`` (PostgreSQL), one whose every transaction
    is read-only."""
    if url.startswith("sqlite"):
        if read_only:
            raise ConfigurationError("a read-only database is a PostgreSQL read replica")
        engine = create_engine(
            url,
            module=sqlite_driver(),
            pool_size=pool_size,
            max_overflow=MAX_OVERFLOW,
            connect_args={"check_same_thread": False},
        )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=MAX_OVERFLOW)
    if read_only:
        _make_read_only(engine)
    return engine


def _make_read_only(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Set once per connection, not per transaction (no round trip more per request),
        # and not in the URL's options, which stay the operator's: a write sent this way
        # by mistake fails loudly, even where the URL names a primary.
        with dbapi_conn.cursor() as cursor:
            cursor.execute("SET default_transaction_read_only = on")
        dbapi_conn.commit()


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

    A ``read_only`` database (PostgreSQL's: a read replica) refuses every write.
    """

    def __init__(self, url: str, pool_size: int = POOL_SIZE, *, read_only: bool = False) -> None:
        self.url = url
        self.engine = create_db_engine(url, pool_size, read_only=read_only)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        # How many requests may hold a session at once (app.deps takes turns by it): each
        # may open a second one within a request, and a connection is left for whatever
        # reads without a request's session (a photo's upload, Open311's POST).
        self.sessions_at_once = max(1, (pool_size + MAX_OVERFLOW) // 2 - 1)
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


def after_commit(session: Session, then: Callable[[], object]) -> None:
    """Run ``then`` once the transaction of ``session`` has committed (files to remove
    because rows that named them are gone), never if it rolls back. What it returns is
    not used."""
    session.info.setdefault(_AFTER_COMMIT, []).append(then)


# How long an erasure's checkpoint waits for readers still on the old pages, in all.
_CHECKPOINT_PATIENCE_S = 2.0
# Each try waits this long for the locks (its busy timeout); the next begins this long after.
_CHECKPOINT_TRY_MS = 100


def forget_freed_pages(database: Database) -> bool:
    """Leave nothing of what was deleted or overwritten in the database's files: call it
    once the transaction that erased has committed. False if it could not (logged).

    SQLite: ``secure_delete`` zeroes what a transaction frees, but in WAL mode the new
    pages go to the write-ahead log, and the log's earlier frames still hold the pages as
    they were. A checkpoint in TRUNCATE mode writes the log back into the database file
    and cuts the log to zero bytes. PostgreSQL: nothing here (docs/privacy.md, "What
    stays on disk").

    The checkpoint cannot finish while another connection still reads a snapshot older
    than the erasure (a request under way, an export being streamed, a backup). Idle
    pooled connections hold none: the pool rolls each back when it is returned. So it is
    tried again for about two seconds, each try with a short busy timeout (not the
    writers' 30 s): while it waits it holds SQLite's write lock, and it must not keep the
    writers, or the response, waiting long. Between tries this process's writers have
    their turn. If readers outlast that, the erasure stands and the failure is logged;
    the next erasure or purge truncates the log, and until then SQLite's own (passive)
    checkpoints write the frames back and reuse the log from its start, overwriting the
    old frames as new ones come.
    """
    if not database.is_sqlite:
        return True
    deadline = time.monotonic() + _CHECKPOINT_PATIENCE_S
    while True:
        if _truncate_log(database, wait_s=max(deadline - time.monotonic(), 0)):
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(_CHECKPOINT_TRY_MS / 1000)
    logger.warning(
        "the write-ahead log could not be checkpointed and truncated in %.0f s (readers on "
        "older snapshots): erased data stays in it until a later checkpoint",
        _CHECKPOINT_PATIENCE_S,
    )
    return False


def _truncate_log(database: Database, *, wait_s: float) -> bool:
    """One try of ``PRAGMA wal_checkpoint(TRUNCATE)``, in this process's writers' turn."""
    if not database.writer_turn.acquire(timeout=wait_s):
        return False
    try:
        connection = database.engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout={_CHECKPOINT_TRY_MS}")
            try:
                # (busy, frames in the log, frames written back): busy is 1 when it could
                # not write every frame back or not reset the log.
                busy, _, _ = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
                cursor.close()
        finally:
            connection.close()
    finally:
        database.writer_turn.release()
    return not busy


# --- locks ---------------------------------------------------------------------------


def _lock_key(parts: tuple[object, ...]) -> int:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_key(*parts: object) -> int:
    """The advisory lock key of ``parts`` (the same in every process)."""
    return _lock_key(parts)


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
