"""Function-level authorisation as a matrix read from the app's own OpenAPI: every
operation has a rule here saying which callers it serves, so that a new route without
one fails this test; and every caller is tried on every operation.

A caller the rule admits is never answered 401 or 403 (it may well get a 404 or a 422:
the ids here are made up); one it does not admit is answered 401 (no or a bad token) or
403 (the wrong role), before any body is read."""

import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import Auth

ANYONE = "anonymous"
RIDER, PLATFORM, OFFICER, DISTRICT, ADMIN = "rider", "platform", "officer", "district", "admin"
CALLERS = (ANYONE, RIDER, PLATFORM, OFFICER, DISTRICT, ADMIN)
EVERYONE = frozenset(CALLERS)
SIGNED_IN = EVERYONE - {ANYONE}
OFFICE = frozenset({OFFICER, DISTRICT})
STAFF = frozenset({OFFICER, DISTRICT, ADMIN})

# Who each operation serves. Open311 and /healthz are anyone's; /metrics and /readyz's
# details are the operator's (a token of its own, tested in test_http_basics).
RULES: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/v1/reports"): frozenset({RIDER}),
    ("GET", "/v1/reports"): frozenset({RIDER}),
    ("POST", "/v1/reports/batch"): frozenset({RIDER}),
    ("GET", "/v1/reports/{report_id}"): frozenset({RIDER}),
    ("GET", "/v1/tickets/nearby"): frozenset({RIDER}),
    ("GET", "/v1/me"): frozenset({RIDER}),
    ("POST", "/v1/tickets/{ticket_id}/verifications"): frozenset({RIDER}),
    ("GET", "/healthz"): EVERYONE,
    ("GET", "/readyz"): EVERYONE,
    ("GET", "/metrics"): frozenset(),
    ("GET", "/v1/categories"): EVERYONE,
    ("POST", "/v1/auth/token"): EVERYONE,
    ("POST", "/v1/auth/password"): STAFF,
    ("POST", "/v1/auth/sign-out"): STAFF,
    ("POST", "/v1/media"): frozenset({RIDER}),
    # The uploader, the offices handling it, and the uploader's platform (for exports).
    ("GET", "/v1/media/{media_id}"): frozenset({RIDER, PLATFORM, OFFICER, DISTRICT}),
    ("GET", "/v1/media/{media_id}/thumbnail"): frozenset({RIDER, PLATFORM, OFFICER, DISTRICT}),
    ("GET", "/v1/office/stats"): OFFICE,
    ("GET", "/v1/office/stats/streets"): frozenset({DISTRICT}),
    # Officers pass the door and are refused by the rule (403 unless an admin granted).
    ("POST", "/v1/office/alerts"): frozenset({DISTRICT}),
    ("POST", "/v1/office/alerts/photos"): frozenset({DISTRICT}),
    ("GET", "/v1/office/alerts"): OFFICE,
    ("GET", "/v1/office/alerts/{alert_id}"): OFFICE,
    ("POST", "/v1/office/alerts/{alert_id}/close"): frozenset({DISTRICT}),
    ("GET", "/v1/alerts/active"): frozenset({RIDER}),
    ("POST", "/v1/alerts/{alert_id}/sightings"): frozenset({RIDER}),
    ("GET", "/v1/alerts/{alert_id}/photos/{photo_id}"): frozenset(
        {RIDER, PLATFORM, OFFICER, DISTRICT}
    ),
    ("GET", "/v1/admin/calendar/{year}"): frozenset({ADMIN}),
    ("PUT", "/v1/admin/calendar/{year}"): frozenset({ADMIN}),
    ("GET", "/v1/office/tickets"): OFFICE,
    ("GET", "/v1/office/tickets.csv"): OFFICE,
    ("GET", "/v1/office/tickets/{ticket_id}"): OFFICE,
    ("POST", "/v1/office/tickets/{ticket_id}/actions"): OFFICE,
    ("GET", "/v1/office/tickets/{ticket_id}/forwarding"): OFFICE,
    ("POST", "/v1/platform/rider-tokens"): frozenset({PLATFORM}),
    ("GET", "/v1/platform/riders/stats"): frozenset({PLATFORM}),
    ("GET", "/v1/platform/riders/{rider_id}/stats"): frozenset({PLATFORM}),
    ("GET", "/v1/platform/summary"): frozenset({PLATFORM}),
    ("GET", "/v1/platform/riders/{rider_id}"): frozenset({PLATFORM}),
    ("DELETE", "/v1/platform/riders/{rider_id}"): frozenset({PLATFORM}),
    ("GET", "/v1/platform/riders/{rider_id}/export"): frozenset({PLATFORM}),
    ("GET", "/v1/platform/webhook"): frozenset({PLATFORM}),
    ("PUT", "/v1/platform/webhook"): frozenset({PLATFORM}),
    ("DELETE", "/v1/platform/webhook"): frozenset({PLATFORM}),
    ("GET", "/v1/platform/webhook/deliveries"): frozenset({PLATFORM}),
    ("GET", "/v1/areas/route"): SIGNED_IN,
    ("GET", "/v1/office/areas"): OFFICE,
    ("GET", "/v1/office/areas/{code}"): OFFICE,
    ("POST", "/v1/admin/areas:import"): frozenset({ADMIN}),
    ("GET", "/v1/admin/areas"): frozenset({ADMIN}),
    ("GET", "/v1/admin/categories"): frozenset({ADMIN}),
    ("GET", "/v1/admin/categories/{code}"): frozenset({ADMIN}),
    ("PUT", "/v1/admin/categories/{code}"): frozenset({ADMIN}),
    ("POST", "/v1/admin/platforms"): frozenset({ADMIN}),
    ("GET", "/v1/admin/platforms"): frozenset({ADMIN}),
    ("POST", "/v1/admin/platforms/{code}/api-key"): frozenset({ADMIN}),
    ("PATCH", "/v1/admin/platforms/{code}"): frozenset({ADMIN}),
    ("PATCH", "/v1/admin/staff/{username}"): frozenset({ADMIN}),
    ("POST", "/v1/admin/staff"): frozenset({ADMIN}),
    ("GET", "/v1/admin/staff"): frozenset({ADMIN}),
    ("GET", "/v1/admin/forwards"): frozenset({ADMIN}),
    ("POST", "/v1/admin/forwards"): frozenset({ADMIN}),
    ("DELETE", "/v1/admin/forwards/{forward_id}"): frozenset({ADMIN}),
    ("GET", "/open311/v2/discovery.{format}"): EVERYONE,
    ("GET", "/open311/v2/services.{format}"): EVERYONE,
    ("GET", "/open311/v2/services/{service_code}.{format}"): EVERYONE,
    ("GET", "/open311/v2/requests.{format}"): EVERYONE,
    ("POST", "/open311/v2/requests.{format}"): EVERYONE,  # its own api_key, in the form
    ("GET", "/open311/v2/requests/{service_request_id}.{format}"): EVERYONE,
    ("GET", "/open311/v2/media/{media_id}"): EVERYONE,  # a signed URL
}

