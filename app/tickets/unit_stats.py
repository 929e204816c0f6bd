"""How the responsible units do (数字城管's 按期处置率, 返工率, 回退率): per unit, the
tickets dispatched to it in a window, of the caller's scope, and what became of them."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from app import units
from app.db import hours_between, medians_by
from app.models import Dispatch, Staff, Ticket
from app.staff import staff_area_ids, ticket_scope_filter
from app.tickets.stats import ACKNOWLEDGE_WITHIN, _count, _share, within

UNIT_FIGURES = (
    "dispatched",
    "done",
    "on_time_rate",
    "median_working_hours_to_done",
    "rework_rate",
    "return_rate",
    "median_minutes_to_acknowledge",
    "acknowledged_within_1h_rate",
)


def unit_table(
    session: Session,
    *,
    staff: Staff,
    dispatched_from: datetime | None,
    dispatched_to: datetime | None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The units serving the caller's street (an officer) or district, a row each,
    ranked (``rank_units``): ``dispatched`` in the window; ``done`` (reported done at least once);
    ``on_time_rate`` (done by the deadline it had, extensions approved included) of
    those done; the median working hours from dispatch to the last report of the work
    done; ``rework_rate`` (failed checks ÷ reports of work done); ``return_rate``
    (handed back ÷ dispatched); ``median_minutes_to_acknowledge`` (from dispatch to the
    crew's first 签收) and ``acknowledged_within_1h_rate`` (signed for within the hour, of
    the dispatches signed for and those left unsigned for longer than the hour by
    ``now``, the wall clock if not given)."""
    now = now or datetime.now(UTC)
    serving = units.units_serving(session, staff_area_ids(session, staff) or ())
    ids = [unit.id for unit in serving]
    # The dispatches of the window (by the unit's index), each joined to its ticket to
    # keep those of the caller's scope.
    window: list[ColumnElement[bool]] = [Dispatch.unit_id.in_(ids), ticket_scope_filter(staff)]
    if dispatched_from is not None:
        window.append(Dispatch.dispatched_at >= dispatched_from)
    if dispatched_to is not None:
        window.append(Dispatch.dispatched_at < dispatched_to)
    of_the_window = select(Dispatch).join(Ticket, Ticket.id == Dispatch.ticket_id).where(*window)
    counted: dict[int, tuple[int, ...]] = {
        unit_id: tuple(figures)
        for unit_id, *figures in session.execute(
            of_the_window.with_only_columns(
                Dispatch.unit_id,
                func.count(),
                _count(Dispatch.done_at.is_not(None)),
                _count(Dispatch.done_at <= Dispatch.due_at),
                func.coalesce(func.sum(Dispatch.check_fail_count), 0),
                func.coalesce(func.sum(Dispatch.done_count), 0),
                _count(Dispatch.returned_at.is_not(None)),
                _count(
                    or_(
                        Dispatch.acknowledged_at.is_not(None),
                        Dispatch.dispatched_at < now - ACKNOWLEDGE_WITHIN,
                    )
                ),
                _count(within(session, start=Dispatch.dispatched_at, end=Dispatch.acknowledged_at)),
            ).group_by(Dispatch.unit_id)
        )
    }
    medians = medians_by(
        session,
        {
            "median_working_hours_to_done": (Dispatch.done_working_h, []),
            "median_minutes_to_acknowledge": (
                hours_between(session, start=Dispatch.dispatched_at, end=Dispatch.acknowledged_at)
                * 60,
                [],
            ),
        },
        key=Dispatch.unit_id,
        keys=ids,
        where=[*window, Ticket.id == Dispatch.ticket_id],
    )
    rows = []
    for unit in serving:
        dispatched, done, in_time, failed, reported, returned, due, signed = counted.get(
            unit.id, (0,) * 8
        )
        rows.append(
            {
                "unit": unit.code,
                "unit_name": unit.name,
                "kind": unit.kind,
                "dispatched": dispatched,
                "done": done,
                "on_time_rate": _share(in_time, done),
                "median_working_hours_to_done": medians[unit.id]["median_working_hours_to_done"],
                "rework_rate": _share(failed, reported),
                "return_rate": _share(returned, dispatched),
                "median_minutes_to_acknowledge": medians[unit.id]["median_minutes_to_acknowledge"],
                "acknowledged_within_1h_rate": _share(signed, due),
            }
        )
    return rank_units(rows)


def rank_units(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Units as the district ranks them (数字城管's 按期处置率 first): the share of work
    done on time, then the least redone, the least handed back, the most dispatched;
    a unit with nothing done yet after those that did some; by code last."""

    def standing(row: dict[str, Any]) -> tuple[Any, ...]:
        def lower_first(rate: float | None) -> float:
            return 2.0 if rate is None else rate

        on_time = row["on_time_rate"]
        return (
            on_time is None,
            -(on_time or 0.0),
            lower_first(row["rework_rate"]),
            lower_first(row["return_rate"]),
            -row["dispatched"],
            row["unit"],
        )

    return sorted(rows, key=standing)
