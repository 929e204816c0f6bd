"""The platform's rider list, all time and by points, is one walk of its index; the
windowed numbers and the summary read their sources through (platform, time) indexes."""

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import Database, begin_writes
from app.models import Platform, utcnow
from app.pagination import PageRequest
from app.riders import rider_of, stats
from tests.helpers import plan_of_sql


def explain(session: Session, database: Database, sql: str, params: Any) -> str:
    return plan_of_sql(session, database, sql, params, off=("seqscan", "sort"))


def test_the_rider_list_by_points_walks_its_index(
    session: Session, database: Database, statements: list[tuple[str, Any]]
) -> None:
    platform = session.scalar(select(Platform).where(Platform.code == "meituan"))
    assert platform is not None
    statements.clear()
    stats.rider_page(
        session, platform=platform, window=stats.Window(), sort="-points", page=PageRequest(50)
    )
    plan = explain(session, database, *statements[-1])
    assert "ix_rider_totals_platform_id_points_rider_id" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan and "Seq Scan" not in plan, plan


def test_windowed_numbers_read_through_platform_and_time(
    session: Session, database: Database, statements: list[tuple[str, Any]]
) -> None:
    platform = session.scalar(select(Platform).where(Platform.code == "meituan"))
    assert platform is not None
    window = stats.Window(utcnow() - timedelta(days=30), utcnow())
    statements.clear()
    stats.rider_page(
        session, platform=platform, window=window, sort="-points", page=PageRequest(50)
    )
    plan = explain(session, database, *statements[-1])
    for index in (
        "ix_reports_platform_id_received_at",
        "ix_verifications_platform_id_created_at",
        "ix_points_ledger_platform_id_created_at",
    ):
        assert index in plan, plan
    assert "SCAN reports" not in plan and "Seq Scan on reports" not in plan, plan
    # The whole days and hours: ranges of the riders' days and hours, through their
    # primary keys.
    for table in ("rider_activity", "rider_daily_activity"):
        assert (f"{table} USING PRIMARY KEY" if database.is_sqlite else f"pk_{table}") in plan, plan
        assert f"SCAN {table}" not in plan and f"Seq Scan on {table}" not in plan


def test_a_riders_figures_by_category_come_from_its_indexes_alone(
    session: Session, database: Database, statements: list[tuple[str, Any]]
) -> None:
    """The busiest rider's two years are some 13,000 reports and as many ledger lines,
    each on its own table page: on PostgreSQL their category, outcome and points are
    carried in the rider's indexes, so the table is never read."""
    platform = session.scalar(select(Platform).where(Platform.code == "meituan"))
    assert platform is not None
    begin_writes(session)
    rider = rider_of(session, platform=platform, rider_id="rider-of-many-years")
    statements.clear()
    stats.rider_detail(session, platform=platform, rider=rider, window=stats.Window())
    by_category = statements[-1]
    plan = plan_of_sql(session, database, *by_category, off=("seqscan", "sort", "bitmapscan"))
    for index in ("ix_reports_rider_id_received_at", "ix_points_ledger_rider_id_created_at"):
        assert index in plan, plan
    if not database.is_sqlite:
        for table in ("reports", "points_ledger"):
            assert f"Index Only Scan using ix_{table}_rider_id" in plan, plan
