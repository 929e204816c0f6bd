"""Where one report's time goes: the intake path in-process, one report at a time.

No HTTP and no concurrency: the same service calls ``POST /v1/reports`` makes, timed
phase by phase over a few hundred reports on a fresh database with the Changning demo
and ``--tickets`` open tickets. Complements ``bench/intake.py``, which measures the
whole server under load. Run from the project root::

    .venv/bin/python bench/intake_phases.py --db both
"""

import argparse
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.intake as load
from app.config import Environment, Settings
from app.db import Database
from app.deps import caller_for_token
from app.models import Category, utcnow
from app.schemas.reports import ReportCreate
from app.services import idempotency, intake, reports

# (module, function, phase name), in the order a report meets them.
PHASES = [
    (intake, "route_point", "routing (covering areas, snapping)"),
    (intake, "_enforce_rate_limit", "rate limit (count of the last hour)"),
    (intake, "merge_or_open_ticket", "dedup search and ticket insert/update"),
    (reports, "prepare_report", "read phase: category, routing, photos"),
    (reports, "begin_writes", "begin writes (SQLite: write lock)"),
    (idempotency, "previous_response", "idempotency check under the lock"),
    (reports, "store_report", "write phase before commit"),
]


def timed(totals: dict[str, float], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - started

    return wrapper


def run(kind: str, tickets: int, count: int, pg_url: str) -> dict[str, float]:
    rng = random.Random(tickets)
    workdir = Path(tempfile.mkdtemp(prefix="sentinel-phases-"))
    url = load.fresh_database(kind, pg_url, workdir)
    try:
        tokens = load.seed(url, tickets, riders=50, rng=rng)
        database = Database(url)
        areas = load.communities(database)
        with database.session() as s:
            codes = list(s.scalars(select(Category.code)))
        script = load.report_script(rng, areas, tokens, count + 50, codes, workdir / "r.lua")
        bodies = [json.loads(b) for b in re.findall(r"\[\[(.*?)\]\]", script.read_text())]
        settings = Settings(_env_file=None, env=Environment.TEST, database_url=url,
                            secret_key=load.SECRET, media_dir=workdir / "media",
                            rider_reports_per_hour=1_000_000)
        totals: dict[str, float] = defaultdict(float)
        originals = [(module, name, getattr(module, name)) for module, name, _ in PHASES]
        for module, name, phase in PHASES:
            setattr(module, name, timed(totals, phase, getattr(module, name)))

        def one(i: int, body: dict[str, Any]) -> None:
            started = time.perf_counter()
            with database.transaction(write=False) as session:
                caller = caller_for_token(session, settings, tokens[i % len(tokens)])
                totals["authentication (token, rider)"] += time.perf_counter() - started
                reports.receive_report(session, rider=caller.rider,  # type: ignore[arg-type]
                                       body=ReportCreate.model_validate(body),
                                       idempotency_key=f"phases-{i}", settings=settings,
                                       now=utcnow())
                before_commit = time.perf_counter()
            totals["flush and commit"] += time.perf_counter() - before_commit
            totals["total"] += time.perf_counter() - started

        for i, body in enumerate(bodies[:50]):  # warm-up: pools and statement caches
            one(i, body)
        totals.clear()
        for i, body in enumerate(bodies[50:50 + count]):
            one(50 + i, body)
        for module, name, original in originals:
            setattr(module, name, original)
        database.dispose()
        return {phase: seconds / count * 1000 for phase, seconds in totals.items()}
    finally:
        load.drop_database(url)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--reports", type=int, default=500)
    parser.add_argument("--pg-url", default=os.environ.get(
        "SENTINEL_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results = {kind: run(kind, args.tickets, args.reports, args.pg_url) for kind in kinds}
    phases = sorted({p for r in results.values() for p in r},
                    key=lambda p: -max(r.get(p, 0) for r in results.values()))
    print(f"\nms per report, {args.reports} reports one at a time, "
          f"{args.tickets:,} open tickets\n")
    print("| phase | " + " | ".join(kinds) + " |")
    print("|---|" + "---:|" * len(kinds))
    for phase in phases:
        print(f"| {phase} | " + " | ".join(f"{results[k].get(phase, 0):.2f}" for k in kinds)
              + " |")


if __name__ == "__main__":
    main()
