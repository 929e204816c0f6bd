"""What every endpoint shares: problem+json errors, request ids, health, readiness, metrics."""

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.db import Database, migrate
from app.main import create_app
from tests.helpers import assert_problem

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def test_unknown_path_is_a_problem(client: TestClient) -> None:
    assert_problem(client.get("/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_a_problem(client: TestClient) -> None:
    assert_problem(client.delete("/v1/categories"), 405, "method_not_allowed")


def test_validation_error_names_the_fields(client: TestClient, auth) -> None:
    body = assert_problem(
        client.get(
            "/v1/areas/route", params={"lat": "north", "lon": 500}, headers=auth.staff("admin")
        ),
        422,
        "validation_error",
    )
    assert {e["field"] for e in body["errors"]} == {"lat", "lon"}


def test_unhandled_error_is_500_without_a_trace(own_app: FastAPI) -> None:
    app = own_app

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals: SELECT * FROM staff")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom", headers={"X-Request-ID": "trace-me-123"})
    body = assert_problem(response, 500, "internal_error")
    assert "secret" not in response.text and "Traceback" not in response.text
    assert "SELECT" not in body["detail"]
    assert response.headers["x-request-id"] == "trace-me-123"


def test_request_id_is_generated_or_echoed(client: TestClient) -> None:
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    assert client.get("/healthz").headers["x-request-id"] != generated
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-1"}).headers["x-request-id"] == "abc-1"
    )
    # A header that could forge log lines is replaced, not echoed.
    assert (
        client.get("/healthz", headers={"X-Request-ID": "bad id\tx"}).headers["x-request-id"]
        != "bad id\tx"
    )


OPS = "ops-token-for-the-tests-0123456789"


@pytest.fixture
def operator(app: FastAPI) -> dict[str, str]:
    app.state.settings = app.state.settings.model_copy(update={"ops_token": OPS})
    return {"Authorization": f"Bearer {OPS}"}


def test_health_and_readiness(client: TestClient, operator: dict[str, str]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    public = client.get("/readyz")
    assert public.status_code == 200 and public.json() == {"status": "ready"}
    ready = client.get("/readyz", headers=operator)
    assert ready.status_code == 200
    assert ready.json()["schema"] == migrate.head_revision()


def test_not_ready_when_the_schema_is_behind(tmp_path, settings: Settings) -> None:
    empty = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        app = create_app(settings.model_copy(update={"ops_token": OPS}), empty)
        with TestClient(app) as client:
            body = assert_problem(
                client.get("/readyz", headers={"Authorization": f"Bearer {OPS}"}),
                503,
                "schema_not_at_head",
            )
            public = assert_problem(client.get("/readyz"), 503, "not_ready")
    finally:
        empty.dispose()
    assert "sentinel db upgrade" in body["detail"]
    assert "sentinel" not in public["detail"]


def test_metrics_are_the_operators(client: TestClient, app: FastAPI) -> None:
    assert_problem(client.get("/metrics"), 403, "forbidden")  # not on the loopback
    app.state.settings = app.state.settings.model_copy(update={"ops_token": OPS})
    assert_problem(client.get("/metrics"), 401, "unauthenticated")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-it"})
    assert_problem(wrong, 401, "unauthenticated")
    odd = client.get("/metrics", headers={"Authorization": b"Bearer \xe9"})
    assert_problem(odd, 401, "unauthenticated")
    assert client.get("/metrics", headers={"Authorization": f"Bearer {OPS}"}).status_code == 200


def test_metrics_count_requests_by_route(own_app: FastAPI) -> None:
    """An app of its own: a shared one has counted the other tests' requests too."""
    own_app.state.settings = own_app.state.settings.model_copy(update={"ops_token": OPS})
    with TestClient(own_app) as client:
        client.get("/v1/categories")
        client.get("/v1/categories")
        text = client.get("/metrics", headers={"Authorization": f"Bearer {OPS}"}).text
    line = next(
        x
        for x in text.splitlines()
        if x.startswith("sentinel_http_requests_total{")
        and 'route="/v1/categories"' in x
        and 'status="200"' in x
    )
    assert float(line.rsplit(" ", 1)[1]) == 2.0
    assert "sentinel_http_request_duration_seconds_bucket" in text


def test_openapi_and_docs_are_served(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/v1/admin/areas:import" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_an_unavailable_database_is_a_503_to_retry(own_app: FastAPI) -> None:
    from sqlalchemy.exc import OperationalError

    app = own_app

    @app.get("/locked")
    def locked() -> None:
        raise OperationalError("INSERT …", {}, Exception("database is locked"))

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/locked")
    assert_problem(response, 503, "database_busy")
    assert response.headers["retry-after"] == "1"
    assert "INSERT" not in response.text


def test_a_nul_in_a_path_is_never_a_500(client: TestClient, auth) -> None:
    response = client.get("/v1/platform/riders/r%00x", headers=auth.platform("meituan"))
    # SQLite can hold a NUL (no such rider: 404); PostgreSQL cannot (422).
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")
