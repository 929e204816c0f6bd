"""The street office's queue and stats at scale, on SpatiaLite and PostGIS.

For each database: a fresh database with the Changning demo and ``--tickets`` tickets of
the last 48 hours (bulk-inserted oldest first, as a live table is written; spread over
the streets; a mix of statuses), a real server (``sentinel serve``, one worker), then,
as an officer and as the district user, the median and worst time of: the first page of
the queue, a deep page (following the cursor ``--depth`` pages in), the overdue filters
(``status=new&overdue=true``, ``overdue=true``), the priority and due-date sorts, the
GeoJSON page, and the stats endpoint. Prints a table and the query plan of the officer's
first page. Run from the project root::

    .venv/bin/python bench/office_queue.py --db both --tickets 1000000
"""

import argparse
import random
import shutil
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.intake as load
from app.db import Database
from app.models import Staff, Ticket, TicketStatus, utcnow
from app.security import TokenKind, issue_token
from app.tickets.queue import QueueFilter, filtered
from bench.common import cursor_after, latency_arguments, latency_table, timed
from bench.common import settings as bench_settings

STATUSES = (
    [TicketStatus.NEW] * 3
    + [TicketStatus.ACCEPTED, TicketStatus.IN_PROGRESS] * 2
    + [TicketStatus.RESOLVED, TicketStatus.CLOSED] * 5
    + [TicketStatus.REJECTED]
)


def run(kind: str, args: argparse.Namespace) -> list[str]:
    rng = random.Random(7)
    workdir = Path(tempfile.mkdtemp(prefix="sentinel-queue-"))
    url = load.fresh_database(kind, args.pg_url, workdir)
    rows = []
    try:
        load.seed(url, args.tickets, riders=10, rng=rng, status_of=lambda: rng.choice(STATUSES))
        database = Database(url)
        with database.session() as s:
            users = {
                u.username: u.id
                for u in s.scalars(
                    select(Staff).where(Staff.username.in_(["officer_310105002", "changning"]))
                )
            }
            plan = plan_of_first_page(s, database)
        database.dispose()
        settings = bench_settings(url)
        port = load.free_port()
        server = load.start_server(url, port, workdir)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                for username, user_id in users.items():
                    token = issue_token(
                        kind=TokenKind.STAFF,
                        subject=user_id,
                        ttl=timedelta(hours=1),
                        settings=settings,
                    ).token
                    headers = {"Authorization": f"Bearer {token}"}
                    cursor = cursor_after(http, "/v1/office/tickets", headers, args.depth)
                    for name, params in (
                        ("first page", {}),
                        (f"page {args.depth + 1}", {"cursor": cursor or ""}),
                        ("new & overdue", {"status": "new", "overdue": "true"}),
                        ("overdue", {"overdue": "true"}),
                        ("sort=priority", {"sort": "priority"}),
                        ("sort=due_at", {"sort": "due_at"}),
                        ("GeoJSON page", {"format": "geojson"}),
                    ):
                        median, worst, _ = timed(
                            http,
                            "/v1/office/tickets",
                            headers,
                            {"limit": "50", **params},
                            args.repeat,
                        )
                        rows.append(
                            f"| {kind} | {username} | {name} | {median:.1f} | {worst:.1f} |"
                        )
                    median, worst, _ = timed(
                        http,
                        "/v1/office/stats",
                        headers,
                        {"from": (utcnow() - timedelta(days=30)).isoformat()},
                        3,
                    )
                    rows.append(
                        f"| {kind} | {username} | stats, 30 days | {median:.1f} | {worst:.1f} |"
                    )
        finally:
            server.terminate()
            server.wait(timeout=30)
        print(f"\n{kind}: plan of the officer's first page\n{plan}\n", file=sys.stderr)
        return rows
    finally:
        load.drop_database(url)
        shutil.rmtree(workdir, ignore_errors=True)


def plan_of_first_page(session: Session, database: Database) -> str:
    staff = session.scalar(select(Staff).where(Staff.username == "officer_310105002"))
    query = (
        filtered(session, staff=staff, where=QueueFilter(), now=utcnow())
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(51)
    )
    compiled = query.compile(
        dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True}
    )
    prefix = "EXPLAIN QUERY PLAN " if database.is_sqlite else "EXPLAIN "
    params = (
        tuple(compiled.params[k] for k in compiled.positiontup)
        if database.is_sqlite
        else compiled.params
    )
    lines = session.connection().exec_driver_sql(prefix + str(compiled), params).all()
    return "\n".join(str(line[-1]) for line in lines)


def main() -> None:
    parser = latency_arguments(__doc__, depth=100, repeat=20)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    args = parser.parse_args()
    latency_table(
        args,
        run,
        f"{args.tickets:,} tickets, limit 50, median and worst of {args.repeat} "
        "requests (stats: of 3)",
        ["database", "user", "request", "median ms", "worst ms"],
    )


if __name__ == "__main__":
    main()
