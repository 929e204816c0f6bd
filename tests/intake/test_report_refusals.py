"""What a report may not be: every bad input refused with its code, leaving nothing
behind."""

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Auth, Clock, Headers
from tests.reporting import (
    BEIJING,
    THE_BUND,
    CountRows,
    assert_refused,
    png,
    post,
    report,
    submit,
    upload,
)

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
