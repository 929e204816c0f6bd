"""Platform statistics at scale, on SpatiaLite and PostGIS.

For each database: a fresh database with the Changning demo, ``--riders`` riders split
between Meituan and Ele.me, and ``--reports`` reports over the last ``--days`` days,
seeded in bulk as triage would have left them: seven in ten open a ticket, the others
confirm one; tickets in a mix of statuses; the ledger lines their reports are owed;
verifications of some resolved tickets; every rider's totals summed from those. Then a
real server (``sentinel serve``, one worker) and, as Meituan, the median and worst of
``--repeat`` requests of: the rider list all time (first page and a deep page), the rider
list over 30 days, one rider all time and over 30 days, and the 30-day summary by day,
category and street. Run from the project root::

    .venv/bin/python bench/stats.py --db both --reports 1000000 --riders 100000
"""

import argparse
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.intake as load
from app.db import Database, migrate, wkt_point
from app.models import (
    Category,
    Platform,
    PointsEntry,
    PointsReason,
    Report,
    ReportOutcome,
    Rider,
    RiderTotals,
    Ticket,
    TicketEvent,
    TicketStatus,
    Verification,
    utcnow,
)
from app.ops.demo import load_demo
from app.riders.points import Standing, counted_as, owed
from bench.common import cursor_after, latency_arguments, latency_table, timed
from bench.common import settings as bench_settings

BATCH = 5000
# Where seeded tickets end up: mostly done, some open, a few rejected.
STATUSES = (
    [TicketStatus.NEW] * 2
    + [TicketStatus.ACCEPTED, TicketStatus.IN_PROGRESS] * 2
    + [TicketStatus.RESOLVED] * 2
    + [TicketStatus.CLOSED] * 3
    + [TicketStatus.REJECTED]
)


def standing_of(status: TicketStatus) -> Standing:
    return {
        TicketStatus.NEW: Standing.PENDING,
        TicketStatus.REJECTED: Standing.REJECTED,
        TicketStatus.RESOLVED: Standing.RESOLVED,
        TicketStatus.CLOSED: Standing.RESOLVED,
    }.get(status, Standing.ACCEPTED)


