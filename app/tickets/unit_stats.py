"""How the responsible units do (数字城管's 按期处置率, 返工率, 回退率): per unit, the
tickets dispatched to it in a window, of the caller's scope, and what became of them."""

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from app import units
from app.db import median_by
from app.models import Dispatch, Staff, Ticket
from app.staff import staff_area_ids, ticket_scope_filter
from app.tickets.stats import _count, _share

UNIT_FIGURES = (
    "dispatched",
    "done",
    "on_time_rate",
    "median_working_hours_to_done",
    "rework_rate",
    "return_rate",
)


def unit_table(
    session: Session,
    *,
    staff: Staff,
    dispatched_from: datetime | None,
    dispatched_to: datetime | None,
) -> list[dict[str, Any]]:
    """The units serving the caller's street (an officer) or district, a row each, by
    code: ``dispatched`` in the window; ``done`` (reported done at least once);
    ``on_time_rate`` (done by the deadline it had, extensions approved included) of
    those done; the median working hours from dispatch to the last report of the work
    done; ``rework_rate`` (failed checks ÷ reports of work done); ``return_rate``
    (handed back ÷ dispatched)."""
    serving = units.units_serving(session, staff_area_ids(session, staff) or ())
    ids = [unit.id for unit in serving]
    # The dispatches of the window, of tickets in the caller's scope.
    scoped = select(Ticket.id).where(ticket_scope_filter(staff))
    window: list[ColumnElement[bool]] = [
        Dispatch.unit_id.in_(ids),
        Dispatch.ticket_id.in_(scoped),
    ]
    if dispatched_from is not None:
        window.append(Dispatch.dispatched_at >= dispatched_from)
    if dispatched_to is not None:
        window.append(Dispatch.dispatched_at < dispatched_to)
    counted: dict[int, tuple[int, ...]] = {
        unit_id: tuple(figures)
        for unit_id, *figures in session.execute(
            select(
                Dispatch.unit_id,
                func.count(),
                _count(Dispatch.done_at.is_not(None)),
                _count(Dispatch.done_at <= Dispatch.due_at),
                func.coalesce(func.sum(Dispatch.check_fail_count), 0),
                func.coalesce(func.sum(Dispatch.done_count), 0),
                _count(Dispatch.returned_at.is_not(None)),
            )
            .where(*window)
            .group_by(Dispatch.unit_id)
        )
    }
    hours = median_by(session, Dispatch.done_working_h, Dispatch.unit_id, ids, window)
    rows = []
    for unit in serving:
        dispatched, done, in_time, failed, reported, returned = counted.get(unit.id, (0,) * 6)
        rows.append(
            {
                "unit": unit.code,
                "unit_name": unit.name,
                "kind": unit.kind,
                "dispatched": dispatched,
                "done": done,
                "on_time_rate": _share(in_time, done),
                "median_working_hours_to_done": hours[unit.id],
                "rework_rate": _share(failed, reported),
                "return_rate": _share(returned, dispatched),
            }
        )
    return rows
