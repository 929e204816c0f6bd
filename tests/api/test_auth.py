"""Who may call at all: staff logins, rider tokens, platform API keys, and every way a
credential can be bad (which must be a 401, never a 403 or a 500)."""

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select, update

from app.config import Settings
from app.db import Database
from app.models import Platform, Staff
from app.riders import tokens
from app.security import TokenKind, issue_token
from tests.conftest import Auth, Baseline, bearer
from tests.helpers import assert_problem, rider_token

ADMIN_ONLY = "/v1/admin/platforms"


def assert_unauthenticated(response: Response, code: str = "unauthenticated") -> dict[str, Any]:
    body = assert_problem(response, 401, code)
    assert response.headers["www-authenticate"] == "Bearer"
    return body


def parse_time(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


def assert_about(actual: datetime, expected: datetime) -> None:
    assert abs(actual - expected) < timedelta(seconds=30), (actual, expected)


def staff_id(database: Database, username: str) -> Any:
    with database.session(write=False) as s:
        return s.scalar(select(Staff.id).where(Staff.username == username))


def login(client: TestClient, username: str, password: str) -> Response:
    return client.post("/v1/auth/token", data={"username": username, "password": password})


# --- staff login -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "role", "area", "probe"),
    [
        ("admin", "admin", None, "/v1/admin/staff"),
        ("changning", "district", "310105", "/v1/office/areas/310105"),
        ("officer_310105002", "officer", "310105002", "/v1/office/areas/310105002"),
    ],
)
def test_staff_login_returns_a_token_that_works(
    client: TestClient,
    baseline: Baseline,
    settings: Settings,
    username: str,
    role: str,
    area: str | None,
    probe: str,
) -> None:
    response = login(client, username, baseline.password(username))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert (body["role"], body["area"]) == (role, area)
    assert_about(
        parse_time(body["expires_at"]),
        datetime.now(UTC) + timedelta(hours=settings.staff_token_ttl_h),
    )
    assert client.get(probe).status_code == 401
    assert client.get(probe, headers=bearer(body["access_token"])).status_code == 200


def test_wrong_password_and_unknown_user_are_indistinguishable(
    client: TestClient,
    baseline: Baseline,
) -> None:
    wrong_password = login(client, "admin", baseline.password("admin") + "x")
    unknown_user = login(client, "nobody-here", "whatever-password")

    first = assert_unauthenticated(wrong_password, "invalid_credentials")
    second = assert_unauthenticated(unknown_user, "invalid_credentials")
    assert first == second
    assert "access_token" not in first


def test_another_users_password_does_not_log_in(client: TestClient, baseline: Baseline) -> None:
    response = login(client, "admin", baseline.password("changning"))

    assert_unauthenticated(response, "invalid_credentials")


@pytest.mark.parametrize(
    ("form", "missing"),
    [
        ({"password": "x" * 12}, {"username"}),
        ({"username": "admin"}, {"password"}),
        ({}, {"username", "password"}),
    ],
)
def test_login_without_form_fields_is_a_validation_error(
    client: TestClient,
    form: dict[str, str],
    missing: set[str],
) -> None:
    body = assert_problem(client.post("/v1/auth/token", data=form), 422, "validation_error")

    assert {e["field"] for e in body["errors"]} == missing


def test_login_as_json_is_a_validation_error(client: TestClient, baseline: Baseline) -> None:
    response = client.post(
        "/v1/auth/token", json={"username": "admin", "password": baseline.password("admin")}
    )

    assert_problem(response, 422, "validation_error")


# --- bad tokens ------------------------------------------------------------------------

TokenFactory = Callable[[Settings, Any], dict[str, str]]


def _staff_token(settings: Settings, subject: Any, ttl: timedelta) -> dict[str, str]:
    return bearer(
        issue_token(kind=TokenKind.STAFF, subject=subject, ttl=ttl, settings=settings).token
    )


def _expired(settings: Settings, subject: Any) -> dict[str, str]:
    return _staff_token(settings, subject, timedelta(seconds=-5))


def _other_secret(settings: Settings, subject: Any) -> dict[str, str]:
    other = settings.model_copy(update={"secret_key": "another-secret-that-is-long-enough-42"})
    return _staff_token(other, subject, timedelta(hours=1))


def _unsigned(settings: Settings, subject: Any) -> dict[str, str]:
    claims = {
        "iss": "flowing-sentinel",
        "typ": "staff",
        "sub": str(subject),
        "exp": int((datetime.now(UTC) + timedelta(hours=1)).timestamp()),
    }
    return bearer(jwt.encode(claims, key=None, algorithm="none"))


