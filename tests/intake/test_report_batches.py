"""The batch for offline queues: each item as a single POST, in order."""

import json
import math
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Headers
from tests.reporting import (
    STORED,
    THE_BUND,
    CountRows,
    assert_refused,
    batch,
    report,
    stored,
    submit,
)


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
