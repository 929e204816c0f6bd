"""Test fixtures: one fresh database per run, the Changning demo as the baseline.

The database is SQLite + SpatiaLite in a temporary file, or PostGIS when
``SENTINEL_TEST_DATABASE_URL`` names a PostgreSQL server (a fresh database is created on
it for the run and dropped afterwards). The schema comes from the migrations. The demo
is loaded once; after every test all tables are emptied and the baseline rows restored,
so each test starts from the same state whatever it wrote, through whatever connection
(the end-to-end tests write through a real server in another thread).

The suite passes whatever the date. ``SENTINEL_TEST_NOW`` (an ISO 8601 instant with its
offset) proves it: every module then starts at that moment, the clock running on from
there, for everything in this process (time-machine moves ``time.time`` and
``datetime.now`` for every thread). Tests marked ``processes`` (programs of their own),
``browser`` (Chromium) or ``wall_clock`` (times kept by the file system or a bucket)
meet clocks it cannot move, and are left out of such a run; ``wall_clock(ahead_is_fine=
True)`` stays in while the moment is later than the real one.
"""

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.orm import Session

from app.config import Environment, Settings
from app.db import Database, migrate
from app.main import create_app
from app.ops.demo import load_demo
from tests.apps import Apps, Running
from tests.baseline import Baseline, Writes, restore, snapshot
from tests.object_store import ObjectStoreServer, object_store_server
from tests.workers import ServerTurns

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"

TEST_NOW = os.environ.get("SENTINEL_TEST_NOW")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The markers a test earns by where it is and what it uses (``-m`` picks by them)."""
    moved = pytest.mark.skip(reason="meets a clock that SENTINEL_TEST_NOW cannot move")
    ahead = bool(TEST_NOW) and datetime.fromisoformat(str(TEST_NOW)) > datetime.now(UTC)
    for item in items:
        if "e2e" in item.path.parts:
            item.add_marker(pytest.mark.e2e)
        if {"page", "new_page", "browser"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.browser)
        if not TEST_NOW:
            continue
        wall_clock = item.get_closest_marker("wall_clock")
        if (
            item.get_closest_marker("processes")
            or item.get_closest_marker("browser")
            or (wall_clock and not (ahead and wall_clock.kwargs.get("ahead_is_fine")))
        ):
            item.add_marker(moved)


@pytest.fixture(scope="session", autouse=True)
def _moved_clock() -> Iterator[time_machine.Traveller | None]:
    """The whole run at ``SENTINEL_TEST_NOW``, if set (before anything is loaded)."""
    if not TEST_NOW:
        yield None
        return
    # An hour early: what the session loads (the demo) is older than every module's start.
    start = datetime.fromisoformat(TEST_NOW) - timedelta(hours=1)
    with time_machine.travel(start, tick=True) as traveller:
        yield traveller


@pytest.fixture(scope="module", autouse=True)
def _module_starts_at_test_now(_moved_clock: time_machine.Traveller | None) -> None:
    """Each module starts at ``SENTINEL_TEST_NOW`` again: every module meets the moment."""
    if _moved_clock is not None and TEST_NOW:
        _moved_clock.move_to(datetime.fromisoformat(TEST_NOW))


@pytest.fixture(scope="session")
def server_turns(tmp_path_factory: pytest.TempPathFactory) -> ServerTurns | None:
    """In a parallel run (pytest-xdist), the workers' turns on the database server."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return None
    return ServerTurns(tmp_path_factory.getbasetemp().parent)


@contextmanager
def shared_turn(turns: ServerTurns | None) -> Iterator[None]:
    if turns is None:
        yield
        return
    with turns.shared():
        yield


