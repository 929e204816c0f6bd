"""The rider's front door: POST /v1/reports (and its batch), merging, idempotency, reads.

Every test drives the real app over HTTP. Time is the app's clock (``app.state.clock``),
replaced here by one the test moves by hand: past a dedup window, past the rate window,
past the idempotency retention, without sleeping.
"""

import base64
import io
import json
import math
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.models import Ticket, TicketEvent, TicketStatus
from app.models.points import Contribution
from app.services.coords import CoordSys, from_wgs84, to_wgs84
from app.worker import JOBS
from tests.conftest import DATA, Auth
from tests.helpers import assert_problem

CountRows = Callable[[str], int]
Headers = dict[str, str]

# Everything a report can leave behind.
STORED = ("reports", "tickets", "ticket_events", "report_media", "idempotency_records")

# A point in 江苏路街道 (310105002): the demo's GCJ-02 landmark, in WGS-84. Other points
# are placed so many metres north and east of it.
BASE_LON, BASE_LAT = to_wgs84(121.4330, 31.2200, CoordSys.GCJ02)
M_LAT = 1 / 111_320
M_LON = 1 / (111_320 * math.cos(math.radians(31.22)))
THE_BUND = {"lat": 31.2397, "lon": 121.4998}  # Huangpu: outside every district served
BEIJING = timezone(timedelta(hours=8))


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


def spot(north: float = 0.0, east: float = 0.0) -> dict[str, float]:
    """WGS-84 lat/lon ``north`` and ``east`` metres from the base point."""
    return {"lat": BASE_LAT + north * M_LAT, "lon": BASE_LON + east * M_LON}


def report(
    category: str = "road_damage", north: float = 0.0, east: float = 0.0, **extra: Any
) -> dict[str, Any]:
    return {"category": category, **spot(north, east), **extra}


def post(
    client: TestClient, headers: Headers, body: dict[str, Any], key: str | None = None
) -> Response:
    if key is not None:
        headers = {**headers, "Idempotency-Key": key}
    return client.post("/v1/reports", headers=headers, json=body)


def submit(
    client: TestClient, headers: Headers, body: dict[str, Any], key: str | None = None
) -> dict[str, Any]:
    response = post(client, headers, body, key)
    assert response.status_code == 201, response.text
    assert "idempotent-replayed" not in response.headers
    received: dict[str, Any] = response.json()
    return received


def stored(count_rows: CountRows) -> dict[str, int]:
    return {table: count_rows(table) for table in STORED}


def set_status(database: Database, ticket_id: str, status: TicketStatus) -> None:
    """Triage is not built yet: move a ticket as an office would, straight in the table."""
    with database.transaction() as session:
        ticket = session.get(Ticket, uuid.UUID(ticket_id))
        assert ticket is not None
        ticket.status = status


def ticket_row(database: Database, ticket_id: str) -> Ticket:
    with database.session(write=False) as session:
        ticket = session.get(Ticket, uuid.UUID(ticket_id))
        assert ticket is not None
        return ticket


def event_types(database: Database, ticket_id: str) -> Counter[str]:
    with database.session(write=False) as session:
        return Counter(
            session.scalars(
                select(TicketEvent.type).where(TicketEvent.ticket_id == uuid.UUID(ticket_id))
            )
        )


def png(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, "PNG")
    return buffer.getvalue()


