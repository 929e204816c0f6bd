"""What every bench takes: which databases (``--db``) and which PostgreSQL server."""

import argparse
import os

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def arguments(doc: str | None) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of ``doc``, with ``--db`` and
    ``--pg-url`` (default ``$SENTINEL_BENCH_PG_URL``, else the local server)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--pg-url", default=os.environ.get("SENTINEL_BENCH_PG_URL", PG_URL))
    return parser


def databases(args: argparse.Namespace) -> list[str]:
    """The kinds of database to measure, in order."""
    return ["sqlite", "postgres"] if args.db == "both" else [args.db]