def seed(url: str, args: argparse.Namespace, rng: random.Random) -> str:
    """Seeds the database; returns Meituan's API key."""
    settings = bench_settings(url)
    # Seeded as of migration 0004; 0005 then fills the riders' hours from what was seeded.
    migrate.upgrade(url, "0004")
    database = Database(url)
    with database.transaction() as s:
        credentials = load_demo(s, settings)
    assert credentials is not None
    api_key = next(p["api_key"] for p in credentials.platforms if p["code"] == "meituan")
    areas = load.communities(database)
    with database.session(write=False) as s:
        categories = {c.id: c for c in s.scalars(select(Category))}
        platforms = list(
            s.scalars(
                select(Platform.id)
                .where(Platform.code.in_(["meituan", "eleme"]))
                .order_by(Platform.code)
            )
        )
        s.expunge_all()
    started = time.perf_counter()
    now = utcnow()
    riders = [(uuid.uuid4(), platforms[i % 2]) for i in range(args.riders)]
    with database.transaction() as s:
        for first in range(0, len(riders), BATCH):
            s.execute(
                insert(Rider),
                [
                    {
                        "id": rid,
                        "platform_id": pid,
                        "external_id": f"rider-{i:06d}",
                        "pseudonym": f"R-{i:06d}",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i, (rid, pid) in enumerate(riders[first : first + BATCH], first)
                ],
            )
    openers = int(args.reports * 0.7)
    points = load.random_points(rng, areas, openers)
    tickets: list[tuple[uuid.UUID, int, TicketStatus, int | None]] = []
    for first in range(0, args.reports, BATCH):
        ticket_rows, report_rows, event_rows, line_rows, checks = [], [], [], [], []
        for n in range(first, min(first + BATCH, args.reports)):
            rider_id, platform_id = rng.choice(riders)
            received = now - timedelta(minutes=rng.uniform(1, args.days * 24 * 60))
            if n < openers:
                point = next(points)
                x, y, community_id, street_id, district_id = point
                category = categories[rng.choice(list(categories))]
                status = rng.choice(STATUSES)
                accepted = (
                    None
                    if status in (TicketStatus.NEW, TicketStatus.REJECTED)
                    else received + timedelta(hours=1)
                )
                row = load.ticket_row(
                    point,
                    category_id=category.id,
                    status=status,
                    priority=category.priority,
                    created=received,
                    hours=(category.respond_within_h, category.resolve_within_h),
                    accepted_at=accepted,
                )
                ticket_rows.append(row)
                ticket_id = row["id"]
                tickets.append((ticket_id, category.id, status, street_id))
                outcome = ReportOutcome.NEW_TICKET
            else:
                ticket_id, category_id, status, street_id = rng.choice(tickets)
                category = categories[category_id]
                x, y = 121.42, 31.22
                community_id = district_id = None
                outcome = ReportOutcome.JOINED_TICKET
            stand = standing_of(status)
            report_id, event_id = uuid.uuid4(), uuid.uuid4()
            report_rows.append(
                {
                    "id": report_id,
                    "rider_id": rider_id,
                    "platform_id": platform_id,
                    "ticket_id": ticket_id,
                    "category_id": category.id,
                    "outcome": outcome,
                    "counted_as": counted_as(outcome, stand),
                    "location": wkt_point(x, y),
                    "input_lat": y,
                    "input_lon": x,
                    "input_coord_sys": "wgs84",
                    "district_id": district_id or areas[0][2],
                    "street_id": street_id,
                    "community_id": community_id,
                    "observed_at": received,
                    "received_at": received,
                }
            )
            event_rows.append(
                {
                    "id": event_id,
                    "ticket_id": ticket_id,
                    "type": "accept",
                    "actor_kind": "staff",
                    "created_at": received,
                }
            )
            for reason, value in owed(category, outcome, stand=stand).items():
                line_rows.append(
                    {
                        "id": uuid.uuid4(),
                        "rider_id": rider_id,
                        "platform_id": platform_id,
                        "reason": reason,
                        "points": value,
                        "ticket_id": ticket_id,
                        "event_id": event_id,
                        "report_id": report_id,
                        "category_id": category.id,
                        "street_id": street_id,
                        "created_at": received + timedelta(hours=2),
                    }
                )
            if stand is Standing.RESOLVED and rng.random() < 0.1:
                checker_id, checker_platform = rng.choice(riders)
                checks.append(
                    (
                        uuid.uuid4(),
                        checker_id,
                        checker_platform,
                        ticket_id,
                        category,
                        street_id,
                        received + timedelta(hours=6),
                        event_id,
                    )
                )
        verification_rows = [
            {
                "id": vid,
                "ticket_id": tid,
                "rider_id": rid,
                "platform_id": pid,
                "category_id": category.id,
                "street_id": street_id,
                "fixed": True,
                "location": wkt_point(121.42, 31.22),
                "distance_m": 10.0,
                "created_at": at,
            }
            for vid, rid, pid, tid, category, street_id, at, _ in checks
        ]
        line_rows += [
            {
                "id": uuid.uuid4(),
                "rider_id": rid,
                "platform_id": pid,
                "reason": PointsReason.VERIFIED,
                "points": category.points_verify,
                "ticket_id": tid,
                "event_id": eid,
                "verification_id": vid,
                "category_id": category.id,
                "street_id": street_id,
                "created_at": at,
            }
            for vid, rid, pid, tid, category, street_id, at, eid in checks
        ]
        with database.transaction() as s:
            if ticket_rows:
                s.execute(insert(Ticket), ticket_rows)
            s.execute(insert(Report), report_rows)
            s.execute(insert(TicketEvent), event_rows)
            if verification_rows:
                s.execute(insert(Verification), verification_rows)
            # Some lines have a report, some a verification: one statement per shape.
            shapes: defaultdict[frozenset[str], list[dict[str, object]]] = defaultdict(list)
            for row in line_rows:
                shapes[frozenset(row)].append(row)
            for rows in shapes.values():
                s.execute(insert(PointsEntry), rows)
    _sum_totals(database)
    migrate.upgrade(url)
    _settle(database)
    print(
        f"  seeded {args.reports:,} reports of {args.riders:,} riders in "
        f"{time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    database.dispose()
    return api_key


def _sum_totals(database: Database) -> None:
    """Every rider's totals row, summed from what was seeded (as the migration does)."""
    with database.transaction() as s:
        s.execute(
            insert(RiderTotals).from_select(
                ["rider_id", "platform_id"], select(Rider.id, Rider.platform_id)
            )
        )
    with database.engine.begin() as c:
        c.execute(
            text("""
            UPDATE rider_totals SET
              reports = agg.reports, tickets_opened = agg.opened, joined = agg.joined,
              accepted = agg.accepted, resolved = agg.resolved, rejected = agg.rejected
            FROM (SELECT rider_id, count(*) AS reports,
                    sum(CASE WHEN counted_as LIKE 'new_ticket/%' THEN 1 ELSE 0 END) AS opened,
                    sum(CASE WHEN counted_as LIKE 'joined_ticket/%' THEN 1 ELSE 0 END) AS joined,
                    sum(CASE WHEN counted_as LIKE '%/accepted' OR counted_as LIKE '%/resolved'
                        THEN 1 ELSE 0 END) AS accepted,
                    sum(CASE WHEN counted_as LIKE '%/resolved' THEN 1 ELSE 0 END) AS resolved,
                    sum(CASE WHEN counted_as LIKE '%/rejected' THEN 1 ELSE 0 END) AS rejected
                  FROM reports GROUP BY rider_id) AS agg
            WHERE agg.rider_id = rider_totals.rider_id""")
        )
        c.execute(
            text("""
            UPDATE rider_totals SET verifications = agg.n
            FROM (SELECT rider_id, count(*) AS n FROM verifications GROUP BY rider_id) AS agg
            WHERE agg.rider_id = rider_totals.rider_id""")
        )
        c.execute(
            text("""
            UPDATE rider_totals SET points = agg.points
            FROM (SELECT rider_id, sum(points) AS points FROM points_ledger
                  GROUP BY rider_id) AS agg
            WHERE agg.rider_id = rider_totals.rider_id""")
        )
        hour = (
            "CAST(strftime('%s', substr({}, 1, 19)) AS INTEGER) / 3600"
            if database.is_sqlite
            else "CAST(floor(extract(epoch FROM {}) / 3600) AS bigint)"
        )
        c.execute(
            text(f"""
            INSERT INTO platform_activity (platform_id, hour, category_id, street_key,
              reports, tickets_opened, joined, accepted, resolved, rejected, verifications,
              points)
            SELECT platform_id, hour, category_id, street_key, sum(reports), sum(opened),
              sum(joined), sum(accepted), sum(resolved), sum(rejected), sum(verifications),
              sum(points)
            FROM (
              SELECT platform_id, {hour.format("received_at")} AS hour, category_id,
                coalesce(street_id, 0) AS street_key, 1 AS reports,
                CASE WHEN counted_as LIKE 'new_ticket/%' THEN 1 ELSE 0 END AS opened,
                CASE WHEN counted_as LIKE 'joined_ticket/%' THEN 1 ELSE 0 END AS joined,
                CASE WHEN counted_as LIKE '%/accepted' OR counted_as LIKE '%/resolved'
                  THEN 1 ELSE 0 END AS accepted,
                CASE WHEN counted_as LIKE '%/resolved' THEN 1 ELSE 0 END AS resolved,
                CASE WHEN counted_as LIKE '%/rejected' THEN 1 ELSE 0 END AS rejected,
                0 AS verifications, 0 AS points FROM reports
              UNION ALL
              SELECT platform_id, {hour.format("created_at")}, category_id,
                coalesce(street_id, 0), 0, 0, 0, 0, 0, 0, 1, 0 FROM verifications
              UNION ALL
              SELECT platform_id, {hour.format("created_at")}, category_id,
                coalesce(street_id, 0), 0, 0, 0, 0, 0, 0, 0, points FROM points_ledger
            ) AS activity
            GROUP BY platform_id, hour, category_id, street_key""")
        )


def _settle(database: Database) -> None:
    """Fresh statistics, and no vacuum of the seed in the middle of a measurement."""
    with database.engine.connect() as c:
        if database.is_sqlite:
            c.exec_driver_sql("ANALYZE")
        else:
            c.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM (ANALYZE)")


def run(kind: str, args: argparse.Namespace) -> list[str]:
    workdir = Path(tempfile.mkdtemp(prefix="sentinel-stats-"))
    url = load.fresh_database(kind, args.pg_url, workdir)
    try:
        api_key = seed(url, args, random.Random(11))
        port = load.free_port()
        server = load.start_server(url, port, workdir)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
                rows = measure(kind, http, {"Authorization": f"Bearer {api_key}"}, args)
        finally:
            server.terminate()
            server.wait(timeout=30)
        return rows
    finally:
        load.drop_database(url)
        shutil.rmtree(workdir, ignore_errors=True)


def measure(
    kind: str, http: httpx.Client, headers: dict[str, str], args: argparse.Namespace
) -> list[str]:
    month = {"from": (utcnow() - timedelta(days=30)).isoformat()}
    cursor = cursor_after(http, "/v1/platform/riders/stats", headers, args.depth)
    top = http.get("/v1/platform/riders/stats", headers=headers).json()["items"][0]
    requests: list[tuple[str, str, dict[str, str | int]]] = [
        ("rider list, all time, first page", "/v1/platform/riders/stats", {"limit": 50}),
        (
            f"rider list, all time, page {args.depth + 1}",
            "/v1/platform/riders/stats",
            {"limit": 50, "cursor": cursor or ""},
        ),
        ("rider list, 30 days", "/v1/platform/riders/stats", {"limit": 50, **month}),
        ("one rider, all time", f"/v1/platform/riders/{top['rider_id']}/stats", {}),
        ("one rider, 30 days", f"/v1/platform/riders/{top['rider_id']}/stats", month),
        *(
            (f"summary by {g}, 30 days", "/v1/platform/summary", {"group_by": g})
            for g in ("day", "category", "street")
        ),
    ]
    rows = []
    for name, path, params in requests:
        median, worst, _ = timed(http, path, headers, params, args.repeat)
        rows.append(f"| {kind} | {name} | {median:.1f} | {worst:.1f} |")
    return rows


def main() -> None:
    parser = latency_arguments(__doc__, depth=20, repeat=10)
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--riders", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90, help="the reports' time span")
    args = parser.parse_args()
    latency_table(
        args,
        run,
        f"{args.reports:,} reports of {args.riders:,} riders over {args.days} days, "
        f"as Meituan; median and worst of {args.repeat} requests",
        ["database", "request", "median ms", "worst ms"],
    )


if __name__ == "__main__":
    main()