def upload(client: TestClient, headers: Headers, data: bytes) -> str:
    response = client.post(
        "/v1/media", headers=headers, files={"file": ("photo.png", data, "image/png")}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def assert_refused(
    count_rows: CountRows,
    response_of: Callable[[], Response],
    status: int,
    code: str,
    field: str | None,
) -> Response:
    """The request is refused with this problem and leaves no row behind."""
    before = stored(count_rows)
    response = response_of()
    problem = assert_problem(response, status, code)
    if field is not None:
        assert field in {e["field"] for e in problem["errors"]}, problem
    assert stored(count_rows) == before
    return response


# --- bad input -------------------------------------------------------------------------

RAW_BAD_JSON = {
    "nan_lat": ('{"category": "road_damage", "lat": NaN, "lon": 121.4284}', "lat"),
    "infinity_lat": ('{"category": "road_damage", "lat": Infinity, "lon": 121.4284}', "lat"),
    "minus_infinity_lon": ('{"category": "road_damage", "lat": 31.2218, "lon": -Infinity}', "lon"),
    "nan_accuracy": (
        '{"category": "road_damage", "lat": 31.2218, "lon": 121.4284, "accuracy_m": NaN}',
        "accuracy_m",
    ),
}


@pytest.mark.parametrize("case", RAW_BAD_JSON, ids=list(RAW_BAD_JSON))
def test_non_finite_numbers_in_raw_json_are_422(
    client: TestClient, r1: Headers, count_rows: CountRows, case: str
) -> None:
    # Python's JSON parser accepts NaN and ±Infinity; the API must not.
    content, field = RAW_BAD_JSON[case]
    assert_refused(
        count_rows,
        lambda: client.post(
            "/v1/reports",
            content=content,
            headers={**r1, "Content-Type": "application/json", "Idempotency-Key": case},
        ),
        422,
        "validation_error",
        field,
    )


BAD_BODIES: dict[str, tuple[dict[str, Any], str, str | None]] = {
    "lat_91": (report() | {"lat": 91}, "validation_error", "lat"),
    "lat_minus_91": (report() | {"lat": -90.0001}, "validation_error", "lat"),
    "lon_minus_181": (report() | {"lon": -181}, "validation_error", "lon"),
    "lon_181": (report() | {"lon": 180.5}, "validation_error", "lon"),
    "lat_a_string": (report() | {"lat": "north"}, "validation_error", "lat"),
    "category_a_number": (report() | {"category": 5}, "validation_error", "category"),
    "no_category": (
        {k: v for k, v in report().items() if k != "category"},
        "validation_error",
        "category",
    ),
    "no_lat": ({k: v for k, v in report().items() if k != "lat"}, "validation_error", "lat"),
    "unknown_coord_sys": (report(coord_sys="utm"), "validation_error", "coord_sys"),
    "negative_accuracy": (report(accuracy_m=-1), "validation_error", "accuracy_m"),
    "unknown_category": (report("potholes_on_mars"), "unknown_category", "category"),
    "naive_observed_at": (
        report(observed_at="2026-11-29T08:15:00"),
        "validation_error",
        "observed_at",
    ),
    "ten_media": (
        report(media_ids=[str(uuid.uuid4()) for _ in range(10)]),
        "validation_error",
        "media_ids",
    ),
    "media_not_a_uuid": (report(media_ids=["photo.jpg"]), "validation_error", "media_ids.0"),
    "media_never_uploaded": (report(media_ids=[str(uuid.uuid4())]), "unknown_media", "media_ids"),
    "description_2001": (report(description="路" * 2001), "validation_error", "description"),
    "address_hint_201": (report(address_hint="x" * 201), "validation_error", "address_hint"),
    "outside_service_area": (report() | THE_BUND, "outside_service_area", None),
    # PostgreSQL cannot store a NUL: refused up front, on both databases alike.
    "nul_in_description": (report(description="坑\u0000"), "validation_error", "description"),
    "nul_in_address_hint": (report(address_hint="\u0000"), "validation_error", "address_hint"),
    "nul_in_category": (report("road\u0000damage"), "validation_error", "category"),
    "bell_in_description": (report(description="\u0007"), "validation_error", "description"),
}


@pytest.mark.parametrize("case", BAD_BODIES, ids=list(BAD_BODIES))
def test_a_bad_report_is_refused_and_leaves_nothing(
    client: TestClient, r1: Headers, count_rows: CountRows, case: str
) -> None:
    body, code, field = BAD_BODIES[case]
    assert_refused(count_rows, lambda: post(client, r1, body, key=f"bad-{case}"), 422, code, field)


def test_a_refused_attempt_does_not_use_up_its_idempotency_key(
    client: TestClient, r1: Headers, count_rows: CountRows
) -> None:
    assert_refused(
        count_rows,
        lambda: post(client, r1, report("no_such"), key="k1"),
        422,
        "unknown_category",
        "category",
    )
    # The app fixes the body and retries with the same key: a new report, not a 422 reused.
    submit(client, r1, report(), key="k1")
    assert count_rows("reports") == 1


@pytest.mark.parametrize("key", ["k" * 256, ""], ids=["256_chars", "empty"])
def test_a_bad_idempotency_key_is_422(
    client: TestClient, r1: Headers, count_rows: CountRows, key: str
) -> None:
    assert_refused(
        count_rows,
        lambda: post(client, r1, report(), key=key),
        422,
        "invalid_idempotency_key",
        "Idempotency-Key",
    )


def test_a_255_char_idempotency_key_is_fine(client: TestClient, r1: Headers) -> None:
    submit(client, r1, report(), key="k" * 255)


def test_an_inactive_category_is_refused(
    client: TestClient, auth: Auth, r1: Headers, count_rows: CountRows
) -> None:
    admin = auth.staff("admin")
    current = client.get("/v1/admin/categories/waste", headers=admin).json()
    response = client.put(
        "/v1/admin/categories/waste", headers=admin, json=current | {"active": False}
    )
    assert response.status_code == 200, response.text
    assert_refused(
        count_rows,
        lambda: post(client, r1, report("waste"), key="w"),
        422,
        "unknown_category",
        "category",
    )
    # Another category is still open for reports.
    submit(client, r1, report("road_damage"))


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (timedelta(minutes=10), False),
        (timedelta(minutes=4), True),
        (-timedelta(days=8), False),
        (-timedelta(days=6, hours=23), True),
    ],
    ids=["10_min_ahead", "4_min_ahead", "8_days_old", "6_days_23_h_old"],
)
def test_observed_at_is_at_most_5_minutes_ahead_and_7_days_back(
    client: TestClient,
    clock: Clock,
    r1: Headers,
    count_rows: CountRows,
    offset: timedelta,
    accepted: bool,
) -> None:
    # Sent in Beijing time, as a phone in Shanghai would.
    observed = (clock.now + offset).astimezone(BEIJING)
    body = report(observed_at=observed.isoformat())
    if accepted:
        receipt = submit(client, r1, body)
        assert datetime.fromisoformat(receipt["observed_at"]) == clock.now + offset
        assert receipt["observed_at"].endswith("Z")
    else:
        assert_refused(
            count_rows,
            lambda: post(client, r1, body),
            422,
            "observed_at_out_of_range",
            "observed_at",
        )


