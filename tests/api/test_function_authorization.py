"""Function-level authorisation as a matrix read from the app's own OpenAPI: every
operation has a rule here saying which callers it serves, so that a new route without
one fails this test; and every caller is tried on every operation.

A caller the rule admits is never answered 401 or 403 (it may well get a 404 or a 422:
the ids here are made up); one it does not admit is answered 401 (no or a bad token) or
403 (the wrong role), before any body is read."""

import uuid
from collections.abc import Collection
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import Auth

ANYONE = "anonymous"
RIDER, PLATFORM, OFFICER, DISTRICT, ADMIN = "rider", "platform", "officer", "district", "admin"
CREW = "crew"  # a member of a responsible unit's crew
CALLERS = (ANYONE, RIDER, PLATFORM, OFFICER, DISTRICT, ADMIN, CREW)
EVERYONE = frozenset(CALLERS)
SIGNED_IN = EVERYONE - {ANYONE}
OFFICE = frozenset({OFFICER, DISTRICT})
STAFF = frozenset({OFFICER, DISTRICT, ADMIN, CREW})
# The offices, and the crews of the units they dispatch to (each on the tickets it holds).
CASE_WORKERS = OFFICE | {CREW}


def serving(callers: Collection[str], *routes: str) -> dict[tuple[str, str], frozenset[str]]:
    """A rule for each operation of ``routes``, which serve ``callers``: a route is its
    methods, then its path (``"GET PUT DELETE /v1/platform/webhook"``)."""
    return {
        (method, path): frozenset(callers)
        for *methods, path in (route.split() for route in routes)
        for method in methods
    }


# Who each operation serves, by who is served. Open311 and /healthz are anyone's;
# /metrics and /readyz's details are the operator's (a token of its own, tested in
# test_http_basics).
SERVED = (
    serving(
        EVERYONE,
        "GET /healthz",
        "GET /readyz",
        "GET /v1/categories",
        "POST /v1/auth/token",
        "GET /open311/v2/discovery.{format}",
        "GET /open311/v2/services.{format}",
        "GET /open311/v2/services/{service_code}.{format}",
        "GET POST /open311/v2/requests.{format}",  # the POST: its own api_key, in the form
        "GET /open311/v2/requests/{service_request_id}.{format}",
        "GET /open311/v2/media/{media_id}",  # a signed URL
    ),
    serving((), "GET /metrics"),
    serving(SIGNED_IN, "GET /v1/areas/route"),
    serving(
        {RIDER},
        "GET POST /v1/reports",
        "POST /v1/reports/batch",
        "GET /v1/reports/{report_id}",
        "GET /v1/reports/{report_id}/photos/{photo_id}",
        "GET /v1/reports/{report_id}/photos/{photo_id}/thumbnail",
        "GET /v1/tickets/nearby",
        "POST /v1/tickets/{ticket_id}/verifications",
        "POST /v1/reports/{report_id}/feedback",
        "GET /v1/me",
        "POST /v1/media",
        "GET /v1/alerts/active",
        "POST /v1/alerts/{alert_id}/sightings",
    ),
    # The uploader, the offices handling it, and the uploader's platform (for exports);
    # a rider's photo also for the crew of the unit its ticket is dispatched to.
    serving(
        {RIDER, PLATFORM, OFFICER, DISTRICT, CREW},
        "GET /v1/media/{media_id}",
        "GET /v1/media/{media_id}/thumbnail",
    ),
    serving(
        {RIDER, PLATFORM, OFFICER, DISTRICT},
        "GET /v1/alerts/{alert_id}/photos/{photo_id}",
    ),
    serving(
        {PLATFORM},
        "POST /v1/platform/rider-tokens",
        "GET /v1/platform/riders/stats",
        "GET DELETE /v1/platform/riders/{rider_id}",
        "GET /v1/platform/riders/{rider_id}/stats",
        "GET /v1/platform/riders/{rider_id}/export",
        "GET /v1/platform/summary",
        "GET PUT DELETE /v1/platform/webhook",
        "GET /v1/platform/webhook/deliveries",
    ),
    serving(STAFF, "POST /v1/auth/password", "POST /v1/auth/sign-out"),
    # Channels: admins keep every one, district staff their district's.
    serving(
        {ADMIN, DISTRICT},
        "GET POST /v1/admin/channels",
        "GET PATCH DELETE /v1/admin/channels/{code}",
        "POST /v1/admin/channels/{code}/test",
        "GET /v1/admin/channels/{code}/deliveries",
    ),
    serving(
        CASE_WORKERS,
        "GET /v1/office/tickets",
        "GET /v1/office/tickets.csv",
        "GET /v1/office/tickets/{ticket_id}",
        "POST /v1/office/tickets/{ticket_id}/actions",
        "POST /v1/office/media",
        "GET /v1/office/media/{media_id}",
        "GET /v1/office/media/{media_id}/thumbnail",
    ),
    serving(
        OFFICE,
        "GET /v1/office/stats",
        "GET /v1/office/areas",
        "GET /v1/office/areas/{code}",
        "GET /v1/office/units",
        "GET /v1/office/stats/units",
        "GET /v1/office/tickets/{ticket_id}/forwarding",
        "GET /v1/office/media/{media_id}/suggestions",
        "PUT DELETE /v1/office/media/{media_id}/public",
        "GET /v1/office/alerts",
        "GET /v1/office/alerts/{alert_id}",
    ),
    # Officers pass the door of the alerts and are refused by the rule (403 unless an
    # admin granted).
    serving(
        {DISTRICT},
        "GET /v1/office/stats/streets",
        "POST /v1/office/alerts",
        "POST /v1/office/alerts/photos",
        "POST /v1/office/alerts/{alert_id}/close",
    ),
    serving(
        {ADMIN},
        "GET PUT /v1/admin/calendar/{year}",
        "GET /v1/admin/areas",
        "POST /v1/admin/areas:import",
        "GET /v1/admin/categories",
        "GET PUT /v1/admin/categories/{code}",
        "GET POST /v1/admin/platforms",
        "PATCH /v1/admin/platforms/{code}",
        "POST /v1/admin/platforms/{code}/api-key",
        "GET POST /v1/admin/staff",
        "PATCH /v1/admin/staff/{username}",
        "GET POST /v1/admin/units",
        "GET PATCH /v1/admin/units/{code}",
        "GET POST /v1/admin/forwards",
        "DELETE /v1/admin/forwards/{forward_id}",
    ),
)
RULES = {operation: callers for rules in SERVED for operation, callers in rules.items()}

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
    assert sum(map(len, SERVED)) == len(RULES), "an operation with two rules"


def headers_of(auth: Auth, caller: str) -> dict[str, str]:
    return {
        ANYONE: lambda: {},
        RIDER: lambda: auth.rider("meituan", "matrix-rider"),
        PLATFORM: lambda: auth.platform("meituan"),
        OFFICER: lambda: auth.staff("officer_310105002"),
        DISTRICT: lambda: auth.staff("changning"),
        ADMIN: lambda: auth.staff("admin"),
        CREW: lambda: auth.staff("crew_roads_310105002"),
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
