"""The hot queries of intake go through their indexes, so cost stays flat as tickets grow."""

from typing import Any

import pytest
from sqlalchemy import text

from app.db import Database
from tests.conftest import Auth


def plan_of(database: Database, sql: str, params: Any) -> str:
    with database.session() as session:
        connection = session.connection()
        if database.is_sqlite:
            return " | ".join(str(row[-1]) for row in connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {sql}", params))
        # The test table is small, so PostgreSQL may rightly prefer a sequential scan;
        # forbid it to see which index serves the query when the table is large.
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        return " | ".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {sql}", params))


def test_the_dedup_search_starts_from_the_spatial_index(
        client: Any, auth: Auth, database: Database,
        statements: list[tuple[str, Any]]) -> None:
    rider = auth.rider("meituan", "plans")
    body = {"category": "road_damage", "lat": 31.2200, "lon": 121.4330, "coord_sys": "gcj02"}
    assert client.post("/v1/reports", json=body, headers=rider).status_code == 201
    statements.clear()
    assert client.post("/v1/reports", json=body, headers=rider).json()["outcome"] \
        == "joined_ticket"
    search = [(sql, params) for sql, params in statements
              if (sql.lstrip().startswith("SELECT") and "FROM tickets" in sql
              and "idx_tickets_location" in sql) or "tickets.location &&" in sql]
    assert len(search) == 1, [sql for sql, _ in statements]
    plan = plan_of(database, *search[0])
    if database.is_sqlite:
        # Tickets are fetched by ROWID from the R*Tree, never by walking the category's
        # b-tree (which would visit every open ticket of the category).
        assert "SEARCH tickets USING INTEGER PRIMARY KEY" in plan, plan
        assert "ix_tickets_category" not in plan and "SCAN tickets" not in plan, plan
    else:
        assert "idx_tickets_location" in plan, plan


def test_the_rate_limit_count_uses_the_riders_index(
        client: Any, auth: Auth, database: Database,
        statements: list[tuple[str, Any]]) -> None:
    rider = auth.rider("meituan", "plans-rate")
    body = {"category": "other", "lat": 31.2200, "lon": 121.4330, "coord_sys": "gcj02"}
    assert client.post("/v1/reports", json=body, headers=rider).status_code == 201
    count = [(sql, params) for sql, params in statements
             if "count(*)" in sql and "FROM reports" in sql]
    assert len(count) == 1, [sql for sql, _ in statements]
    assert "ix_reports_rider_id_received_at" in plan_of(database, *count[0])


@pytest.mark.parametrize("radius_m", [20, 30, 500])
def test_reports_within_the_radius_always_share_a_locked_cell(radius_m: int) -> None:
    """The cell locks serialise any two reports that could merge: whatever two points
    lie within a category's radius of each other, their lock sets overlap."""
    import math
    import random

    from app.models import Category
    from app.services.intake import LOCK_CELL_DEG, dedup_lock_names

    category = Category(id=1, dedup_radius_m=radius_m)
    rng = random.Random(radius_m)
    for _ in range(2000):
        # Near a cell corner, where a pair is most likely to straddle cells.
        lon = 121.40 + LOCK_CELL_DEG * rng.choice([0, 1]) + rng.uniform(-1, 1) * 0.006
        lat = 31.20 + LOCK_CELL_DEG * rng.choice([0, 1]) + rng.uniform(-1, 1) * 0.006
        bearing, metres = rng.uniform(0, 2 * math.pi), rng.uniform(0, radius_m)
        other_lon = lon + metres * math.sin(bearing) / (111_320 * math.cos(math.radians(lat)))
        other_lat = lat + metres * math.cos(bearing) / 111_320
        assert set(dedup_lock_names(category, lon, lat)) \
            & set(dedup_lock_names(category, other_lon, other_lat))