def test_observed_at_defaults_to_the_time_received(
    client: TestClient, clock: Clock, r1: Headers
) -> None:
    receipt = submit(client, r1, report())
    assert receipt["observed_at"] == receipt["received_at"]
    assert datetime.fromisoformat(receipt["received_at"]) == clock.now


def test_media_of_another_rider_is_refused(
    client: TestClient, r1: Headers, r2: Headers, count_rows: CountRows
) -> None:
    theirs = upload(client, r2, png())
    mine = upload(client, r1, png((0, 90, 200)))
    problem = assert_refused(
        count_rows,
        lambda: post(client, r1, report(media_ids=[mine, theirs]), key="m"),
        422,
        "unknown_media",
        "media_ids",
    )
    detail = problem.json()["detail"]
    assert theirs in detail and mine not in detail
    # The rider's own photo is accepted, linked in order, and shown back to them only.
    receipt = submit(client, r1, report(media_ids=[mine]), key="m2")
    assert count_rows("report_media") == 1
    detail = client.get(f"/v1/reports/{receipt['id']}", headers=r1).json()
    assert detail["media_ids"] == [mine]


def test_nine_media_are_accepted(client: TestClient, r1: Headers, count_rows: CountRows) -> None:
    photos = [upload(client, r1, png((i * 25, 10, 10))) for i in range(9)]
    receipt = submit(client, r1, report(media_ids=photos))
    assert count_rows("report_media") == 9
    assert client.get(f"/v1/reports/{receipt['id']}", headers=r1).json()["media_ids"] == photos


def test_only_riders_may_report(client: TestClient, auth: Auth, count_rows: CountRows) -> None:
    assert_refused(
        count_rows, lambda: client.post("/v1/reports", json=report()), 401, "unauthenticated", None
    )
    assert_refused(
        count_rows,
        lambda: client.post("/v1/reports", json=report(), headers=auth.platform("meituan")),
        403,
        "forbidden",
        None,
    )


# --- rate limit ------------------------------------------------------------------------


def test_the_rate_limit_refuses_with_retry_after_and_lifts_after_the_hour(
    client: TestClient,
    settings: Settings,
    clock: Clock,
    r1: Headers,
    r2: Headers,
    count_rows: CountRows,
) -> None:
    settings.rider_reports_per_hour = 3
    first = submit(client, r1, report("other", north=0), key="a")
    # A replay is not a new report: it does not count.
    for _ in range(2):
        again = post(client, r1, report("other", north=0), key="a")
        assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
        assert again.json() == first
    clock.advance(minutes=10)
    submit(client, r1, report("other", north=50), key="b")
    submit(client, r1, report("other", north=100))

    response = assert_refused(
        count_rows,
        lambda: post(client, r1, report("other", north=150), key="d"),
        429,
        "rate_limited",
        None,
    )
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit()
    # The oldest report of the hour leaves the window 50 minutes from now.
    assert 0 < int(retry_after) <= 3600 and int(retry_after) == 50 * 60
    # Still replayable at the limit; another rider is not limited.
    assert post(client, r1, report("other", north=0), key="a").status_code == 201
    submit(client, r2, report("other", north=150))

    clock.advance(minutes=51)  # 61 minutes after the first
    receipt = submit(client, r1, report("other", north=150), key="d")
    assert receipt["outcome"] == "new_ticket"
    assert count_rows("reports") == 5


# --- merging ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("category", "inside", "outside"),
    [("road_damage", 27, 33), ("ebike_parking", 17, 23), ("waste", 37, 43)],
)
def test_same_category_inside_the_radius_joins_and_outside_opens(
    client: TestClient,
    database: Database,
    r1: Headers,
    r2: Headers,
    category: str,
    inside: float,
    outside: float,
) -> None:
    first = submit(client, r1, report(category))
    assert first["outcome"] == "new_ticket"
    assert first["ticket"]["status"] == "new" and first["ticket"]["report_count"] == 1

    joined = submit(client, r2, report(category, north=inside))
    assert joined["outcome"] == "joined_ticket"
    assert joined["ticket"]["id"] == first["ticket"]["id"]
    assert joined["ticket"]["ref"] == first["ticket"]["ref"]
    assert joined["ticket"]["report_count"] == 2
    assert event_types(database, first["ticket"]["id"]) == {"created": 1, "report_joined": 1}

    apart = submit(client, r2, report(category, east=-outside))
    assert apart["outcome"] == "new_ticket"
    assert apart["ticket"]["id"] != first["ticket"]["id"]
    assert ticket_row(database, first["ticket"]["id"]).report_count == 2
    # The first rider sees the ticket grow.
    mine = client.get(f"/v1/reports/{first['id']}", headers=r1).json()
    assert mine["ticket"]["report_count"] == 2 and mine["outcome"] == "new_ticket"


def test_another_category_at_the_same_spot_opens_its_own_ticket(
    client: TestClient, r1: Headers, r2: Headers, count_rows: CountRows
) -> None:
    road = submit(client, r1, report("road_damage"))
    waste = submit(client, r2, report("waste"))
    assert waste["outcome"] == "new_ticket" and waste["ticket"]["id"] != road["ticket"]["id"]
    assert count_rows("tickets") == 2


