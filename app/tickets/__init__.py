"""Tickets from the office's side: the status graph and the one function that changes a
status, dispatch to the responsible units and the case's exceptions, the queue, SLAs on
the working calendar, office and unit statistics and exports, and the reference data
(areas, categories, calendar) each process holds.

Uses ``app.areas``, ``app.categories``, ``app.media``, ``app.riders``, ``app.staff``,
``app.units`` and the bottom floor."""

from app.tickets.calendar import YearInput, calendar_warnings, get_year, seed_calendar, set_year
from app.tickets.deadlines import deadline_moved, mark_deadlines
from app.tickets.dispatching import RETURN_REASONS, handled_by_unit, work_list
from app.tickets.export import XLSX, queue_csv, stats_xlsx, streets_xlsx
from app.tickets.feedback import FeedbackInput, give_feedback
from app.tickets.queue import (
    MapPoint,
    Nearby,
    QueueFilter,
    QueueSort,
    map_points,
    merge_candidates,
    page_query,
    queue_page,
    status_counts,
)
from app.tickets.reference import (
    REFERENCE_TOKENS,
    CategoryRules,
    Reference,
    current_reference,
    held_reference,
    route_point,
    warm_reference,
)
from app.tickets.sla import (
    close_resolved,
    escalate_late,
    record_breaches,
    record_warnings,
    unshelve_due,
)
from app.tickets.stats import STREET_FIGURES, daily_trend, office_stats, street_table
from app.tickets.unit_stats import UNIT_FIGURES, unit_table
from app.tickets.views import (
    FirstSight,
    QueueRow,
    ReportOnTicket,
    TicketView,
    first_sights,
    queue_rows,
    ticket_in_scope,
    ticket_view,
)
from app.tickets.workflow import (
    HIDE_REASONS,
    NEEDS_A_NOTE,
    PUBLIC_ACTIONS,
    REJECT_REASONS,
    ActionInput,
    VerificationInput,
    actions_for,
    allowed_actions,
    apply_action,
    change,
    verify_resolution,
)
from app.tickets.working_time import SlaClock, WorkingCalendar, due

__all__ = [
    "HIDE_REASONS",
    "NEEDS_A_NOTE",
    "PUBLIC_ACTIONS",
    "REFERENCE_TOKENS",
    "REJECT_REASONS",
    "RETURN_REASONS",
    "STREET_FIGURES",
    "UNIT_FIGURES",
    "XLSX",
    "ActionInput",
    "CategoryRules",
    "FeedbackInput",
    "FirstSight",
    "MapPoint",
    "Nearby",
    "QueueFilter",
    "QueueRow",
    "QueueSort",
    "Reference",
    "ReportOnTicket",
    "SlaClock",
    "TicketView",
    "VerificationInput",
    "WorkingCalendar",
    "YearInput",
    "actions_for",
    "allowed_actions",
    "apply_action",
    "calendar_warnings",
    "change",
    "close_resolved",
    "current_reference",
    "daily_trend",
    "deadline_moved",
    "due",
    "escalate_late",
    "first_sights",
    "get_year",
    "give_feedback",
    "handled_by_unit",
    "held_reference",
    "map_points",
    "mark_deadlines",
    "merge_candidates",
    "office_stats",
    "page_query",
    "queue_csv",
    "queue_page",
    "queue_rows",
    "record_breaches",
    "record_warnings",
    "route_point",
    "seed_calendar",
    "set_year",
    "stats_xlsx",
    "status_counts",
    "street_table",
    "streets_xlsx",
    "ticket_in_scope",
    "ticket_view",
    "unit_table",
    "unshelve_due",
    "verify_resolution",
    "warm_reference",
    "work_list",
]
