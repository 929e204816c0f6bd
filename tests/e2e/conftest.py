"""A real uvicorn server on 127.0.0.1, serving the test database in a thread."""

from collections.abc import Iterator

import httpx
import pytest


@pytest.fixture
def live_server(served: str) -> str:
    """The app of the test's settings, served (shared with the tests of the same settings)."""
    return served


@pytest.fixture
def http(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=10) as client:
        yield client