def test_other_never_merges(
    client: TestClient, r1: Headers, r2: Headers, count_rows: CountRows
) -> None:
    a = submit(client, r1, report("other"))
    b = submit(client, r2, report("other"))
    assert a["outcome"] == b["outcome"] == "new_ticket"
    assert a["ticket"]["id"] != b["ticket"]["id"]
    assert count_rows("tickets") == 2


@pytest.mark.parametrize(
    ("status", "joins"),
    [
        (TicketStatus.ACCEPTED, True),
        (TicketStatus.IN_PROGRESS, True),
        (TicketStatus.RESOLVED, False),
        (TicketStatus.CLOSED, False),
        (TicketStatus.REJECTED, False),
        (TicketStatus.DUPLICATE, False),
    ],
)
def test_only_open_tickets_are_joined(
    client: TestClient,
    database: Database,
    r1: Headers,
    r2: Headers,
    status: TicketStatus,
    joins: bool,
) -> None:
    first = submit(client, r1, report())
    set_status(database, first["ticket"]["id"], status)
    second = submit(client, r2, report(north=5))
    if joins:
        assert second["outcome"] == "joined_ticket"
        assert second["ticket"] == first["ticket"] | {"status": status.value, "report_count": 2}
    else:
        assert second["outcome"] == "new_ticket"
        assert second["ticket"]["id"] != first["ticket"]["id"]
        assert second["ticket"]["status"] == "new"
        assert ticket_row(database, first["ticket"]["id"]).report_count == 1


def test_the_dedup_window_is_respected(
    client: TestClient, clock: Clock, r1: Headers, r2: Headers
) -> None:
    first = submit(client, r1, report())
    clock.advance(hours=71)
    assert submit(client, r2, report(north=3))["ticket"]["id"] == first["ticket"]["id"]
    clock.advance(hours=2)  # 73 h after the ticket was opened
    late = submit(client, r2, report(north=3))
    assert late["outcome"] == "new_ticket" and late["ticket"]["id"] != first["ticket"]["id"]


def test_the_nearest_of_two_candidates_is_joined(
    client: TestClient, r1: Headers, r2: Headers
) -> None:
    west = submit(client, r1, report(east=0))
    east = submit(client, r1, report(east=50))
    assert east["outcome"] == "new_ticket"
    # Both within 30 m of each of these points; each joins the nearer one.
    near_east = submit(client, r2, report(east=28))
    near_west = submit(client, r2, report(east=22))
    assert near_east["ticket"]["id"] == east["ticket"]["id"]
    assert near_west["ticket"]["id"] == west["ticket"]["id"]


@pytest.mark.parametrize(
    ("category", "respond_h", "resolve_h"),
    [
        ("road_damage", 24, 120),
        ("ebike_parking", 4, 24),
        ("fire_exit_blocked", 2, 12),
        ("other", 24, 168),
    ],
)
def test_a_new_ticket_is_due_by_the_category_hours(
    client: TestClient,
    database: Database,
    clock: Clock,
    r1: Headers,
    r2: Headers,
    category: str,
    respond_h: int,
    resolve_h: int,
) -> None:
    opened_at = clock.now
    receipt = submit(client, r1, report(category))
    ticket = ticket_row(database, receipt["ticket"]["id"])
    assert ticket.created_at == opened_at
    assert ticket.respond_by == opened_at + timedelta(hours=respond_h)
    assert ticket.resolve_by == opened_at + timedelta(hours=resolve_h)
    if category != "other":  # a confirmation does not move the due times
        clock.advance(hours=1)
        assert submit(client, r2, report(category))["outcome"] == "joined_ticket"
        again = ticket_row(database, receipt["ticket"]["id"])
        assert (again.respond_by, again.resolve_by) == (ticket.respond_by, ticket.resolve_by)


def test_the_ticket_is_routed_to_the_street_of_the_point(
    client: TestClient, r1: Headers, database: Database
) -> None:
    here = submit(client, r1, report())
    assert here["area"]["district"] == {"code": "310105", "name": "长宁区"}
    assert here["area"]["street"] == {"code": "310105002", "name": "江苏路街道"}
    assert here["area"]["community"]["code"].startswith("310105002")
    lon, lat = to_wgs84(121.4245, 31.2220, CoordSys.GCJ02)
    there = submit(
        client,
        r1,
        {"category": "road_damage", "lat": 31.2220, "lon": 121.4245, "coord_sys": "gcj02"},
    )
    assert there["area"]["street"]["code"] == "310105001"
    assert (there["lat"], there["lon"]) == pytest.approx((lat, lon), abs=1e-9)


# --- coordinates -----------------------------------------------------------------------


def test_the_transforms_used_here_match_published_vectors() -> None:
    # So that the tests below do not just check the code against itself.
    vectors = json.loads((DATA / "coords_test_vectors.json").read_text())
    shanghai = next(v for v in vectors["wgs_to_gcj"] if v["name"] == "shanghai")
    (w_lat, w_lon), (g_lat, g_lon) = shanghai["wgs"], shanghai["gcj"]
    assert from_wgs84(w_lon, w_lat, CoordSys.GCJ02) == pytest.approx((g_lon, g_lat), abs=1e-9)
    g = vectors["coordTransform_py_readme_lnglat_input"]
    b = vectors["coordTransform_py_readme_outputs_lnglat"]["gcj02_to_bd09"]
    w = to_wgs84(*g, CoordSys.GCJ02)
    assert from_wgs84(*w, CoordSys.BD09) == pytest.approx(b, abs=1e-9)


