"""Medians of durations, computed by the database."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ColumnExpressionArgument,
    func,
    literal_column,
    select,
)
from sqlalchemy.orm import (
    InstrumentedAttribute,
    Session,
)


def median_hours(
    session: Session,
    start: InstrumentedAttribute[Any],
    end: InstrumentedAttribute[Any],
    where: Sequence[ColumnExpressionArgument[bool]],
) -> float | None:
    """The median of ``end - start`` in hours over the rows ``where`` selects, computed
    by the database (see :func:`median`)."""
    return median(session, hours_between(session, start=start, end=end), where)


def hours_between(
    session: Session,
    *,
    start: InstrumentedAttribute[Any],
    end: InstrumentedAttribute[Any],
) -> ColumnElement[Any]:
    """``end - start`` in hours, as SQL of the session's database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", end - start) / 3600
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
