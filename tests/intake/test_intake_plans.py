"""The statements of intake read through their indexes, so a report costs the same with
a thousand open tickets as with a million.

Each is planned as the intake's writer runs it: on its own connection (PostgreSQL: with
its planner settings, over a batch of rows), with representative parameters. On
PostgreSQL the test tables are small and a sequential scan is rightly cheaper there, so
it is forbidden, to see which index serves the statement when the table is large.
"""

import asyncio
import math
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text

from app.db import BatchConnection, Database, Step, connect_batches, migrate
from app.geo import bbox_around
from app.intake.rules import LOCK_CELL_DEG, dedup_lock_names
from app.intake.statements import IntakeStatements
from app.models import Category
from app.models.points import Contribution

Explain = Callable[[str, dict[str, Any] | None, list[dict[str, Any]] | None], str]


# PostgreSQL only: thousands of open tickets, riders and reports, and the statistics of
# them, in the transaction of the plan (rolled back with it, statistics included), so that
# the planner weighs indexes as on a city's tables rather than on a handful of rows.
MANY = """
INSERT INTO riders (id, platform_id, external_id, pseudonym, created_at, updated_at)
  SELECT gen_random_uuid(), (SELECT id FROM platforms LIMIT 1), 'plan-' || n, 'R-P' || n,
         now(), now() FROM generate_series(1, 3000) AS n;
INSERT INTO rider_totals (rider_id, platform_id, reports, tickets_opened, joined, accepted,
                          resolved, rejected, verifications, points)
  SELECT id, platform_id, 0, 0, 0, 0, 0, 0, 0, 0 FROM riders;
INSERT INTO tickets (id, ref, category_id, status, priority, location, district_id,
                     report_count, version, respond_by, resolve_by, created_at, updated_at)
  SELECT gen_random_uuid(), 'PLAN-' || n, 1 + n % 7, 'new', 2,
         ST_SetSRID(ST_MakePoint(121.40 + (n % 60) * 0.001, 31.20 + (n / 60) * 0.001), 4326),
         (SELECT id FROM areas WHERE level = 'district' LIMIT 1), 1, 1, now(), now(), now(),
         now() FROM generate_series(1, 3000) AS n;
INSERT INTO reports (id, rider_id, platform_id, ticket_id, category_id, outcome, location,
                     input_lat, input_lon, input_coord_sys, district_id, observed_at,
                     received_at)
  SELECT gen_random_uuid(), r.id, r.platform_id, t.id, t.category_id, 'new_ticket',
         t.location, 31.2, 121.4, 'wgs84', t.district_id, now(), now()
  FROM (SELECT id, row_number() OVER () AS n FROM tickets) AS o
  JOIN tickets t ON t.id = o.id
  JOIN (SELECT id, platform_id, row_number() OVER () AS n FROM riders) AS r
    ON r.n = 1 + o.n % 300;
ANALYZE riders, rider_totals, tickets, reports, idempotency_records;
SET LOCAL enable_seqscan = off;
"""


@pytest.fixture
def explain(database: Database, baseline: object) -> Iterator[Explain]:
    loop = asyncio.new_event_loop()
    connection: BatchConnection = loop.run_until_complete(connect_batches(database))
    statements = IntakeStatements(connection)

    def plan(
        name: str, values: dict[str, Any] | None = None, rows: list[dict[str, Any]] | None = None
    ) -> str:
        async def explained() -> str:
            if not database.is_sqlite:
                await connection._connection.execute(MANY)  # type: ignore[attr-defined]
            return await connection.explain(Step(getattr(statements, name), values, rows))

        return loop.run_until_complete(explained())

    yield plan
    loop.run_until_complete(connection.close())
    loop.close()


def look_up_row(radius_m: float = 30) -> dict[str, Any]:
    now = datetime.now(UTC)
    lon, lat = 121.4285, 31.2218
    box = bbox_around(lon, lat, radius_m)
    return {
        "rider_id": uuid.uuid4(),
        "key": "a-key",
        "counted_since": now - timedelta(hours=1),
        "category_id": 1,
        "lon": lon,
        "lat": lat,
        "radius_m": radius_m,
        "opened_since": now - timedelta(hours=72),
        "min_lon": box[0],
        "min_lat": box[1],
        "max_lon": box[2],
        "max_lat": box[3],
    }