@pytest.mark.parametrize("coord_sys", [CoordSys.GCJ02, CoordSys.BD09, CoordSys.WGS84])
def test_input_in_any_coord_sys_lands_on_the_same_wgs84_point(
    client: TestClient, r1: Headers, coord_sys: CoordSys
) -> None:
    lon, lat = from_wgs84(BASE_LON, BASE_LAT, coord_sys)
    if coord_sys is not CoordSys.WGS84:  # the offset is hundreds of metres in Shanghai
        assert abs(lon - BASE_LON) > 0.003
    receipt = submit(
        client,
        r1,
        {"category": "road_damage", "lat": lat, "lon": lon, "coord_sys": coord_sys.value},
    )
    assert abs(receipt["lat"] - BASE_LAT) < 1e-6 and abs(receipt["lon"] - BASE_LON) < 1e-6
    detail = client.get(f"/v1/reports/{receipt['id']}", headers=r1).json()
    assert abs(detail["lat"] - BASE_LAT) < 1e-6 and abs(detail["lon"] - BASE_LON) < 1e-6
    assert detail["area"] == receipt["area"]


def test_the_same_point_in_gcj02_and_bd09_joins_one_ticket(
    client: TestClient, r1: Headers, r2: Headers
) -> None:
    g_lon, g_lat = from_wgs84(BASE_LON, BASE_LAT, CoordSys.GCJ02)
    b_lon, b_lat = from_wgs84(BASE_LON, BASE_LAT, CoordSys.BD09)
    a = submit(
        client, r1, {"category": "ebike_parking", "lat": g_lat, "lon": g_lon, "coord_sys": "gcj02"}
    )
    b = submit(
        client, r2, {"category": "ebike_parking", "lat": b_lat, "lon": b_lon, "coord_sys": "bd09"}
    )
    assert b["outcome"] == "joined_ticket" and b["ticket"]["id"] == a["ticket"]["id"]


