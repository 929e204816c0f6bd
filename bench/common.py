"""What every bench takes: which databases (``--db``), which PostgreSQL server, the
service's settings, and how it prints its results."""

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from app.config import Environment, Settings

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SECRET = "bench-secret-key-0123456789abcdefghijklmnop"


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


def settings(url: str, **overrides: Any) -> Settings:
    """The service's settings for a bench on ``url``: no ``.env`` file, the test
    environment, the bench's secret and cheap password hashing, then ``overrides``."""
    values: dict[str, Any] = {
        "env": Environment.TEST,
        "database_url": url,
        "secret_key": SECRET,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 64,
    }
    return Settings(_env_file=None, **(values | overrides))


def table(title: str, columns: Sequence[str], rows: Sequence[str], *, numbers: int) -> None:
    """Prints ``title``, then a Markdown table of ``rows`` (each a line already) whose last
    ``numbers`` columns are right-aligned."""
    words = len(columns) - numbers
    print(f"\n{title}\n")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * words + "---:|" * numbers)
    print("\n".join(rows))


def latency_arguments(doc: str | None, *, depth: int, repeat: int) -> argparse.ArgumentParser:
    """``arguments``, and a latency bench's own: the pages to follow before measuring, and
    how many requests to time."""
    parser = arguments(doc)
    parser.add_argument("--depth", type=int, default=depth, help="pages to follow first")
    parser.add_argument("--repeat", type=int, default=repeat)
    return parser


def latency_table(
    args: argparse.Namespace,
    run: Callable[[str, argparse.Namespace], list[str]],
    title: str,
    columns: Sequence[str],
) -> None:
    """``run`` on each database the arguments name, its rows printed as one ``table`` whose
    last two columns are the median and the worst time."""
    rows = [row for kind in databases(args) for row in run(kind, args)]
    table(title, columns, rows, numbers=2)


def cursor_after(http: httpx.Client, path: str, headers: dict[str, str], pages: int) -> str | None:
    """The cursor that follows the first ``pages`` pages of 50 of ``path``."""
    cursor = None
    for _ in range(pages):
        cursor = http.get(
            path, headers=headers, params={"limit": 50, **({"cursor": cursor} if cursor else {})}
        ).json()["next_cursor"]
    return cursor


def timed(
    http: httpx.Client, path: str, headers: dict[str, str], params: dict[str, Any], repeat: int
) -> tuple[float, float, httpx.Response]:
    """The median and the worst of ``repeat`` GETs of ``path`` in ms, and the last answer
    (each must succeed)."""
    times = []
    response = None
    for _ in range(repeat):
        started = time.perf_counter()
        response = http.get(path, headers=headers, params=params)
        times.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    assert response is not None
    return statistics.median(times), max(times), response
