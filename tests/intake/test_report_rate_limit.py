"""The rider's hourly limit: refused with Retry-After, lifted as reports age."""

from fastapi.testclient import TestClient

from app.config import Settings
from tests.conftest import Clock, Headers
from tests.reporting import CountRows, assert_refused, batch, post, report, submit


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