# Made-up path values: an admitted caller may get a 404 for them, never a 401 or 403.
VALUES = {
    "report_id": str(uuid.uuid4()),
    "ticket_id": str(uuid.uuid4()),
    "media_id": str(uuid.uuid4()),
    "service_request_id": str(uuid.uuid4()),
    "rider_id": "no-such-rider",
    "year": "2099",
    "alert_id": str(uuid.uuid4()),
    "photo_id": str(uuid.uuid4()),
    "username": "no_such_user",
    "forward_id": "999999",
    "service_code": "road_damage",
    "format": "json",
}
CODES = {"/v1/office/areas/{code}": "310105002", "/v1/admin/categories/{code}": "no_such"}


def operations(app: FastAPI) -> list[tuple[str, str]]:
    return [
        (method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item
    ]


def test_every_operation_has_a_rule(app: FastAPI) -> None:
    served = set(operations(app))
    assert served - set(RULES) == set(), "operations without a rule: add them to RULES"
    assert set(RULES) - served == set(), "rules of operations that no longer exist"


def headers_of(auth: Auth, caller: str) -> dict[str, str]:
    return {
        ANYONE: lambda: {},
        RIDER: lambda: auth.rider("meituan", "matrix-rider"),
        PLATFORM: lambda: auth.platform("meituan"),
        OFFICER: lambda: auth.staff("officer_310105002"),
        DISTRICT: lambda: auth.staff("changning"),
        ADMIN: lambda: auth.staff("admin"),
    }[caller]()


def url_of(path: str) -> str:
    if "{code}" in path:
        return path.replace("{code}", CODES.get(path, "meituan"))
    for name, value in VALUES.items():
        path = path.replace("{" + name + "}", value)
    return path


def test_every_caller_on_every_operation(client: TestClient, auth: Auth, app: FastAPI) -> None:
    headers = {caller: headers_of(auth, caller) for caller in CALLERS}
    wrong: list[str] = []
    # Signing out ends the staff's tokens: it goes last.
    for method, path in sorted(operations(app), key=lambda op: op[1] == "/v1/auth/sign-out"):
        admitted = RULES[(method, path)]
        for caller in CALLERS:
            body: dict[str, Any] = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
            response = client.request(method, url_of(path), headers=headers[caller], **body)
            refused = response.status_code in (401, 403)
            if caller in admitted and refused:
                wrong.append(f"{method} {path}: {caller} refused ({response.status_code})")
            if caller not in admitted and not refused:
                wrong.append(f"{method} {path}: {caller} let through ({response.status_code})")
            # /metrics with no token set is the loopback's: a 403 to anyone else.
            anonymous_refused = caller == ANYONE and caller not in admitted
            if anonymous_refused and response.status_code != 401 and path != "/metrics":
                wrong.append(f"{method} {path}: anonymous got {response.status_code}")
    assert wrong == [], wrong


def test_a_bad_token_is_a_401_everywhere_a_token_is_needed(
    client: TestClient, app: FastAPI
) -> None:
    forged = {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}
    for method, path in operations(app):
        if ANYONE in RULES[(method, path)] or path == "/metrics":
            continue
        response = client.request(method, url_of(path), headers=forged)
        assert response.status_code == 401, (method, path, response.status_code)