def test_the_look_up_reads_each_table_by_its_index(explain: Explain, database: Database) -> None:
    plan = explain("look_up", None, [look_up_row() for _ in range(8)])
    if database.is_sqlite:
        # Tickets are fetched by ROWID from the R*Tree, never by walking the category's
        # b-tree (which would visit every open ticket of the category).
        assert "SEARCH tickets USING INTEGER PRIMARY KEY" in plan, plan
        assert "ix_tickets_category" not in plan and "SCAN tickets" not in plan, plan
        assert "ix_reports_rider_id_received_at" in plan, plan
        assert "SCAN riders" not in plan and "SCAN idempotency_records" not in plan, plan
        assert "SCAN reports" not in plan, plan
    else:
        for index in (
            "idx_tickets_location",
            "ix_reports_rider_id_received_at",
            "pk_riders",
            "pk_idempotency_records",
            "ix_reports_ticket_id_rider_id",
        ):
            assert index in plan, (index, plan)
        assert "Seq Scan" not in plan and "Hash" not in plan and "BitmapAnd" not in plan, plan


def test_joining_tickets_and_adding_to_totals_go_by_primary_key(
    explain: Explain, database: Database
) -> None:
    joined = explain(
        "join_tickets",
        None,
        [{"ticket_id": uuid.uuid4(), "joined": 1, "now": datetime.now(UTC)}] * 3,
    )
    totals = explain(
        "add_to_totals",
        None,
        [
            {
                "key_rider_id": uuid.uuid4(),
                **{f"add_{c}": 1 for c in Contribution.COUNTERS},
            }
        ]
        * 3,
    )
    if database.is_sqlite:
        assert "SEARCH tickets USING INDEX" in joined, joined
        assert "SEARCH rider_totals USING INDEX" in totals, totals
    else:
        assert "pk_tickets" in joined and "Seq Scan" not in joined, joined
        assert "pk_rider_totals" in totals and "Seq Scan" not in totals, totals


@pytest.mark.parametrize("radius_m", [20, 30, 500])
def test_reports_within_the_radius_always_share_a_locked_cell(radius_m: int) -> None:
    """The cell locks serialise any two reports that could merge: whatever two points
    lie within a category's radius of each other, their lock sets overlap."""
    import random

    category = Category(id=1, dedup_radius_m=radius_m)
    rng = random.Random(radius_m)
    for _ in range(2000):
        # Near a cell corner, where a pair is most likely to straddle cells.
        lon = 121.40 + LOCK_CELL_DEG * rng.choice([0, 1]) + rng.uniform(-1, 1) * 0.006
        lat = 31.20 + LOCK_CELL_DEG * rng.choice([0, 1]) + rng.uniform(-1, 1) * 0.006
        bearing, metres = rng.uniform(0, 2 * math.pi), rng.uniform(0, radius_m)
        other_lon = lon + metres * math.sin(bearing) / (111_320 * math.cos(math.radians(lat)))
        other_lat = lat + metres * math.cos(bearing) / 111_320
        assert set(dedup_lock_names(category, lon=lon, lat=lat)) & set(
            dedup_lock_names(category, lon=other_lon, lat=other_lat)
        )  # type: ignore[arg-type]


def test_the_writer_reads_by_index_even_on_a_new_deployments_empty_tables(
    database: Database,
) -> None:
    """The writer makes each statement's plan once per connection, with the statistics of
    the moment: perhaps of a new deployment's empty tables, where scanning is cheapest.
    Such a plan would go on scanning as the tables grow (each report's look-up reading
    every report and kept response): the writer's connection plans no scan where an
    index serves. (A database of its own: ANALYZE writes a table's size in place, for
    good, and the suite's other plans would be made on it.)"""
    if database.is_sqlite:
        pytest.skip("SQLite plans each statement when it is prepared, from its indexes")
    base = make_url(str(database.engine.url.render_as_string(hide_password=False)))
    name = f"sentinel_empty_{uuid.uuid4().hex[:10]}"
    server = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.set(database=name).render_as_string(hide_password=False)
    fresh = None
    try:
        migrate.upgrade(url)
        fresh = Database(url)

        async def plan() -> str:
            connection = await connect_batches(fresh)
            try:
                statements = IntakeStatements(connection)
                await connection._connection.execute(  # type: ignore[attr-defined]
                    "ANALYZE riders, platforms, reports, idempotency_records, tickets"
                )
                return await connection.explain(Step(statements.look_up, None, [look_up_row()]))
            finally:
                await connection.close()

        explained = asyncio.run(plan())
    finally:
        if fresh is not None:
            fresh.dispose()
        with server.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()
    for table in ("riders", "reports", "idempotency_records", "tickets"):
        assert f"Seq Scan on {table}" not in explained, explained
