"""Medians of durations, computed by the database."""

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ColumnExpressionArgument,
    and_,
    func,
    literal_column,
    select,
)
from sqlalchemy.orm import (
    InstrumentedAttribute,
    Session,
)


def hours_between(
    session: Session,
    *,
    start: InstrumentedAttribute[Any],
    end: InstrumentedAttribute[Any],
) -> ColumnElement[Any]:
    """``end - start`` in hours, as SQL of the session's database."""
    if session.get_bind().dialect.name == "postgresql":
        # date_part is double precision; EXTRACT is numeric (since PostgreSQL 14), whose
        # arithmetic costs several times more over the hundred thousand rows of a window.
        return func.date_part("epoch", end - start) / 3600.0
    return (func.julianday(end) - func.julianday(start)) * 24


def median_by(
    session: Session,
    values: ColumnElement[Any] | InstrumentedAttribute[Any],
    key: ColumnElement[Any] | InstrumentedAttribute[Any],
    keys: list[Any],
    where: Sequence[ColumnExpressionArgument[bool]],
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


# name: (the values, and what else selects their rows beyond the shared ``where``)
Medians = Mapping[str, tuple[Any, Sequence[Any]]]


def medians(session: Session, wanted: Medians, *, where: Sequence[Any]) -> dict[str, float | None]:
    """Several medians of the rows ``where`` selects, each over the rows its own
    conditions narrow further: on PostgreSQL in one pass (one ``percentile_cont ...
    FILTER`` each), on SQLite one :func:`median` each."""
    if session.get_bind().dialect.name != "postgresql":
        return {
            name: median(session, values, [*where, *narrower])
            for name, (values, narrower) in wanted.items()
        }
    row = session.execute(select(*_filtered_medians(wanted)).where(*where)).one()
    return dict(zip(wanted, (_rounded(v) for v in row), strict=True))


def medians_by(
    session: Session,
    wanted: Medians,
    *,
    key: ColumnElement[Any] | InstrumentedAttribute[Any],
    keys: list[Any],
    where: Sequence[Any],
) -> dict[Any, dict[str, float | None]]:
    """:func:`medians` for each of ``keys`` (a district's streets): one grouped pass on
    PostgreSQL, a :func:`median_by` each on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        each = {
            name: median_by(session, values, key, keys, [*where, *narrower])
            for name, (values, narrower) in wanted.items()
        }
        return {k: {name: each[name][k] for name in wanted} for k in keys}
    found = {
        k: dict(zip(wanted, (_rounded(v) for v in values), strict=True))
        for k, *values in session.execute(
            select(key, *_filtered_medians(wanted)).where(*where, key.in_(keys)).group_by(key)
        )
    }
    return {k: found.get(k, dict.fromkeys(wanted)) for k in keys}


def _filtered_medians(wanted: Medians) -> list[ColumnElement[Any]]:
    return [
        func.percentile_cont(0.5).within_group(values).filter(and_(values.is_not(None), *narrower))
        for values, narrower in wanted.values()
    ]


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


def median(
    session: Session,
    values: ColumnElement[Any] | InstrumentedAttribute[Any],
    where: Sequence[ColumnExpressionArgument[bool]],
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
