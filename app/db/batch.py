"""Statements written for one row, run for many, over one connection in pipelined round trips."""

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    Text,
    bindparam,
    cast,
    column,
    func,
    insert,
    literal_column,
    select,
    true,
)
from sqlalchemy.types import Integer

from app.db.engine import BUSY_TIMEOUT_S, Database
from app.errors import DatabaseBusy

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
    intake's writer on the event loop (``app.intake``).

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
