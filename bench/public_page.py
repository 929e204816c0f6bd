"""The public page at scale, on SpatiaLite and PostGIS.

For each database: a fresh database with the Changning demo and ``--tickets`` tickets of
the last 48 hours (bulk-inserted oldest first; a mix of statuses, about 70 % of them
public; the fixed ones fixed a few hours after their report), a real server, then the
median and worst time of: the streets' figures as the service counts them (a process
does so at most every five minutes: ``SENTINEL_PUBLIC_FIGURES_MAX_AGE_S``), the public
page (the list and the figures so kept), the same with a status and a street filter, a
deep page, the map's points (all, a filter's, and a street's box) and a ticket's page. Run from
the project root::

    .venv/bin/python bench/public_page.py --db both --tickets 1000000
"""

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.intake as load
from app import public
from app.db import Database
from app.models import Ticket, TicketStatus, utcnow
from bench.common import latency_arguments, latency_table, timed

STATUSES = (
    [TicketStatus.NEW] * 2
    + [TicketStatus.ACCEPTED, TicketStatus.IN_PROGRESS] * 2
    + [TicketStatus.RESOLVED, TicketStatus.CLOSED] * 3
    + [TicketStatus.REJECTED]
)


def run(kind: str, args: argparse.Namespace) -> list[str]:
    rng = random.Random(11)
    workdir = Path(tempfile.mkdtemp(prefix="sentinel-public-"))
    url = load.fresh_database(kind, args.pg_url, workdir)
    rows = []
    try:
        load.seed(url, args.tickets, riders=10, rng=rng, status_of=lambda: rng.choice(STATUSES))
        database = Database(url)
        hours = "interval '6 hours'" if not database.is_sqlite else None
        with database.transaction() as session:
            # The fixed ones were fixed six hours after their report.
            session.execute(
                text(
                    "UPDATE tickets SET resolved_at = "
                    + (f"created_at + {hours}" if hours else "datetime(created_at, '+6 hours')")
                    + " WHERE status IN ('resolved', 'closed')"
                )
            )
        if not database.is_sqlite:
            with database.engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    "VACUUM ANALYZE tickets"
                )
        with database.session() as session:
            ref = session.scalar(
                select(Ticket.ref).where(Ticket.status == TicketStatus.RESOLVED).limit(1)
            )
            counted = []
            for _ in range(3):
                started = time.perf_counter()
                public.street_figures(session, now=utcnow())
                counted.append((time.perf_counter() - started) * 1000)
        database.dispose()
        rows.append(
            f"| {kind} | streets' figures, counted | {statistics.median(counted):.1f} "
            f"| {max(counted):.1f} |"
        )
        port = load.free_port()
        server = load.start_server(url, port, workdir)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
                cursor = deep_cursor(http, args.depth)  # (the figures counted and kept)
                fixed_here = {"status": "fixed", "street": "310105002"}
                box = {"bbox": "121.425,31.215,121.44,31.228"}
                for name, path, params, repeat in (
                    ("page", "/public/", {}, args.repeat),
                    ("page: fixed in 江苏路", "/public/", fixed_here, args.repeat),
                    (f"page {args.depth + 1}", "/public/", {"cursor": cursor or ""}, args.repeat),
                    ("map: all (newest 1,000)", "/public/map.geojson", {}, args.repeat),
                    ("map: fixed in 江苏路", "/public/map.geojson", fixed_here, args.repeat),
                    ("map: a street's box", "/public/map.geojson", box, args.repeat),
                    ("a ticket's page", f"/public/tickets/{ref}", {}, args.repeat),
                ):
                    median, worst, _ = timed(http, path, {}, params, repeat)
                    rows.append(f"| {kind} | {name} | {median:.1f} | {worst:.1f} |")
        finally:
            server.terminate()
            server.wait(timeout=30)
        return rows
    finally:
        load.drop_database(url)
        shutil.rmtree(workdir, ignore_errors=True)


def deep_cursor(http: httpx.Client, pages: int) -> str | None:
    """The cursor of the list's page ``pages + 1``, following its "older" links."""
    cursor = None
    for _ in range(pages):
        html = http.get("/public/", params={"cursor": cursor} if cursor else {}).text
        marker = 'rel="next" href="/public/?'
        if marker not in html:
            return cursor
        query = html.split(marker, 1)[1].split('"', 1)[0].replace("&amp;", "&")
        cursor = httpx.QueryParams(query).get("cursor")
    return cursor


def main() -> None:
    parser = latency_arguments(__doc__, depth=30, repeat=10)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    args = parser.parse_args()
    latency_table(
        args,
        run,
        f"{args.tickets:,} tickets, median and worst of {args.repeat} requests "
        "(the figures counted: of 3)",
        ["database", "request", "median ms", "worst ms"],
    )


if __name__ == "__main__":
    main()
