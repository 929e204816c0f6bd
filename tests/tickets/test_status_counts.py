"""The queue's counts by status: the scope's and the filter's, whatever statuses the
filter asks for; a status of a short list counted anew on every call, one holding
thousands (a district's closed history) counted once a minute by the process."""

import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import Database
from app.models import Staff, TicketStatus, utcnow
from app.tickets import queue
from app.tickets.queue import QueueFilter, status_counts
from tests.conftest import Auth
from tests.helpers import HUAYANG, JIANGSU, act, report_at

OFFICER, DISTRICT = "officer_310105002", "changning"
S = TicketStatus


def opened(client: TestClient, auth: Auth, where: dict[str, Any], **fields: Any) -> str:
    return str(report_at(client, auth.rider("meituan", "sc-1"), where, **fields)["ticket"]["id"])


def counts(database: Database, username: str, where: QueueFilter | None = None) -> dict[S, int]:
    with database.session() as session:
        return status_counts(
            session, staff=_staff(session, username), where=where or QueueFilter(), now=utcnow()
        )


def _staff(session: Session, username: str) -> Staff:
    staff = session.scalar(select(Staff).where(Staff.username == username))
    assert staff is not None
    return staff


@pytest.fixture
def _nothing_kept(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Counts kept by this test stay with it: no later test of the process sees them."""
    monkeypatch.setattr(queue, "_kept_counts", weakref.WeakKeyDictionary())
    yield


@pytest.mark.usefixtures("_nothing_kept")
def test_each_status_of_the_scope_and_filter_is_counted_and_follows_every_change(
    client: TestClient, auth: Auth, database: Database
) -> None:
    officer = auth.staff(OFFICER)
    waste = opened(client, auth, JIANGSU, category="waste")
    road = opened(client, auth, JIANGSU, category="road_damage", north_m=-200)
    spam = opened(client, auth, JIANGSU, category="waste", north_m=-400)
    opened(client, auth, HUAYANG)
    act(client, officer, road, {"action": "accept"})
    act(client, officer, spam, {"action": "reject", "reason": "spam"})

    assert counts(database, OFFICER) == {S.NEW: 1, S.ACCEPTED: 1, S.REJECTED: 1}
    assert counts(database, DISTRICT) == {S.NEW: 2, S.ACCEPTED: 1, S.REJECTED: 1}
    # The statuses the filter asks for do not narrow the counts; its other terms do.
    assert counts(database, OFFICER, QueueFilter(statuses=[S.NEW])) == counts(database, OFFICER)
    assert counts(database, OFFICER, QueueFilter(category="waste")) == {S.NEW: 1, S.REJECTED: 1}

    act(client, officer, waste, {"action": "accept"})
    assert counts(database, OFFICER) == {S.ACCEPTED: 2, S.REJECTED: 1}


@pytest.mark.usefixtures("_nothing_kept")
def test_a_status_of_thousands_is_counted_once_a_minute_and_the_others_at_once(
    client: TestClient, auth: Auth, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue, "KEEP_COUNTS_FROM", 2)  # "thousands": two, here
    officer = auth.staff(OFFICER)
    opened(client, auth, JIANGSU, category="waste")
    opened(client, auth, JIANGSU, category="waste", north_m=-200)
    accepted = opened(client, auth, JIANGSU, category="road_damage", north_m=-400)
    act(client, officer, accepted, {"action": "accept"})
    assert counts(database, OFFICER) == {S.NEW: 2, S.ACCEPTED: 1}

    opened(client, auth, JIANGSU, category="waste", north_m=-600)  # a third new ticket
    act(client, officer, accepted, {"action": "reject", "reason": "spam"})
    # The two new ones as counted a moment ago; the others as they are now.
    assert counts(database, OFFICER) == {S.NEW: 2, S.REJECTED: 1}
    # Another filter, another scope: counted anew.
    assert counts(database, OFFICER, QueueFilter(category="waste")) == {S.NEW: 3}
    assert counts(database, DISTRICT) == {S.NEW: 3, S.REJECTED: 1}

    monkeypatch.setattr(queue, "KEEP_COUNTS_FOR_S", 0.0)  # the minute is over
    assert counts(database, OFFICER) == {S.NEW: 3, S.REJECTED: 1}
