"""Fuzzing: schemathesis generates requests from the app's own OpenAPI and sends them as
each kind of caller (anonymous, rider, platform, officer, district, admin). No answer may
be a server error, and every documented answer must match its schema. The number of
cases per operation is bounded (SENTINEL_FUZZ_CASES, 8 by default) to keep CI in minutes;
a failure prints the request that reproduces it."""

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from schemathesis.transport.requests import ManagedCookiesSession

from app.config import Environment, Settings
from app.main import create_app
from tests.conftest import TEST_SECRET, Auth

pytestmark = pytest.mark.fuzz

CASES = int(os.environ.get("SENTINEL_FUZZ_CASES", "8"))
CALLERS = ("anonymous", "rider", "platform", "officer", "district", "admin")


def _spec() -> dict[str, Any]:
    """The OpenAPI document, as the app serves it (no database is needed to write it)."""
    app = create_app(
        Settings(
            _env_file=None,
            env=Environment.TEST,
            secret_key=TEST_SECRET,
            database_url="sqlite:////nonexistent/openapi-only.db",
        )
    )
    return app.openapi()


fuzzed = schemathesis.openapi.from_dict(_spec())


@pytest.fixture
def server(served: str) -> str:
    """A real server on 127.0.0.1 over the test database."""
    return served


def headers_of(auth: Auth, caller: str) -> dict[str, str]:
    return {
        "anonymous": dict,
        "rider": lambda: auth.rider("meituan", "fuzz-rider"),
        "platform": lambda: auth.platform("meituan"),
        "officer": lambda: auth.staff("officer_310105002"),
        "district": lambda: auth.staff("changning"),
        "admin": lambda: auth.staff("admin"),
    }[caller]()


@pytest.fixture
def callers(auth: Auth) -> dict[str, dict[str, str]]:
    return {caller: headers_of(auth, caller) for caller in CALLERS}


@pytest.fixture
def connection() -> Iterator[ManagedCookiesSession]:
    """One connection for the test's requests, kept alive between them (a session of its
    own per request would open a connection, and read the proxies from the environment,
    each time); schemathesis forgets the cookies of each answer before the next request."""
    with ManagedCookiesSession() as session:
        session.trust_env = False
        yield session


@fuzzed.parametrize()
@settings(
    max_examples=CASES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_answers_as_documented(
    case: Any,
    callers: dict[str, dict[str, str]],
    server: str,
    connection: ManagedCookiesSession,
) -> None:
    for headers in callers.values():  # each case as each caller
        case.call_and_validate(
            base_url=server,
            session=connection,
            headers=headers,
            checks=[not_a_server_error, response_schema_conformance],
        )
