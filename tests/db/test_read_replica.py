"""Reads that may lag by seconds go to a read replica (``SENTINEL_READ_DATABASE_URL``).

On PostGIS the replica is the test database itself, through the app's second, read-only
engine: every route switched to it answers what the app without a replica answers (so
none of them writes), the writes around them still work, and the statements each sends
are split between the two engines: who asks is found on the database, everything else
is read on the replica. On SpatiaLite: the setting is refused, and the lagging reads
are the request's own session.
"""

import io
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine, event, make_url, text
from sqlalchemy.exc import InternalError
from typer.testing import CliRunner

from app.cli import cli
from app.config import Environment, Settings, get_settings
from app.db import Database
from app.deps import LaggingReadSession, SessionDep
from app.errors import ConfigurationError
from app.main import create_app
from tests.apps import Apps, Running
from tests.conftest import Auth, Baseline, Clock
from tests.console.conftest import Clerk, csrf_of
from tests.helpers import JIANGSU, act, report_at

OFFICER = "officer_310105002"  # 江苏路街道
DISTRICT = "changning"
PLATFORM = "meituan"
PUBLIC = ""
# Who asks, by the way they sign: staff with a token, a platform with its key, a clerk
# in the console with its cookie, anyone.
CONSOLE = "console:"

# Every route whose answers may lag, with who asks (paths name the scene's tickets).
LAGGING_READS = [
    (DISTRICT, "/v1/office/stats"),
    (DISTRICT, "/v1/office/stats?format=xlsx"),
    (DISTRICT, "/v1/office/stats/streets"),
    (DISTRICT, "/v1/office/stats/streets?format=xlsx"),
    (OFFICER, "/v1/office/stats/units"),
    (OFFICER, "/v1/office/tickets.csv"),
    (PLATFORM, "/v1/platform/riders/stats"),
    (PLATFORM, "/v1/platform/riders/rr-1/stats"),
    (PLATFORM, "/v1/platform/summary"),
    (PUBLIC, "/open311/v2/services.json"),
    (PUBLIC, "/open311/v2/services/waste.xml"),
    (PUBLIC, "/open311/v2/requests.json"),
    (PUBLIC, "/open311/v2/requests/{fixed_id}.xml"),
    (PUBLIC, "/public/"),
    (PUBLIC, "/public/tickets/{fixed_ref}"),
    (PUBLIC, "/public/map.geojson"),
    (PUBLIC, "/public/streets.geojson"),
    (CONSOLE + DISTRICT, "/console/dashboard"),
    (CONSOLE + DISTRICT, "/console/dashboard/streets.xlsx"),
    (CONSOLE + OFFICER, "/console/queue.csv"),
]


def postgres_only(database: Database) -> None:
    if database.is_sqlite:
        pytest.skip("a read replica is PostgreSQL's")


@pytest.fixture
def replica(
    apps: Apps, settings: Settings, database: Database, baseline: Baseline, clock: Clock
) -> Iterator[Running]:
    """The shared app whose read replica is the test database, read through its own
    read-only engine, on the test's clock."""
    postgres_only(database)
    running = apps.running(settings.model_copy(update={"read_database_url": database.url}))
    running.app.state.clock = clock
    yield running
    apps.give_back(running)


@pytest.fixture
def scene(replica: Running, baseline: Baseline, clock: Clock) -> dict[str, str]:
    """Written through the app with the replica: two riders' reports in 江苏路, both
    accepted, one fixed; read an hour later."""
    writer = Auth(replica.client, baseline)
    waste = report_at(
        replica.client,
        writer.rider(PLATFORM, "rr-1"),
        JIANGSU,
        category="waste",
        description="垃圾",
    )["ticket"]
    road = report_at(
        replica.client,
        writer.rider("eleme", "rr-2"),
        JIANGSU,
        north_m=300,
        category="road_damage",
        description="坑",
    )["ticket"]
    office = writer.staff(OFFICER)
    act(replica.client, office, waste["id"], {"action": "accept"})
    act(
        replica.client,
        office,
        road["id"],
        {"action": "accept"},
        {"action": "resolve", "note": "已补"},
    )
    clock.advance(hours=1)
    return {"open_id": waste["id"], "fixed_id": road["id"], "fixed_ref": road["ref"]}


