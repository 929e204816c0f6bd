"""Requests take turns at the database (app.deps): more at once than the threadpool has
threads and the pool has connections never wait on each other.

A request holds its session's connection from its first query (whose key is this?) to
its end (the handler), across two trips through the threadpool. Without turns, 120 at
once on a pool of a dozen connections: a dozen hold one each and wait for a thread,
while the 40 threads wait for a connection, and nothing moves until the pool's 30 s
timeout answers 500s. A real server, so that the threadpool and the event loop are the
ones a deployment has."""

import time
from concurrent.futures import ThreadPoolExecutor

from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.apps import http_client, serve
from tests.conftest import Auth

AT_ONCE = 120


def test_more_requests_than_threads_and_connections_all_get_their_answer(
    settings: Settings, database: Database, auth: Auth
) -> None:
    small = Database(database.url, pool_size=2)  # a dozen connections with the overflow
    assert small.sessions_at_once < 2 + 10
    key = auth.platform("meituan")
    try:
        with serve(create_app(settings, small)) as base, http_client(base, timeout=60) as http:

            def summary(_: int) -> int:
                return http.get("/v1/platform/summary", headers=key).status_code

            started = time.monotonic()
            with ThreadPoolExecutor(AT_ONCE) as pool:
                statuses = list(pool.map(summary, range(AT_ONCE)))
            took = time.monotonic() - started
    finally:
        small.dispose()
    assert statuses == [200] * AT_ONCE
    assert took < 20, f"{AT_ONCE} summaries took {took:.1f} s"
