"""Every queue page and the stats window are served by an index, in both scopes: no
plan scans the ticket table, and none sorts it (the index already holds the order).

The test tables are small, so the planners are told what a large table would tell them:
PostgreSQL may not scan or sort when an index can do it (``enable_seqscan``/``enable_sort``
off make those choices prohibitively expensive, not impossible, so a plan that still shows
one has no index to use); SQLite's plan is the same at any size.
"""

import time
import weakref
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import Database
from app.models import Staff, TicketStatus, utcnow
from app.tickets import queue
from app.tickets.queue import QueueFilter, QueueSort, page_query, status_counts
from app.tickets.stats import office_stats
from tests.helpers import plan_of_query, plan_of_sql

USERS = {"officer": ("officer_310105002", "street_id"), "district": ("changning", "district_id")}
FILTERS = {
    "everything": QueueFilter(),
    "new": QueueFilter(statuses=[TicketStatus.NEW]),
    "new and overdue": QueueFilter(statuses=[TicketStatus.NEW], overdue=True),
    "overdue": QueueFilter(overdue=True),
}
# The index each sort walks, with or without a status filter.
INDEXES = {
    QueueSort.NEWEST: "created_at_id",
    QueueSort.OLDEST: "created_at_id",
    QueueSort.PRIORITY: "priority_created_at_id",
    QueueSort.DUE: "due_at_id",
}


@pytest.fixture(autouse=True)
def _planned_for_an_unknown_table(session: Session, database: Database) -> None:
    """PostgreSQL would plan from whatever statistics an autovacuum took of earlier tests'
    rows (a few tickets, all of one district, at times that make any window look
    selective): these tests ask what it plans for a table it knows nothing of but its
    indexes, as the large one they stand for. Rolled back with the test's transaction."""
    if database.is_sqlite:
        return
    connection = session.connection()
    connection.exec_driver_sql("DELETE FROM pg_statistic WHERE starelid = 'tickets'::regclass")
    connection.exec_driver_sql(
        "UPDATE pg_class SET reltuples = -1, relpages = 0 WHERE oid = 'tickets'::regclass"
    )


def assert_walks_an_index(plan: str, database: Database, index: str) -> None:
    assert index in plan, plan
    if database.is_sqlite:
        assert "SCAN tickets" not in plan and "TEMP B-TREE" not in plan, plan
    else:
        assert "Seq Scan" not in plan and "Sort" not in plan, plan


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("sort", list(QueueSort))
@pytest.mark.parametrize("where", FILTERS)
def test_every_queue_page_walks_an_index(
    session: Session, database: Database, user: str, sort: QueueSort, where: str
) -> None:
    username, scope = USERS[user]
    staff = session.scalar(select(Staff).where(Staff.username == username))
    query = page_query(
        session, staff=staff, where=FILTERS[where], sort=sort, limit=50, cursor=None, now=utcnow()
    )
    plan = plan_of_query(session, database, query)
    index = f"ix_tickets_{scope}_{INDEXES[sort]}"
    if FILTERS[where].statuses and sort in (QueueSort.NEWEST, QueueSort.OLDEST):
        with_status = f"ix_tickets_{scope}_status_{INDEXES[sort]}"
        # SQLite always takes the index with the status; PostgreSQL does on a large
        # table, and on the suite's tiny one may walk the scope's plain index instead.
        index = with_status if database.is_sqlite or with_status in plan else index
    assert_walks_an_index(plan, database, index)


@pytest.mark.parametrize("user", USERS)
def test_the_stats_window_is_found_through_the_scope_index(
    session: Session, database: Database, statements: list[tuple[str, Any]], user: str
) -> None:
    username, scope = USERS[user]
    staff = session.scalar(select(Staff).where(Staff.username == username))
    statements.clear()
    office_stats(
        session,
        staff=staff,
        created_from=utcnow() - timedelta(days=30),
        created_to=None,
        now=utcnow(),
    )
    queries = [(sql, params) for sql, params in statements if "FROM tickets" in sql]
    assert queries
    for sql, params in queries:
        plan = plan_of_sql(session, database, sql, params, off=("seqscan",))
        assert "SCAN tickets" not in plan and "Seq Scan" not in plan, plan
        assert f"ix_tickets_{scope}" in plan, plan


@pytest.mark.parametrize("user", USERS)
def test_the_counts_by_status_walk_the_scope_index_on_the_status(
    session: Session,
    database: Database,
    statements: list[tuple[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    user: str,
) -> None:
    """Every status counted (a process's first count), and only those of short lists (the
    statuses of thousands kept): neither reads the ticket table, and the second searches
    the scope's index by the statuses it counts."""
    username, scope = USERS[user]
    staff = session.scalar(select(Staff).where(Staff.username == username))
    kept = {
        (staff.role, staff.area_id, staff.unit_id, QueueFilter()): (
            time.monotonic(),
            {TicketStatus.CLOSED: 250_000},
        )
    }
    for held in ({}, {database: kept}):
        monkeypatch.setattr(queue, "_kept_counts", weakref.WeakKeyDictionary(held))
        statements.clear()
        counts = status_counts(session, staff=staff, where=QueueFilter(), now=utcnow())
        assert counts.get(TicketStatus.CLOSED, 0) == (250_000 if held else 0)
        (sql, params), *_ = [(s, p) for s, p in statements if "GROUP BY tickets.status" in s]
        plan = plan_of_sql(session, database, sql, params, off=("seqscan",))
        assert "SCAN tickets" not in plan and "Seq Scan" not in plan, plan
        index = f"ix_tickets_{scope}_status" if held else f"ix_tickets_{scope}"
        assert index in plan, plan
        # SQLite searches by the statuses; PostgreSQL does on a large table (on the city
        # bench: "Index Cond: ((district_id = …) AND (status = ANY (…)))"), and on the
        # suite's tiny one may filter the scope's range instead.
        assert not held or not database.is_sqlite or f"{scope}=? AND status=?" in plan, plan
