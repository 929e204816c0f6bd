"""The SQL that differs between PostGIS and SpatiaLite, and nowhere else.

Everything dialect-specific about geometry lives here: the rest of the code builds
queries with :func:`point`, :func:`within_bbox` and :func:`distance_m` and never asks
which database it talks to."""

from collections.abc import Iterable
from typing import Any, ClassVar

from sqlalchemy import (
    ColumnElement,
    any_,
    bindparam,
    func,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import (
    Session,
)
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import Boolean, Float, Integer

from app.geo import SRID

# --- SQL that differs between the two databases --------------------------------------


def one_large_aggregate(session: Session) -> None:
    """Prepare this transaction for one GROUP BY over a few hundred thousand rows: on
    PostgreSQL, room to hash it in memory, and no parallel workers (on a few cores, their
    gathering and merging cost more than they save). Nothing to do on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL work_mem = '32MB'"))
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))


def among(column: Any, values: Iterable[Any], *, session: Session) -> ColumnElement[bool]:
    """``column IN values`` for a page's worth of values (a thousand tickets' ids). On
    PostgreSQL ``column = ANY(:array)``: one parameter, so one statement text whatever
    their number, which the driver parses once and the server plans as one; an ``IN``
    list would be a thousand parameters, its text new to both for every length."""
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)


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