def test_nearby_answers_in_the_coord_sys_it_was_asked_in(
    client: TestClient, r1: Headers, r2: Headers
) -> None:
    receipt = submit(client, r1, report())
    g_lon, g_lat = from_wgs84(BASE_LON, BASE_LAT, CoordSys.GCJ02)
    response = client.get(
        "/v1/tickets/nearby",
        headers=r2,
        params={"lat": g_lat, "lon": g_lon, "coord_sys": "gcj02", "radius_m": 50},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["coord_sys"] == "gcj02"
    [item] = body["items"]
    assert item["id"] == receipt["ticket"]["id"]
    assert abs(item["lat"] - g_lat) < 1e-6 and abs(item["lon"] - g_lon) < 1e-6
    assert item["distance_m"] < 0.5
    # The same GCJ-02 numbers taken for WGS-84 are some 500 m away: nothing there.
    wrong = client.get(
        "/v1/tickets/nearby", headers=r2, params={"lat": g_lat, "lon": g_lon, "radius_m": 50}
    ).json()
    assert wrong == {"items": [], "next_cursor": None, "coord_sys": "wgs84"}


# --- idempotency -----------------------------------------------------------------------


def test_a_replay_gets_the_first_response_and_stores_nothing(
    client: TestClient, r1: Headers, count_rows: CountRows
) -> None:
    first = post(client, r1, report(description="pothole"), key="offline-1")
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    before = stored(count_rows)
    again = post(client, r1, report(description="pothole"), key="offline-1")
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert stored(count_rows) == before
    assert before["reports"] == 1 and before["idempotency_records"] == 1


def test_the_same_key_with_another_body_is_422_reused(
    client: TestClient, r1: Headers, count_rows: CountRows
) -> None:
    first = submit(client, r1, report(), key="k")
    assert_refused(
        count_rows,
        lambda: post(client, r1, report(north=5), key="k"),
        422,
        "idempotency_key_reused",
        None,
    )
    assert_refused(
        count_rows,
        lambda: post(client, r1, report(description="changed"), key="k"),
        422,
        "idempotency_key_reused",
        None,
    )
    # The original body still replays.
    assert post(client, r1, report(), key="k").json() == first


def test_keys_are_scoped_per_rider(
    client: TestClient, r1: Headers, r2: Headers, count_rows: CountRows
) -> None:
    mine = submit(client, r1, report(), key="shared-key")
    theirs = post(client, r2, report(), key="shared-key")
    assert theirs.status_code == 201 and "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine["id"]
    assert theirs.json()["outcome"] == "joined_ticket"
    assert count_rows("reports") == 2 and count_rows("idempotency_records") == 2


def test_keys_are_kept_24_h_and_purged_by_the_worker(
    client: TestClient,
    database: Database,
    settings: Settings,
    clock: Clock,
    r1: Headers,
    count_rows: CountRows,
) -> None:
    purge = next(job for job in JOBS if job.name == "purge_idempotency_records")
    first = submit(client, r1, report("other"), key="kept")

    clock.advance(hours=25)
    assert purge.run(database, settings, clock.now) == 0
    assert count_rows("idempotency_records") == 1
    replay = post(client, r1, report("other"), key="kept")
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == first

    clock.advance(hours=24)  # 49 h
    assert purge.run(database, settings, clock.now) == 1
    assert count_rows("idempotency_records") == 0
    # Forgotten: the same key is a new report now.
    fresh = submit(client, r1, report("other"), key="kept")
    assert fresh["id"] != first["id"]
    assert count_rows("reports") == 2


# --- batch -----------------------------------------------------------------------------


def batch(client: TestClient, headers: Headers, items: list[dict[str, Any]]) -> Response:
    return client.post("/v1/reports/batch", headers=headers, json={"reports": items})


def test_a_batch_mixes_good_and_bad_items_in_order(
    client: TestClient, r1: Headers, count_rows: CountRows
) -> None:
    earlier = submit(client, r1, report("waste", east=200), key="sent-online")
    before = stored(count_rows)
    items = [
        {"idempotency_key": "q1"} | report(),
        {"idempotency_key": "q2"} | report() | {"lat": "north", "media_ids": "none"},
        {"idempotency_key": "q3"} | report("no_such_category"),
        {"idempotency_key": "q4"} | report() | THE_BUND,
        {"idempotency_key": "sent-online"} | report("waste", east=200),
        {"idempotency_key": "q6"} | report(north=10),
        {"idempotency_key": "q7", "category": "road_damage", "lat": math.inf, "lon": 121.43},
        {"idempotency_key": "k" * 256} | report(north=20),
        {"idempotency_key": "sent-online"} | report("waste", east=230),
    ]
    # (math.inf goes out as the raw JSON token Infinity.)
    response = client.post(
        "/v1/reports/batch",
        headers={**r1, "Content-Type": "application/json"},
        content=json.dumps({"reports": items}),
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["idempotency_key"] for r in results] == [i["idempotency_key"] for i in items]
    assert [r["status"] for r in results] == [201, 422, 422, 422, 201, 201, 422, 422, 422]
    assert [(r["problem"] or {}).get("code") for r in results] == [
        None,
        "validation_error",
        "unknown_category",
        "outside_service_area",
        None,
        None,
        "validation_error",
        "invalid_idempotency_key",
        "idempotency_key_reused",
    ]
    assert {e["field"] for e in results[1]["problem"]["errors"]} == {"lat", "media_ids"}
    assert [r["replayed"] for r in results] == [False] * 4 + [True] + [False] * 4
    for r in results:
        assert (r["report"] is None) == (r["status"] != 201)
        if r["problem"] is not None:
            assert r["problem"]["status"] == r["status"] and r["problem"]["detail"]

    assert results[4]["report"] == earlier
    opened, joined = results[0]["report"], results[5]["report"]
    assert opened["outcome"] == "new_ticket"
    assert joined["outcome"] == "joined_ticket"
    assert joined["ticket"]["id"] == opened["ticket"]["id"]
    assert joined["ticket"]["report_count"] == 2
    after = stored(count_rows)
    assert {t: after[t] - before[t] for t in STORED} == {
        "reports": 2,
        "tickets": 1,
        "ticket_events": 2,
        "report_media": 0,
        "idempotency_records": 2,
    }

    # Flushing the same queue again (the app never saw the answer) changes nothing.
    again = client.post(
        "/v1/reports/batch",
        headers={**r1, "Content-Type": "application/json"},
        content=json.dumps({"reports": [items[0], items[5]]}),
    ).json()["results"]
    assert [(r["status"], r["replayed"]) for r in again] == [(201, True), (201, True)]
    assert [r["report"] for r in again] == [opened, joined]
    assert stored(count_rows) == after


def test_batch_items_open_and_join_in_order(
    client: TestClient, r1: Headers, count_rows: CountRows
) -> None:
    items = [{"idempotency_key": f"i{n}"} | report("ebike_parking", north=n) for n in range(3)]
    results = batch(client, r1, items).json()["results"]
    assert [r["report"]["outcome"] for r in results] == [
        "new_ticket",
        "joined_ticket",
        "joined_ticket",
    ]
    assert [r["report"]["ticket"]["report_count"] for r in results] == [1, 2, 3]
    assert len({r["report"]["ticket"]["id"] for r in results}) == 1
    assert count_rows("tickets") == 1 and count_rows("reports") == 3


def test_batch_items_without_a_key_are_not_remembered(
    client: TestClient, r1: Headers, count_rows: CountRows
) -> None:
    results = batch(client, r1, [report("other"), report("other")]).json()["results"]
    assert [(r["status"], r["idempotency_key"]) for r in results] == [(201, None), (201, None)]
    assert count_rows("reports") == 2 and count_rows("idempotency_records") == 0


def test_after_the_limit_is_lowered_retry_after_waits_for_enough_reports_to_age(
    client: TestClient, settings: Settings, clock: Clock, r1: Headers, count_rows: CountRows
) -> None:
    settings.rider_reports_per_hour = 3
    for minutes, north in ((0, 0), (10, 50), (10, 100)):
        clock.advance(minutes=minutes)
        submit(client, r1, report("other", north=north))
    clock.advance(minutes=10)  # reports at 0, 10 and 20 minutes; now 30
    settings.rider_reports_per_hour = 2
    response = assert_refused(
        count_rows, lambda: post(client, r1, report("other", north=150)), 429, "rate_limited", None
    )
    # Two of the three must age out: the second leaves the window at minute 70.
    assert int(response.headers["retry-after"]) == 40 * 60


def test_a_batch_counts_against_the_rate_limit(
    client: TestClient, settings: Settings, r1: Headers, count_rows: CountRows
) -> None:
    settings.rider_reports_per_hour = 2
    results = batch(client, r1, [report("other", north=n * 50) for n in range(3)]).json()
    assert [r["status"] for r in results["results"]] == [201, 201, 429]
    assert results["results"][2]["problem"]["code"] == "rate_limited"
    assert count_rows("reports") == 2


@pytest.mark.parametrize(
    "body",
    [
        {"reports": [report("other", north=n) for n in range(51)]},
        {"reports": []},
        {"reports": [report(), "not an object"]},
        {"report": [report()]},
    ],
    ids=["51_items", "empty", "an_item_not_an_object", "no_reports_field"],
)
def test_an_unacceptable_batch_is_422_and_stores_nothing(
    client: TestClient, r1: Headers, count_rows: CountRows, body: dict[str, Any]
) -> None:
    assert_refused(
        count_rows,
        lambda: client.post("/v1/reports/batch", headers=r1, json=body),
        422,
        "validation_error",
        None,
    )


def test_a_batch_of_50_is_accepted(client: TestClient, r1: Headers, count_rows: CountRows) -> None:
    response = batch(client, r1, [report("other", north=n) for n in range(50)])
    assert response.status_code == 200
    assert [r["status"] for r in response.json()["results"]] == [201] * 50
    assert count_rows("reports") == 50


# --- reads -----------------------------------------------------------------------------


def pages(client: TestClient, headers: Headers, limit: int) -> Iterator[dict[str, Any]]:
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = client.get("/v1/reports", headers=headers, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        yield page
        if page["next_cursor"] is None:
            return
        params["cursor"] = page["next_cursor"]


@pytest.mark.parametrize("same_instant", [False, True], ids=["a_second_apart", "same_instant"])
def test_my_reports_newest_first_over_three_pages(
    client: TestClient, clock: Clock, r1: Headers, r2: Headers, same_instant: bool
) -> None:
    mine = []
    for n in range(5):
        if not same_instant:
            clock.advance(seconds=1)
        mine.append(submit(client, r1, report("other", north=n * 10))["id"])
        submit(client, r2, report("other", east=n * 10))
    got = list(pages(client, r1, limit=2))
    assert [len(p["items"]) for p in got] == [2, 2, 1]
    ids = [item["id"] for p in got for item in p["items"]]
    if same_instant:
        assert sorted(ids) == sorted(mine)
    else:
        assert ids == mine[::-1]
    times = [item["received_at"] for p in got for item in p["items"]]
    assert times == sorted(times, reverse=True)


def forged_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "!!",
        forged_cursor(["yesterday", str(uuid.uuid4())]),
        forged_cursor(["2026-11-29T08:00:00+00:00", 5]),
        forged_cursor(["2026-11-29T08:00:00+00:00"]),
        forged_cursor(["2026-11-29T08:00:00", str(uuid.uuid4())]),  # no offset
    ],
    ids=["not_base64", "not_a_time", "id_not_a_string", "too_short", "naive_time"],
)
def test_a_bad_cursor_is_422(client: TestClient, r1: Headers, cursor: str) -> None:
    submit(client, r1, report())
    problem = assert_problem(
        client.get("/v1/reports", headers=r1, params={"cursor": cursor}), 422, "validation_error"
    )
    assert problem["errors"] == [{"field": "cursor", "message": "invalid cursor"}]


