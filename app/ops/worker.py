"""Background work: periodic jobs run by ``sentinel worker`` or inside ``serve``.

Each job is a function of (database, settings, now) that claims its own work (with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL) so that any number of workers can run side by
side. The clock is passed in, so tests drive jobs without sleeping.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from app import alerts, intake, media, notify, open311, platforms, privacy, tickets
from app.config import Settings
from app.db import Database, forget_freed_pages
from app.media import media_store
from app.models import utcnow

logger = logging.getLogger("sentinel.worker")


class JobRun(Protocol):
    def __call__(self, database: Database, settings: Settings, *, now: datetime) -> int: ...


@dataclass(frozen=True)
class Job:
    name: str
    every_s: float
    run: JobRun  # returns how many things it did


def _purge_idempotency_records(database: Database, settings: Settings, *, now: datetime) -> int:
    with database.transaction() as session:
        return intake.purge_expired(session, now)


def _record_sla_breaches(database: Database, settings: Settings, *, now: datetime) -> int:
    with database.transaction(write=False) as session:
        return tickets.record_breaches(session, now)


def _keep_deadline_marks(database: Database, settings: Settings, *, now: datetime) -> int:
    """The deadlines' marks worked out, then the warnings and escalations they call for."""
    with database.transaction(write=False) as session:
        done = tickets.mark_deadlines(session, now, escalate_after=settings.escalate_after)
    with database.transaction(write=False) as session:
        done += tickets.record_warnings(session, now)
    with database.transaction(write=False) as session:
        return done + tickets.escalate_late(session, now)


def _notify_events(database: Database, settings: Settings, *, now: datetime) -> int:
    told = notify.notify_events(database, now=now) + notify.notify_sightings(database, now=now)
    return told + notify.send_digests(database, now=now)


def _deliver_notifications(database: Database, settings: Settings, *, now: datetime) -> int:
    return notify.deliver_notifications(database, settings=settings, now=now)


def _purge_notification_history(database: Database, settings: Settings, *, now: datetime) -> int:
    with database.transaction() as session:
        return notify.purge_history(session, now)


def _close_resolved_tickets(database: Database, settings: Settings, *, now: datetime) -> int:
    with database.transaction(write=False) as session:
        return tickets.close_resolved(session, now, after=timedelta(hours=settings.auto_close_h))


def _unshelve_for_review(database: Database, settings: Settings, *, now: datetime) -> int:
    with database.transaction(write=False) as session:
        return tickets.unshelve_due(session, now)


def _deliver_webhooks(database: Database, settings: Settings, *, now: datetime) -> int:
    return platforms.deliver_due(database, settings=settings, now=now)


def _forward_to_open311(database: Database, settings: Settings, *, now: datetime) -> int:
    return open311.forward_due(database, settings=settings, now=now)


def _purge_webhook_history(database: Database, settings: Settings, *, now: datetime) -> int:
    with database.transaction() as session:
        return platforms.purge_history(session, now)


def _purge_personal_information(database: Database, settings: Settings, *, now: datetime) -> int:
    purged = privacy.purge(database, media_store(settings), now=now, days=settings.retention_days)
    if purged.tickets or purged.unused_photos:
        logger.info(
            "retention purge: %d tickets, %d reports, %d photos, %d unused photos",
            purged.tickets,
            purged.reports,
            purged.photos,
            purged.unused_photos,
        )
    return purged.tickets + purged.unused_photos


def _sweep_orphan_photos(database: Database, settings: Settings, *, now: datetime) -> int:
    return media.sweep_orphans(database, media_store(settings), older_than=now - timedelta(hours=1))


def _sweep_unused_photos(database: Database, settings: Settings, *, now: datetime) -> int:
    swept = privacy.sweep_unused_photos(database, media_store(settings), now=now, settings=settings)
    if swept:
        logger.info("unused photos removed: %d", swept)
    return swept + media.forget_uploads(database, now=now)


def _keep_working_calendar(database: Database, settings: Settings, *, now: datetime) -> int:
    """Add the years chinesecalendar has learnt; say which the calendar still lacks."""
    with database.transaction() as session:
        added = tickets.seed_calendar(session, now.date())
        for warning in tickets.calendar_warnings(session, now):
            logger.warning(warning)
    return len(added)


def _grow_and_expire_alerts(database: Database, settings: Settings, *, now: datetime) -> int:
    with database.transaction() as session:
        return alerts.grow_and_expire(session, now)


def _purge_closed_alerts(database: Database, settings: Settings, *, now: datetime) -> int:
    with database.transaction() as session:
        purged = alerts.purge_closed(
            session, media_store(settings), now=now, days=settings.alert_retention_days
        )
    if purged:
        # Riders' sighting notes went: nothing of them may stay in the database's files.
        forget_freed_pages(database)
    return purged


# The jobs every worker runs.
JOBS: list[Job] = [
    Job("record_sla_breaches", 60, _record_sla_breaches),
    Job("keep_deadline_marks", 30, _keep_deadline_marks),
    Job("notify_events", 5, _notify_events),
    Job("deliver_notifications", 2, _deliver_notifications),
    Job("purge_notification_history", 3600, _purge_notification_history),
    Job("close_resolved_tickets", 300, _close_resolved_tickets),
    Job("unshelve_for_review", 600, _unshelve_for_review),
    Job("purge_idempotency_records", 3600, _purge_idempotency_records),
    Job("deliver_webhooks", 5, _deliver_webhooks),
    Job("purge_webhook_history", 3600, _purge_webhook_history),
    Job("forward_to_open311", 10, _forward_to_open311),
    Job("purge_personal_information", 86400, _purge_personal_information),
    Job("sweep_orphan_photos", 86400, _sweep_orphan_photos),
    Job("sweep_unused_photos", 600, _sweep_unused_photos),
    Job("keep_working_calendar", 86400, _keep_working_calendar),
    Job("grow_and_expire_alerts", 60, _grow_and_expire_alerts),
    Job("purge_closed_alerts", 3600, _purge_closed_alerts),
]


@dataclass
class Worker:
    database: Database
    settings: Settings
    jobs: list[Job] = field(default_factory=lambda: JOBS)
    clock: Callable[[], datetime] = utcnow
    _last_run: dict[str, float] = field(default_factory=dict)

    def run_due(self, monotonic_now: float) -> dict[str, int]:
        """Run every job whose interval has passed; a failing job does not stop the others."""
        done: dict[str, int] = {}
        for job in self.jobs:
            if monotonic_now - self._last_run.get(job.name, float("-inf")) < job.every_s:
                continue
            self._last_run[job.name] = monotonic_now
            try:
                done[job.name] = job.run(self.database, self.settings, now=self.clock())
            except Exception:
                logger.exception("job failed", extra={"fields": {"job": job.name}})
        return done

    def run_until(self, stop: threading.Event, tick_s: float = 1.0) -> None:
        logger.info("worker started", extra={"fields": {"jobs": [j.name for j in self.jobs]}})
        while not stop.is_set():
            self.run_due(time.monotonic())
            stop.wait(tick_s)
        logger.info("worker stopped")


def start_in_thread(worker: Worker) -> Callable[[], None]:
    """Run ``worker`` in a daemon thread; returns the function that stops it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=worker.run_until, args=(stop,), name="sentinel-worker", daemon=True
    )
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=10)

    return halt
