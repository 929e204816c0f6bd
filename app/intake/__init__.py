"""A rider's report becoming part of a ticket: the rules a report must meet, the
statements of a batch, the batch itself, and the writer that stores batches with one
commit (group commit); idempotency keys; the rider's own view of their reports.

Uses ``app.tickets`` (reference data, working time), ``app.riders`` (points),
``app.media``, ``app.platforms`` (the outbox), ``app.areas``, ``app.categories`` and the
bottom floor."""

from app.intake.batch import Receipt
from app.intake.idempotency import check_key, purge_expired, request_hash
from app.intake.reports import (
    ReportSubmission,
    ReportView,
    get_report,
    list_reports,
    nearby_tickets,
    receive_batch,
    receive_report,
)
from app.intake.rules import Received, ReportInput, prepare
from app.intake.writer import IntakeWriter

__all__ = [
    "IntakeWriter",
    "Receipt",
    "Received",
    "ReportInput",
    "ReportSubmission",
    "ReportView",
    "check_key",
    "get_report",
    "list_reports",
    "nearby_tickets",
    "prepare",
    "purge_expired",
    "receive_batch",
    "receive_report",
    "request_hash",
]
