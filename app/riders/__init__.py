"""Riders as their platforms know them: bearer tokens, the points ledger, and what they
contributed (per rider and summed for their platform).

Uses ``app.platforms`` (the platform that vouches for a rider, the outbox),
``app.categories`` and the bottom floor."""

from app.riders.points import (
    ACTIVITY_TABLES,
    LEDGER_LINE,
    TOTAL_POINTS,
    TOTALS_CHANGE,
    Books,
    Cause,
    ReportState,
    activity_change,
    add_ledger_line,
    add_to_activity,
    add_to_totals,
    announce_status,
    owed,
    settle,
    settle_report,
    standing,
)
from app.riders.stats import (
    COUNTERS,
    GroupBy,
    Window,
    rider_detail,
    rider_page,
    summary,
    summary_window,
    totals,
)
from app.riders.tokens import TOMBSTONE_PREFIX, get_rider, issue_rider_token, rider_of

__all__ = [
    "ACTIVITY_TABLES",
    "COUNTERS",
    "LEDGER_LINE",
    "TOMBSTONE_PREFIX",
    "TOTALS_CHANGE",
    "TOTAL_POINTS",
    "Books",
    "Cause",
    "GroupBy",
    "ReportState",
    "Window",
    "activity_change",
    "add_ledger_line",
    "add_to_activity",
    "add_to_totals",
    "announce_status",
    "get_rider",
    "issue_rider_token",
    "owed",
    "rider_detail",
    "rider_of",
    "rider_page",
    "settle",
    "settle_report",
    "standing",
    "summary",
    "summary_window",
    "totals",
]