def _rider_typed_staff(settings: Settings, subject: Any) -> dict[str, str]:
    # A correctly signed token whose kind does not match its subject.
    return bearer(
        issue_token(
            kind=TokenKind.RIDER, subject=subject, ttl=timedelta(hours=1), settings=settings
        ).token
    )


BAD_CREDENTIALS: dict[str, TokenFactory] = {
    "expired": _expired,
    "other_secret": _other_secret,
    "alg_none": _unsigned,
    "kind_mismatch": _rider_typed_staff,
    "garbage": lambda _s, _id: bearer("not-a-token"),
    "truncated": lambda s, i: bearer(
        _staff_token(s, i, timedelta(hours=1))["Authorization"].removeprefix("Bearer ")[:-4]
    ),
    "unknown_api_key": lambda _s, _id: bearer("fsk_" + "A" * 43),
    "basic_scheme": lambda _s, _id: {"Authorization": "Basic YWRtaW46cGFzc3dvcmQ="},
    "empty_bearer": lambda _s, _id: {"Authorization": "Bearer "},
    "no_scheme": lambda s, i: {
        "Authorization": _staff_token(s, i, timedelta(hours=1))["Authorization"].removeprefix(
            "Bearer "
        )
    },
}


@pytest.mark.parametrize("make", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
def test_bad_credentials_are_401(
    client: TestClient, database: Database, settings: Settings, make: TokenFactory
) -> None:
    headers = make(settings, staff_id(database, "admin"))

    assert_unauthenticated(client.get(ADMIN_ONLY, headers=headers))


def test_a_token_made_like_the_bad_ones_but_valid_works(
    client: TestClient,
    database: Database,
    settings: Settings,
) -> None:
    """The control for the test above: the same subject, signed right, is let in."""
    headers = _staff_token(settings, staff_id(database, "admin"), timedelta(minutes=1))

    assert client.get(ADMIN_ONLY, headers=headers).status_code == 200


def test_deactivated_staff_loses_its_token_and_its_login(
    client: TestClient,
    database: Database,
    auth: Auth,
    baseline: Baseline,
) -> None:
    headers = auth.staff("officer_310105002")
    assert client.get("/v1/office/areas", headers=headers).status_code == 200

    with database.transaction() as s:
        s.execute(update(Staff).where(Staff.username == "officer_310105002").values(active=False))

    assert_unauthenticated(client.get("/v1/office/areas", headers=headers))
    again = login(client, "officer_310105002", baseline.password("officer_310105002"))
    assert_unauthenticated(again, "invalid_credentials")


# --- rider tokens ----------------------------------------------------------------------


def test_rider_token_registers_the_rider_once(
    client: TestClient,
    auth: Auth,
    count_rows: Callable[[str], int],
) -> None:
    riders = count_rows("riders")
    meituan = auth.platform("meituan")

    first = rider_token(client, meituan, "mt-007", display_name="张三")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["token_type"] == "bearer" and body["token"]
    assert body["rider"]["rider_id"] == "mt-007"
    assert count_rows("riders") == riders + 1

    second = rider_token(client, meituan, "mt-007", display_name="张三丰")
    assert second.status_code == 201, second.text
    assert second.json()["rider"] == body["rider"]
    assert second.json()["token"] != body["token"]
    assert count_rows("riders") == riders + 1

    rider = client.get("/v1/platform/riders/mt-007", headers=meituan).json()
    assert rider["id"] == body["rider"]["id"]
    assert rider["display_name"] == "张三丰"

    rider_token(client, meituan, "mt-007")
    rider = client.get("/v1/platform/riders/mt-007", headers=meituan).json()
    assert rider["display_name"] == "张三丰", "a token without a display_name keeps the old one"


def test_a_rider_registered_by_a_concurrent_request_is_reused(
    client: TestClient,
    auth: Auth,
    count_rows: Callable[[str], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    meituan = auth.platform("meituan")
    first = rider_token(client, meituan, "mt-race").json()
    riders = count_rows("riders")
    # The race, replayed: the look-up misses a rider that another request has just
    # registered, so the insert meets the unique constraint.
    real_find_rider, misses = tokens.find_rider, [None]

    def find_rider_late(session: Any, **kwargs: Any) -> Any:
        return misses.pop() if misses else real_find_rider(session, **kwargs)

    monkeypatch.setattr(tokens, "find_rider", find_rider_late)

    second = rider_token(client, meituan, "mt-race", display_name="李四")

    assert second.status_code == 201, second.text
    assert second.json()["rider"] == first["rider"]
    assert count_rows("riders") == riders
    assert (
        client.get("/v1/platform/riders/mt-race", headers=meituan).json()["display_name"] == "李四"
    )


@pytest.mark.parametrize("ttl_h", [None, 2.5])
def test_rider_token_lifetime(
    client: TestClient, auth: Auth, settings: Settings, ttl_h: float | None
) -> None:
    if ttl_h is not None:
        settings.rider_token_ttl_h = ttl_h
    expected = datetime.now(UTC) + timedelta(hours=ttl_h or 24)

    response = rider_token(client, auth.platform("meituan"), "mt-ttl")

    assert response.status_code == 201, response.text
    body = response.json()
    expires_at = parse_time(body["expires_at"])
    assert_about(expires_at, expected)
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["exp"] == int(expires_at.timestamp())


def test_rider_token_authenticates_as_a_rider(client: TestClient, auth: Auth) -> None:
    rider = auth.rider("meituan", "rider-1")

    assert (
        client.get(
            "/v1/areas/route", params={"lat": 31.2234, "lon": 121.4272}, headers=rider
        ).status_code
        == 200
    )
    assert_problem(client.get(ADMIN_ONLY, headers=rider), 403, "forbidden")
    assert_problem(
        rider_token(client, rider, "rider-2"),
        403,
        "forbidden",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "rider_id"),
        ({"rider_id": ""}, "rider_id"),
        ({"rider_id": "x" * 129}, "rider_id"),
        ({"rider_id": "ok", "display_name": "x" * 101}, "display_name"),
    ],
)
def test_rider_token_with_bad_body_stores_nothing(
    client: TestClient,
    auth: Auth,
    count_rows: Callable[[str], int],
    body: dict[str, str],
    field: str,
) -> None:
    riders = count_rows("riders")

    response = client.post("/v1/platform/rider-tokens", headers=auth.platform("meituan"), json=body)

    problem = assert_problem(response, 422, "validation_error")
    assert field in {e["field"] for e in problem["errors"]}
    assert count_rows("riders") == riders


# --- platform API keys -----------------------------------------------------------------


def test_rotated_platform_key_is_401(client: TestClient, auth: Auth) -> None:
    old = auth.platform("eleme")
    rider = auth.rider("eleme", "el-1")

    rotated = client.post("/v1/admin/platforms/eleme/api-key", headers=auth.staff("admin"))

    assert rotated.status_code == 200, rotated.text
    assert_unauthenticated(rider_token(client, old, "el-1"))
    new = bearer(rotated.json()["api_key"])
    assert rider_token(client, new, "el-1").status_code == 201
    # Riders hold tokens of their own, not the key: rotating a leaked key does not log
    # every courier out.
    assert (
        client.get(
            "/v1/areas/route", params={"lat": 31.2234, "lon": 121.4272}, headers=rider
        ).status_code
        == 200
    )
    # The other platform is untouched.
    assert client.get("/v1/platform/riders/x", headers=auth.platform("meituan")).status_code == 404


def test_deactivated_platform_and_its_riders_are_401(
    client: TestClient,
    auth: Auth,
    database: Database,
) -> None:
    key, rider = auth.platform("eleme"), auth.rider("eleme", "el-1")

    with database.transaction() as s:
        s.execute(update(Platform).where(Platform.code == "eleme").values(active=False))

    assert_unauthenticated(rider_token(client, key, "el-1"))
    assert_unauthenticated(
        client.get("/v1/areas/route", params={"lat": 31.2234, "lon": 121.4272}, headers=rider)
    )


def test_api_keys_are_stored_hashed(client: TestClient, auth: Auth, database: Database) -> None:
    created = client.post(
        "/v1/admin/platforms", headers=auth.staff("admin"), json={"code": "didi", "name": "滴滴"}
    )
    assert created.status_code == 201, created.text
    api_key = created.json()["api_key"]
    assert api_key.startswith("fsk_")

    with database.session(write=False) as s:
        row = s.execute(select(Platform).where(Platform.code == "didi")).scalar_one()
        stored = [str(v) for v in (row.api_key_hash, row.api_key_prefix, row.name, row.code)]
    assert row.api_key_hash == hashlib.sha256(api_key.encode()).hexdigest()
    assert api_key not in stored
    assert api_key[:12] == row.api_key_prefix

    listed = client.get("/v1/admin/platforms", headers=auth.staff("admin")).json()["items"]
    assert api_key not in str(listed)
