"""A real uvicorn server on 127.0.0.1, serving the test database in a thread."""

from collections.abc import Iterator

import httpx
import pytest

from tests.apps import http_client


@pytest.fixture
def live_server(served: str) -> str:
    """The app of the test's settings, served (shared with the tests of the same settings)."""
    return served


@pytest.fixture
def http(live_server: str) -> Iterator[httpx.Client]:
    with http_client(live_server, timeout=10) as client:
        yield client