class Reader:
    """Asks one app for a path as someone: a member of staff, a platform, a clerk in the
    console, or anyone."""

    def __init__(self, app: FastAPI, client: TestClient, auth: Auth, baseline: Baseline) -> None:
        self.app, self.client, self.auth, self.baseline = app, client, auth, baseline
        self.clerks: dict[str, Clerk] = {}
        self.headers: dict[str, dict[str, str]] = {}

    def get(self, who: str, path: str) -> httpx.Response:
        if who.startswith(CONSOLE):
            username = who.removeprefix(CONSOLE)
            if username not in self.clerks:
                self.clerks[username] = Clerk(self.app, self.baseline, username)
            return self.clerks[username].get(path)
        if who and who not in self.headers:
            self.headers[who] = self.auth.platform(who) if who == PLATFORM else self.auth.staff(who)
        return self.client.get(path, headers=self.headers.get(who, {}))


def content(response: httpx.Response) -> Any:
    """What a response says: a workbook's cells, a page without its CSRF token (each
    clerk's own), or the bytes."""
    kind = response.headers["content-type"]
    if kind.startswith("application/vnd.openxmlformats"):
        book = openpyxl.load_workbook(io.BytesIO(response.content))
        return [list(row) for sheet in book for row in sheet.iter_rows(values_only=True)]
    if kind.startswith("text/html") and 'name="csrf_token"' in response.text:
        return response.text.replace(csrf_of(response.text), "")
    return response.content


@pytest.fixture
def readers(
    app: FastAPI, client: TestClient, replica: Running, auth: Auth, baseline: Baseline
) -> tuple[Reader, Reader]:
    """The app without a replica, and the app with one."""
    return (
        Reader(app, client, auth, baseline),
        Reader(replica.app, replica.client, auth, baseline),
    )


def test_the_lagging_reads_answer_from_a_read_only_replica_as_from_the_database(
    readers: tuple[Reader, Reader], scene: dict[str, str]
) -> None:
    plain, lagging = readers
    for who, path in LAGGING_READS:
        url = path.format(**scene)
        expected, answered = plain.get(who, url), lagging.get(who, url)
        assert expected.status_code == 200, (url, expected.text)
        assert answered.status_code == 200, (url, answered.text)
        assert content(answered) == content(expected), url

    # What the scene wrote is what the replica read.
    listed = {
        r["service_request_id"] for r in lagging.get(PUBLIC, "/open311/v2/requests.json").json()
    }
    assert {scene["open_id"], scene["fixed_id"]} <= listed
    assert scene["fixed_ref"] in lagging.get(PUBLIC, "/public/").text
    stats = lagging.get(OFFICER, "/v1/office/stats").json()
    assert stats["total"] == 2
    riders = lagging.get(PLATFORM, "/v1/platform/riders/stats").json()["items"]
    assert [r["rider_id"] for r in riders] == ["rr-1"]
    assert lagging.get(CONSOLE + OFFICER, "/console/queue.csv").text.count("\n") == 3


@contextmanager
def sent_to(engine: Engine) -> Iterator[list[str]]:
    """The statements sent through ``engine`` meanwhile."""
    sent: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", capture)


# The tables that say who is asking: a member of staff, a platform's key, its rider.
CALLER_TABLES = re.compile(r"\bFROM (staff|platforms|platform_api_keys|riders)\b")