def test_the_detail_shows_my_report_and_its_public_timeline(
    client: TestClient, clock: Clock, r1: Headers, r2: Headers
) -> None:
    receipt = submit(
        client,
        r1,
        report("waste", accuracy_m=8, description="建筑垃圾", address_hint="愚园路 1号 门口"),
    )
    clock.advance(minutes=5)
    submit(client, r2, report("waste", north=10))
    detail = client.get(f"/v1/reports/{receipt['id']}", headers=r1)
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["id"] == receipt["id"] and body["category"] == "waste"
    assert (body["accuracy_m"], body["description"], body["address_hint"]) == (
        8,
        "建筑垃圾",
        "愚园路 1号 门口",
    )
    assert body["ticket"]["id"] == receipt["ticket"]["id"]
    assert body["ticket"]["report_count"] == 2 and body["ticket"]["status"] == "new"
    # A confirmation is not a status change: the timeline shows only "new".
    assert body["ticket"]["timeline"] == [{"status": "new", "at": receipt["received_at"]}]
    assert "rider" not in json.dumps(body["ticket"])

    assert_problem(client.get(f"/v1/reports/{receipt['id']}", headers=r2), 404, "not_found")
    assert_problem(client.get(f"/v1/reports/{uuid.uuid4()}", headers=r1), 404, "not_found")