def _server_url(url: str) -> str:
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(
    tmp_path_factory: pytest.TempPathFactory, server_turns: ServerTurns | None
) -> Iterator[str]:
    base = os.environ.get("SENTINEL_TEST_DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'sentinel.db'}"
        return
    name = f"sentinel_test_{uuid.uuid4().hex[:10]}"
    # pool_pre_ping: a test restarts the server (tests/e2e/test_database_restart.py).
    admin = create_engine(_server_url(base), isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with shared_turn(server_turns), admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with shared_turn(server_turns), admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def base_settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        _env_file=None,
        env=Environment.TEST,
        database_url=database_url,
        secret_key=TEST_SECRET,
        media_url=str(tmp_path_factory.mktemp("media")),
        media_delete_grace_s=0,
        argon2_time_cost=1,
        argon2_memory_kib=64,
        embedded_worker=False,
        log_level="WARNING",
        # Counted on every request: each test's data is what the figures show.
        public_figures_max_age_s=0,
    )


# Connections kept open per worker: each worker has its own database and engine, and a
# PostgreSQL server admits 100 clients (a burst beyond this opens and closes more).
TEST_POOL_SIZE = 10


@pytest.fixture(scope="session")
def database(base_settings: Settings, server_turns: ServerTurns | None) -> Iterator[Database]:
    with shared_turn(server_turns):
        migrate.upgrade(base_settings.database_url)
    db = Database(base_settings.database_url, pool_size=TEST_POOL_SIZE)
    if server_turns is not None:
        server_turns.on_restart(db.engine.dispose)
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def writes(database: Database, server_turns: ServerTurns | None) -> Writes:
    """The tables written since the last restore."""
    counted = Writes(database)
    with shared_turn(server_turns):
        counted.install()
    return counted


@pytest.fixture(scope="session")
def baseline(
    database: Database,
    base_settings: Settings,
    writes: Writes,
    server_turns: ServerTurns | None,
) -> Baseline:
    with shared_turn(server_turns):
        with database.transaction() as session:
            credentials = load_demo(session, base_settings)
            writes.forget(session.connection())
        assert credentials is not None
        return Baseline(credentials, snapshot(database))


@pytest.fixture(autouse=True)
def _server_turn(
    request: pytest.FixtureRequest, server_turns: ServerTurns | None
) -> Iterator[None]:
    """In a parallel run, the test's turn on the database server: alone for a test marked
    ``exclusive`` (or ``measured``), else beside the other workers' tests (after dropping
    the connections an exclusive test's restart cut)."""
    if server_turns is None:
        yield
        return
    if request.node.get_closest_marker("exclusive"):
        with server_turns.alone():
            yield
        return
    if request.node.get_closest_marker("measured"):
        with server_turns.alone(restarts=False):
            yield
        return
    with server_turns.shared():
        yield


@pytest.fixture(autouse=True)
def _clean_database(request: pytest.FixtureRequest, _server_turn: None) -> Iterator[None]:
    yield
    if "baseline" in request.fixturenames:
        restore(
            request.getfixturevalue("database"),
            request.getfixturevalue("baseline"),
            request.getfixturevalue("writes"),
        )


@pytest.fixture(scope="session")
def object_store() -> Iterator[ObjectStoreServer]:
    """An S3-compatible server on 127.0.0.1 for the run (started on first use)."""
    with object_store_server() as server:
        yield server


@pytest.fixture(scope="session")
def _photo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("photos")


@pytest.fixture
def photo_directory(_photo_root: Path) -> Iterator[dict[str, Any]]:
    """The run's photo directory, empty at the start of the test and emptied after it."""
    yield {"media_url": str(_photo_root)}
    for child in _photo_root.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


@pytest.fixture(scope="session")
def _photo_bucket(object_store: ObjectStoreServer) -> str:
    return object_store.new_bucket()


@pytest.fixture
def photo_bucket(object_store: ObjectStoreServer, _photo_bucket: str) -> Iterator[dict[str, Any]]:
    """The run's bucket on the S3-compatible server, empty at the start of the test and
    emptied after it."""
    yield object_store.media_settings(_photo_bucket)
    object_store.empty(_photo_bucket)


@pytest.fixture
def media_backend(photo_directory: dict[str, Any]) -> dict[str, Any]:
    """Where the test's photos are kept: a directory. A module that tests both stores
    overrides this with :func:`either_media_backend`."""
    return photo_directory


def either_media_backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """For ``@pytest.fixture(params=MEDIA_BACKENDS)``: the photo directory, or the bucket."""
    name = "photo_directory" if request.param == "directory" else "photo_bucket"
    store: dict[str, Any] = request.getfixturevalue(name)
    return store


MEDIA_BACKENDS = ["directory", "s3"]


@pytest.fixture
def settings(base_settings: Settings, media_backend: dict[str, Any]) -> Settings:
    return base_settings.model_copy(update=media_backend)


@pytest.fixture(scope="session")
def apps(database: Database, server_turns: ServerTurns | None) -> Iterator[Apps]:
    shared = Apps(database)
    if server_turns is not None:
        server_turns.on_restart(shared.close)  # their intake writers' connections were cut
    yield shared
    shared.close()


@pytest.fixture
def running(apps: Apps, settings: Settings, baseline: Baseline) -> Iterator[Running]:
    """The shared app of the test's settings, with its open client (tests/apps.py)."""
    running = apps.running(settings)
    yield running
    apps.give_back(running)


@pytest.fixture
def app(running: Running) -> FastAPI:
    """The app of the test's settings, shared with the other tests of those settings: it
    is given back as it was after the test (state, clock, cookies)."""
    return running.app


@pytest.fixture
def own_app(settings: Settings, database: Database, baseline: Baseline) -> FastAPI:
    """An app of the test's alone: for a test that changes the app itself (adds a route,
    runs its lifespan in a client of its own, counts every request it served)."""
    return create_app(settings, database)


@pytest.fixture
def client(running: Running) -> TestClient:
    return running.client


@pytest.fixture
def served(apps: Apps, settings: Settings, baseline: Baseline) -> Iterator[str]:
    """The app of the test's settings served by uvicorn on 127.0.0.1 (shared likewise): its
    base URL."""
    served = apps.served(settings)
    yield served.url
    served.give_back()


@pytest.fixture
def session(database: Database, baseline: Baseline) -> Iterator[Session]:
    """A session for a service test; commit explicitly to make writes visible to others."""
    with database.session() as s:
        yield s
        s.rollback()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Auth:
    client: TestClient
    baseline: Baseline

    def staff(self, username: str) -> dict[str, str]:
        response = self.client.post(
            "/v1/auth/token",
            data={"username": username, "password": self.baseline.password(username)},
        )
        assert response.status_code == 200, response.text
        return bearer(response.json()["access_token"])

    def platform(self, code: str) -> dict[str, str]:
        return bearer(self.baseline.api_key(code))

    def rider(self, platform: str, rider_id: str) -> dict[str, str]:
        response = self.client.post(
            "/v1/platform/rider-tokens",
            headers=self.platform(platform),
            json={"rider_id": rider_id},
        )
        assert response.status_code == 201, response.text
        return bearer(response.json()["token"])


@pytest.fixture
def auth(client: TestClient, baseline: Baseline) -> Auth:
    return Auth(client, baseline)


@pytest.fixture
def count_rows(database: Database) -> Callable[[str], int]:
    def count(table: str) -> int:
        with database.session(write=False) as s:
            return int(s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())

    return count


@pytest.fixture
def statements(database: Database) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (and parameters) the test sends, in order."""
    captured: list[tuple[str, Any]] = []

    def capture(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _executemany: bool
    ) -> None:
        captured.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", capture)
    yield captured
    event.remove(database.engine, "before_cursor_execute", capture)


DATA = Path(__file__).parent / "data"


# -- the rider's front door: a clock the test moves by hand, two riders

Headers = dict[str, str]


class Clock:
    """The app's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(app: FastAPI) -> Clock:
    c = Clock(datetime.now(UTC).replace(microsecond=0))
    app.state.clock = c
    return c


@pytest.fixture
def r1(auth: Auth) -> Headers:
    return auth.rider("meituan", "r1")


@pytest.fixture
def r2(auth: Auth) -> Headers:
    return auth.rider("eleme", "r2")
