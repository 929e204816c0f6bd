"""The ``sentinel`` command, run in-process against the test database."""

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings, get_settings

runner = CliRunner()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings, baseline) -> Iterator[None]:
    monkeypatch.setenv("SENTINEL_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SENTINEL_ENV", "test")
    monkeypatch.setenv("SENTINEL_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("SENTINEL_ARGON2_MEMORY_KIB", "64")
    monkeypatch.setenv("SENTINEL_ARGON2_TIME_COST", "1")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(*args: str):
    return runner.invoke(cli, list(args))


def test_demo_on_a_loaded_database_changes_nothing_and_says_so(cli_env, count_rows) -> None:
    before = {t: count_rows(t) for t in ("areas", "categories", "platforms", "staff")}
    result = run("demo", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["loaded"] is False
    assert "nothing changed" in result.stderr
    assert {t: count_rows(t) for t in before} == before


def test_platform_create_prints_a_key_that_works(cli_env, client) -> None:
    result = run("platform", "create", "dada", "--name", "达达", "--json")
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["code"] == "dada"
    response = client.post(
        "/v1/platform/rider-tokens",
        json={"rider_id": "d-1"},
        headers={"Authorization": f"Bearer {created['api_key']}"},
    )
    assert response.status_code == 201


def test_staff_create_prints_a_password_that_logs_in(cli_env, client) -> None:
    result = run(
        "staff", "create", "clerk_hy", "--role", "officer", "--area", "310105001", "--json"
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created == {
        "username": "clerk_hy",
        "password": created["password"],
        "role": "officer",
        "area": "310105001",
        "unit": None,
    }
    login = client.post(
        "/v1/auth/token", data={"username": "clerk_hy", "password": created["password"]}
    )
    assert login.status_code == 200 and login.json()["area"] == "310105001"


def test_staff_create_makes_a_member_of_a_unit_s_crew(cli_env, client, auth) -> None:
    result = run(
        "staff", "create", "crew_hy", "--role", "crew", "--unit", "roads_310105001", "--json"
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert {k: v for k, v in created.items() if k != "password"} == {
        "username": "crew_hy",
        "role": "crew",
        "area": None,
        "unit": "roads_310105001",
    }
    login = client.post(
        "/v1/auth/token", data={"username": "crew_hy", "password": created["password"]}
    )
    assert login.status_code == 200 and login.json()["role"] == "crew"
    listed = client.get("/v1/admin/staff", headers=auth.staff("admin"), params={"limit": 200})
    row = next(s for s in listed.json()["items"] if s["username"] == "crew_hy")
    assert (row["area"], row["unit"]) == (None, "roads_310105001")


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ("staff", "create", "x_officer", "--role", "officer", "--area", "310105"),
            "310105 is not a street",
        ),
        (
            ("staff", "create", "officer_310105002", "--role", "officer", "--area", "310105002"),
            "exists already",
        ),
        (("platform", "create", "meituan", "--name", "again"), "exists already"),
        (("staff", "create", "crew_x", "--role", "crew"), "needs the code of its unit"),
        (
            ("staff", "create", "crew_x", "--role", "crew", "--unit", "no_such_unit"),
            "no unit with code no_such_unit",
        ),
        (
            (
                *("staff", "create", "officer_x", "--role", "officer"),
                *("--area", "310105002", "--unit", "roads_310105002"),
            ),
            "the role officer has no unit",
        ),
        (
            (
                *("staff", "create", "crew_x", "--role", "crew"),
                *("--unit", "roads_310105002", "--area", "310105002"),
            ),
            "the role crew has no area",
        ),
    ],
)
def test_refusals_exit_non_zero_with_one_line(cli_env, count_rows, args, message) -> None:
    before = count_rows("staff"), count_rows("platforms")
    result = run(*args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert (count_rows("staff"), count_rows("platforms")) == before


def test_placeholder_secret_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_ENV", "production")
    monkeypatch.setenv("SENTINEL_SECRET_KEY", "changethis")
    get_settings.cache_clear()
    try:
        result = run("db", "upgrade")
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "SENTINEL_SECRET_KEY" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (("areas", "import", "/nonexistent/file.geojson"), "does not exist"),
        (("staff", "create", "bob_x", "--role", "boss"), "'boss' is not one of"),
        (("areas", "import", __file__, "--coord-sys", "utm"), "'utm' is not one of"),
    ],
)
def test_usage_errors_are_one_line_too(cli_env, args, message) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