def test_me_counts_what_my_reports_came_to(
    client: TestClient, auth: Auth, r1: Headers, r2: Headers
) -> None:
    empty = client.get("/v1/me", headers=r1).json()
    assert empty["rider_id"] == "r1" and empty["platform"] == "meituan"
    assert uuid.UUID(empty["id"])
    opened = submit(client, r1, report("road_damage"))
    theirs = submit(client, r2, report("waste", east=100))
    submit(client, r1, report("waste", east=110))
    me = client.get("/v1/me", headers=r1).json()
    assert {k: me[k] for k in Contribution.COUNTERS} == {
        "reports": 2,
        "tickets_opened": 1,
        "joined": 1,
        "accepted": 0,
        "resolved": 0,
        "rejected": 0,
        "verifications": 0,
        "points": 0,
    }
    district = auth.staff("changning")
    for ticket, body in (
        (opened, {"action": "accept"}),
        (opened, {"action": "resolve", "note": "filled"}),
        (theirs, {"action": "reject", "reason": "not_actionable"}),
    ):
        assert (
            client.post(
                f"/v1/office/tickets/{ticket['ticket']['id']}/actions", headers=district, json=body
            ).status_code
            == 200
        )
    me = client.get("/v1/me", headers=r1).json()
    assert (me["accepted"], me["resolved"], me["rejected"]) == (1, 1, 1)
    assert me["points"] == 10 + 5  # opened road damage, accepted and resolved; waste: none
    assert client.get("/v1/me", headers=r2).json()["reports"] == 1


def test_nearby_lists_open_tickets_nearest_first(
    client: TestClient, database: Database, r1: Headers, r2: Headers
) -> None:
    t10 = submit(client, r1, report("road_damage", north=10))
    t50 = submit(client, r1, report("road_damage", north=50))
    t150 = submit(client, r1, report("road_damage", north=150))
    w30 = submit(client, r1, report("waste", east=30))
    closed = submit(client, r1, report("ebike_parking", east=-5))
    submit(client, r1, report("road_damage", north=-300))
    set_status(database, closed["ticket"]["id"], TicketStatus.CLOSED)

    def nearby(**params: Any) -> list[dict[str, Any]]:
        response = client.get("/v1/tickets/nearby", headers=r2, params=spot() | params)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    items = nearby()
    assert [i["id"] for i in items] == [t["ticket"]["id"] for t in (t10, w30, t50, t150)]
    assert [i["distance_m"] for i in items] == pytest.approx([10, 30, 50, 150], rel=0.02)
    assert items[1]["category"] == "waste" and items[0]["category"] == "road_damage"
    assert items[0]["ref"] == t10["ticket"]["ref"] and items[0]["status"] == "new"
    assert (items[0]["lat"], items[0]["lon"]) == pytest.approx((t10["lat"], t10["lon"]), abs=1e-9)
    assert [i["id"] for i in nearby(radius_m=60)] == [t["ticket"]["id"] for t in (t10, w30, t50)]
    assert [i["id"] for i in nearby(category="waste")] == [w30["ticket"]["id"]]
    assert [i["id"] for i in nearby(radius_m=1000, limit=2)] == [
        t10["ticket"]["id"],
        w30["ticket"]["id"],
    ]
    assert len(nearby(radius_m=1000)) == 5

    for bad in (
        {"radius_m": 1001},
        {"radius_m": 0},
        {"lat": 91},
        {"lat": "nan"},
        {"coord_sys": "utm"},
    ):
        problem = assert_problem(
            client.get("/v1/tickets/nearby", headers=r2, params=spot() | bad),
            422,
            "validation_error",
        )
        assert next(iter(bad)) in {e["field"] for e in problem["errors"]}


def test_nearby_refuses_an_unknown_category(client: TestClient, r1: Headers) -> None:
    params = {"lat": 31.2200, "lon": 121.4330, "coord_sys": "gcj02"}
    assert_problem(
        client.get(
            "/v1/tickets/nearby", headers=r1, params=params | {"category": "potholes_on_mars"}
        ),
        422,
        "unknown_category",
    )
    assert_problem(
        client.get(
            "/v1/tickets/nearby", headers=r1, params=params | {"category": "road\u0000damage"}
        ),
        422,
        "validation_error",
    )
    listed = client.get("/v1/tickets/nearby", headers=r1, params=params).json()
    assert listed["next_cursor"] is None


def test_a_rate_limited_batch_item_says_when_to_retry(
    client: TestClient, settings: Settings, r1: Headers
) -> None:
    settings.rider_reports_per_hour = 1
    response = client.post(
        "/v1/reports/batch",
        headers=r1,
        json={
            "reports": [
                report() | {"idempotency_key": "b-1"},
                report("waste") | {"idempotency_key": "b-2"},
            ]
        },
    )
    first, second = response.json()["results"]
    assert first["status"] == 201
    assert second["status"] == 429 and second["problem"]["code"] == "rate_limited"
    assert 0 < second["problem"]["retry_after"] <= 3600


def test_the_same_instant_in_another_offset_is_the_same_body(
    client: TestClient, r1: Headers
) -> None:
    first = post(client, r1, report(observed_at="2026-11-29T08:15:00+08:00"), key="tz")
    again = post(client, r1, report(observed_at="2026-11-29T00:15:00Z"), key="tz")
    assert first.status_code == 201
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