def test_who_asks_is_found_on_the_database_and_the_rest_is_read_on_the_replica(
    readers: tuple[Reader, Reader], replica: Running, scene: dict[str, str]
) -> None:
    plain, lagging = readers
    database: Engine = replica.app.state.database.engine
    read_database: Engine = replica.app.state.read_database.engine
    assert read_database is not database
    for who, path in LAGGING_READS:
        url = path.format(**scene)
        # Once before counting: the reference data each engine holds is loaded on first use.
        plain.get(who, url), lagging.get(who, url)
        with sent_to(database) as without_replica:
            plain.get(who, url)
        with sent_to(database) as on_database, sent_to(read_database) as on_replica:
            assert lagging.get(who, url).status_code == 200
        assert on_replica, url
        # The same statements, split between the two.
        assert Counter(on_database) + Counter(on_replica) == Counter(without_replica), url
        if who == PUBLIC:
            assert on_database == [], url
        else:
            assert on_database and all(CALLER_TABLES.search(s) for s in on_database), (
                url,
                on_database,
            )


def test_the_replicas_transactions_refuse_writes_and_its_url_keeps_its_options(
    database: Database,
) -> None:
    postgres_only(database)
    write = text("UPDATE categories SET name_zh = name_zh WHERE false")
    with database.session() as session:
        session.execute(write)  # the same statement, on a connection that may write
        session.rollback()
    url = make_url(database.url).update_query_dict({"options": "-c statement_timeout=4321"})
    replica = Database(url.render_as_string(hide_password=False), pool_size=1, read_only=True)
    try:
        with replica.session() as session:
            assert session.scalar(text("SHOW statement_timeout")) == "4321ms"
            with pytest.raises(InternalError, match="read-only transaction"):
                session.execute(write)
    finally:
        replica.dispose()


def test_without_a_replica_the_lagging_reads_are_the_requests_own_session(
    own_app: FastAPI,
) -> None:
    assert own_app.state.read_database is None

    @own_app.get("/same-session")
    def same_session(session: SessionDep, lagging: LaggingReadSession) -> bool:
        return session is lagging

    with TestClient(own_app) as client:
        assert client.get("/same-session").json() is True


def test_with_a_replica_the_lagging_reads_have_a_session_of_their_own(
    settings: Settings, database: Database, baseline: Baseline
) -> None:
    postgres_only(database)
    app = create_app(settings.model_copy(update={"read_database_url": database.url}), database)

    @app.get("/same-session")
    def same_session(session: SessionDep, lagging: LaggingReadSession) -> bool:
        return session is lagging

    with TestClient(app) as client:
        assert client.get("/same-session").json() is False


SERVER = "postgresql+psycopg://sentinel@db.example:5432/sentinel"
STANDBY = "postgresql+psycopg://sentinel@standby.example:5432/sentinel"


@pytest.mark.parametrize(
    ("primary", "read"),
    [
        ("sqlite:///./sentinel.db", STANDBY),
        (SERVER, "sqlite:///./replica.db"),
    ],
)
def test_a_read_replica_beside_the_embedded_database_is_refused(primary: str, read: str) -> None:
    with pytest.raises(ValidationError, match=r"SENTINEL_READ_DATABASE_URL .* PostgreSQL"):
        Settings(
            _env_file=None,
            env=Environment.DEVELOPMENT,
            database_url=primary,
            read_database_url=read,
        )


def test_sentinel_serve_with_the_embedded_database_and_a_replica_stops_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv("SENTINEL_ENV", "development")
    monkeypatch.setenv("SENTINEL_DATABASE_URL", f"sqlite:///{tmp_path / 'sentinel.db'}")
    monkeypatch.setenv("SENTINEL_READ_DATABASE_URL", STANDBY)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["serve"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "SENTINEL_READ_DATABASE_URL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_read_replica_url_is_a_database_url_or_unset() -> None:
    def settings(read: str) -> Settings:
        return Settings(
            _env_file=None, env=Environment.DEVELOPMENT, database_url=SERVER, read_database_url=read
        )

    assert settings(STANDBY).read_database_url == STANDBY
    assert settings("  ").read_database_url is None
    with pytest.raises(ValidationError, match="SENTINEL_READ_DATABASE_URL is not a database URL"):
        settings("standby.example")


def test_the_embedded_database_has_no_read_only_twin(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PostgreSQL read replica"):
        Database(f"sqlite:///{tmp_path / 'x.db'}", read_only=True)
