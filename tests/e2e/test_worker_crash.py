"""A ``sentinel worker`` SIGKILLed in the middle of its work: a webhook delivery cut off
is delivered after the restart, with the same event id; an SLA breach is recorded once."""

import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.config import Settings
from app.db import Database
from app.models import OutboxEvent, Ticket, TicketEvent, utcnow
from tests.conftest import Auth
from tests.e2e.processes import WorkerProcess
from tests.e2e.test_webhook_delivery import REPORT_UPDATED, Receiver, receiver, set_hook
from tests.helpers import JIANGSU, emit_event, report_at

pytestmark = pytest.mark.processes

__all__ = ["receiver"]  # the fixture, used by name below


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The receiver is on 127.0.0.1, and a worker that died holds its claims 2 s."""
    return settings.model_copy(update={"allow_private_webhooks": True, "worker_lease_s": 2.0})


def wait_for(condition: Callable[[], bool], seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "waited in vain"
        time.sleep(0.1)


def test_a_delivery_cut_off_by_sigkill_is_made_after_the_restart(
    settings: Settings,
    database: Database,
    auth: Auth,
    receiver: Receiver,
    http: object,
    tmp_path: Path,
) -> None:
    worker_settings = settings
    set_hook(http, auth, "meituan", receiver.url)  # type: ignore[arg-type]
    event_id = emit_event(database, "meituan", now=utcnow(), data=REPORT_UPDATED)
    receiver.hold.clear()  # the first delivery hangs at the receiver
    worker = WorkerProcess(worker_settings, tmp_path).start()
    try:
        assert receiver.arrived.wait(40), "the worker never called"
        worker.kill()  # in the middle of the delivery
    finally:
        receiver.hold.set()
    with database.session(write=False) as session:
        assert session.get(OutboxEvent, event_id).state == "pending"  # type: ignore[union-attr]
    worker = WorkerProcess(worker_settings, tmp_path).start()
    try:

        def delivered() -> bool:
            with database.session(write=False) as session:
                return session.get(OutboxEvent, event_id).state == "delivered"  # type: ignore[union-attr]

        wait_for(delivered)
    finally:
        worker.stop()
    assert len(receiver.requests) >= 2
    assert set(receiver.ids()) == {str(event_id)}  # the same event, again


def test_an_sla_breach_is_recorded_once_across_a_crash(
    settings: Settings, database: Database, auth: Auth, client: object, tmp_path: Path
) -> None:
    rider = auth.rider("meituan", "crash-1")
    late, later = (
        uuid.UUID(report_at(client, rider, JIANGSU, north_m=north)["ticket"]["id"])  # type: ignore[arg-type]
        for north in (0, 300)
    )

    def overdue(ticket_id: uuid.UUID) -> None:
        with database.transaction() as session:
            row = session.get(Ticket, ticket_id)
            assert row is not None
            row.respond_by = utcnow() - timedelta(minutes=5)

    def breaches(ticket_id: uuid.UUID) -> int:
        with database.session(write=False) as session:
            return int(
                session.scalar(
                    select(func.count()).where(
                        TicketEvent.ticket_id == ticket_id, TicketEvent.type == "sla_breached"
                    )
                )
                or 0
            )

    overdue(late)
    first = WorkerProcess(settings, tmp_path).start()
    try:
        wait_for(lambda: breaches(late) == 1)
    finally:
        first.kill()
    # Another ticket goes late while no worker runs: its breach shows the restarted
    # worker's first sweep has been made, over both.
    overdue(later)
    second = WorkerProcess(settings, tmp_path).start()
    try:
        wait_for(lambda: breaches(later) == 1)
        assert "job failed" not in second.log.read_text()
    finally:
        second.stop()
    assert breaches(late) == 1
