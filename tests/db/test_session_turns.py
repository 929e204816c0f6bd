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

from fastapi.testclient import TestClient

from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.apps import http_client, serve
from tests.conftest import Auth
from tests.helpers import assert_problem

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


def test_a_request_that_gets_no_turn_in_time_is_answered_503_at_once(
    settings: Settings, database: Database, auth: Auth
) -> None:
    """More requests than the process can answer: the ones past their wait are told to
    come back, with Retry-After, rather than answered after their clients gave up."""
    quick = settings.model_copy(update={"db_requests_at_once": 1, "db_turn_wait_s": 0.2})
    app = create_app(quick, database)
    key = auth.platform("meituan")
    with TestClient(app) as client:
        turns = app.state.session_turns
        client.portal.call(turns.acquire)  # someone else's request holds the one turn
        started = time.monotonic()
        busy = client.get("/v1/platform/summary", headers=key)
        waited = time.monotonic() - started
        assert_problem(busy, 503, "database_busy")
        assert int(busy.headers["retry-after"]) >= 1
        assert 0.2 <= waited < 5
        refused = client.get("/open311/v2/requests.json")
        assert refused.status_code == 503  # Open311's own error shape
        assert refused.json()[0]["code"] == 503
        turns.release()
        assert client.get("/v1/platform/summary", headers=key).status_code == 200
        assert client.get("/open311/v2/requests.json").status_code == 200
