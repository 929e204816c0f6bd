"""A real uvicorn server on 127.0.0.1, serving the test database in a thread."""

from collections.abc import Iterator

import httpx
import pytest

from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.helpers import serve


@pytest.fixture
def live_server(settings: Settings, database: Database, baseline: object) -> Iterator[str]:
    with serve(create_app(settings, database)) as url:
        yield url


@pytest.fixture
def http(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=10) as client:
        yield client
