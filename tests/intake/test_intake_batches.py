"""Reports stored many at a time get the answers they would get one at a time.

The writer stores every report queued while it was busy in one batch, and on PostgreSQL
runs each statement once for all of the batch's rows. These tests queue many reports at
once, so that they share a batch, and check what each rider and each spot gets: the
rate limit per rider, merging per spot and category, keys per rider, photos per rider.
"""

import asyncio
import hashlib
import math
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from app.config import Settings
from app.db import Database
from app.errors import AppError
from app.geo.coords import CoordSys, to_wgs84
from app.intake import IntakeWriter, Received, ReportInput
from app.models import Media, Platform, Report, Rider, RiderTotals, Ticket
from app.riders.stats import totals
from app.schemas.reports import ReportReceipt, receipt_json
from app.tickets import reference

CountRows = Callable[[str], int]
LON, LAT = to_wgs84(121.4330, 31.2200, CoordSys.GCJ02)  # the demo's landmark in 江苏路街道
M_LAT = 1 / 111_320
M_LON = 1 / (111_320 * math.cos(math.radians(LAT)))


def at(
    north: float = 0,
    west: float = 0,
    category: str = "road_damage",
    media: tuple[uuid.UUID, ...] = (),
) -> ReportInput:
    return ReportInput(
        category=category,
        lat=LAT + north * M_LAT,
        lon=LON - west * M_LON,
        coord_sys=CoordSys.WGS84,
        accuracy_m=None,
        description=None,
        address_hint=None,
        observed_at=None,
        media_ids=media,
    )


@pytest.fixture
def riders(database: Database, baseline: object) -> Callable[[int], list[uuid.UUID]]:
    def make(count: int) -> list[uuid.UUID]:
        with database.transaction() as session:
            platform_id = session.scalar(select(Platform.id).where(Platform.code == "meituan"))
            now = datetime.now(UTC)
            ids = [uuid.uuid4() for _ in range(count)]
            session.execute(
                insert(Rider),
                [
                    {
                        "id": i,
                        "platform_id": platform_id,
                        "external_id": f"batch-{i}",
                        "pseudonym": f"R-{n:04d}",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n, i in enumerate(ids)
                ],
            )
            session.execute(
                insert(RiderTotals), [{"rider_id": i, "platform_id": platform_id} for i in ids]
            )
        return ids

    return make


Queued = tuple[uuid.UUID, ReportInput, str | None]


@pytest.fixture
def store(database: Database, settings: Settings) -> Iterator[Callable[..., list[Any]]]:
    """Queue reports all at once (so that they share batches) and wait for the answers:
    a Received, or the AppError a request would get."""
    loop = asyncio.new_event_loop()
    writer = IntakeWriter(database, settings, render_receipt=receipt_json)

    def run(queued: list[Queued], *, one_request: bool = False) -> list[Any]:
        """``one_request``: all of them from one rider in one request (an offline queue
        flushed), else each in a request of its own."""

        def fingerprint(key: str | None, data: ReportInput) -> str:
            return hashlib.sha256(f"{key}|{data}".encode()).hexdigest()

        async def all_at_once() -> list[Any]:
            if one_request:
                answers = writer.submit_all(
                    rider_id=queued[0][0],
                    reports=[
                        (data, key, fingerprint(key, data), datetime.now(UTC))
                        for _, data, key in queued
                    ],
                )
            else:
                answers = [
                    answer
                    for rider_id, data, key in queued
                    for answer in writer.submit_all(
                        rider_id=rider_id,
                        reports=[(data, key, fingerprint(key, data), datetime.now(UTC))],
                    )
                ]
            return list(await asyncio.gather(*answers, return_exceptions=True))

        return loop.run_until_complete(all_at_once())

    yield run
    loop.run_until_complete(writer.stop())
    loop.close()


def receipts(answers: list[Any]) -> list[dict[str, Any]]:
    assert all(isinstance(a, Received) and a.status == 201 for a in answers), [
        a for a in answers if not isinstance(a, Received)
    ]
    return [a.body for a in answers]


def test_the_rate_limit_counts_each_riders_own_reports(
    store: Callable[..., list[Any]], riders: Callable[[int], list[uuid.UUID]], settings: Settings
) -> None:
    settings.rider_reports_per_hour = 3
    ids = riders(12)
    # Rider n has n % 4 reports of the hour already.
    receipts(
        store(
            [
                (rider, at(north=40 * k, west=60 * n, category="other"), None)
                for n, rider in enumerate(ids)
                for k in range(n % 4)
            ]
        )
    )
    # Then every rider sends two more, all in one go.
    answers = store(
        [
            (rider, at(north=-200 - 40 * k, west=60 * n, category="other"), None)
            for n, rider in enumerate(ids)
            for k in range(2)
        ]
    )
    for n in range(len(ids)):
        allowed = max(0, min(2, 3 - n % 4))
        mine = answers[2 * n : 2 * n + 2]
        assert [isinstance(a, Received) for a in mine] == [True] * allowed + [False] * (
            2 - allowed
        ), (n, mine)
        for refused in mine[allowed:]:
            assert isinstance(refused, AppError) and refused.status == 429
            assert int(refused.headers["Retry-After"]) > 0


def test_a_batch_merges_by_spot_and_category(
    store: Callable[..., list[Any]], riders: Callable[[int], list[uuid.UUID]], database: Database
) -> None:
    ids = riders(10)
    spots = [(0, 0), (0, 200), (200, 0)]
    queued = [(ids[n], at(*spots[n % 3], category="waste"), f"k{n}") for n in range(9)]
    queued.append((ids[9], at(0, 0, category="road_damage"), "k9"))
    answers = receipts(store(queued))
    tickets = [a["ticket"]["id"] for a in answers]
    # One ticket per spot for waste, in queue order: the first at each opens it.
    for spot in range(3):
        at_spot = [answers[n] for n in range(spot, 9, 3)]
        assert len({a["ticket"]["id"] for a in at_spot}) == 1
        assert [a["outcome"] for a in at_spot] == ["new_ticket", "joined_ticket", "joined_ticket"]
        assert [a["ticket"]["report_count"] for a in at_spot] == [1, 2, 3]
    assert len(set(tickets)) == 4  # and road damage at the first spot has its own
    with database.session(write=False) as session:
        counts = {
            row.id: row.report_count
            for row in session.execute(select(Ticket.id, Ticket.report_count))
        }
    assert Counter(counts.values()) == {3: 3, 1: 1}


def test_keys_are_per_rider_and_twice_in_a_batch_is_a_retry(
    store: Callable[..., list[Any]], riders: Callable[[int], list[uuid.UUID]], count_rows: CountRows
) -> None:
    first, second = riders(2)
    kept = receipts(store([(first, at(0, 0, "other"), "same-key")]))[0]
    answers = store(
        [
            (first, at(0, 0, "other"), "same-key"),  # a retry: the stored answer
            (second, at(0, 50, "other"), "same-key"),
        ]
    )  # another rider's key
    assert [a.replayed for a in answers] == [True, False]
    assert answers[0].body == kept and answers[1].body["id"] != kept["id"]
    # The same key twice in one rider's flushed queue: the second is the first's retry;
    # with another body, it is refused.
    queue = store(
        [
            (first, at(0, 100, "other"), "queued"),
            (first, at(0, 100, "other"), "queued"),
            (first, at(0, 150, "other"), "queued"),
        ],
        one_request=True,
    )
    assert queue[1].replayed and queue[1].body == queue[0].body
    assert isinstance(queue[2], AppError) and queue[2].code == "idempotency_key_reused"
    # Two requests with one key at once: the second is refused while the first is stored.
    racing = store(
        [(second, at(0, 200, "other"), "racing"), (second, at(0, 200, "other"), "racing")]
    )
    assert isinstance(racing[0], Received)
    assert isinstance(racing[1], AppError) and racing[1].code == "idempotency_key_in_flight"
    assert count_rows("reports") == 4 and count_rows("idempotency_records") == 4


def test_photos_are_checked_for_each_reports_own_rider(
    store: Callable[..., list[Any]], riders: Callable[[int], list[uuid.UUID]], database: Database
) -> None:
    owner, other = riders(2)
    photo = uuid.uuid4()
    with database.transaction() as session:
        session.execute(
            insert(Media),
            [
                {
                    "id": photo,
                    "rider_id": owner,
                    "upload_sha256": "u" * 64,
                    "sha256": "s" * 64,
                    "thumbnail_sha256": "t" * 64,
                    "content_type": "image/png",
                    "width": 8,
                    "height": 8,
                    "bytes": 100,
                    "created_at": datetime.now(UTC),
                    "updated_at": datetime.now(UTC),
                }
            ],
        )
    answers = store(
        [
            (owner, at(0, 0, "other", media=(photo,)), None),
            (other, at(0, 60, "other", media=(photo,)), None),
        ]
    )
    assert isinstance(answers[0], Received) and answers[0].status == 201
    assert isinstance(answers[1], AppError) and answers[1].code == "unknown_media"
    assert answers[1].errors == [{"field": "media_ids", "message": f"unknown: {photo}"}]


def test_each_report_is_counted_for_its_rider(
    store: Callable[..., list[Any]], riders: Callable[[int], list[uuid.UUID]], database: Database
) -> None:
    ids = riders(6)
    receipts(store([(ids[n % 6], at(0, 100 * n, "other"), None) for n in range(15)]))
    with database.session(write=False) as session:
        for n, rider in enumerate(ids):
            mine = session.scalar(select(Report.id).where(Report.rider_id == rider).limit(1))
            assert mine is not None
            assert totals(session, rider)["reports"] == (3 if n < 3 else 2)


def test_a_receipt_is_what_the_schema_renders(
    store: Callable[..., list[Any]], riders: Callable[[int], list[uuid.UUID]]
) -> None:
    (rider,) = riders(1)
    observed = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    data = at(0, 0)
    data = ReportInput(**{**data.__dict__, "observed_at": observed})
    (body,) = receipts(store([(rider, data, "k")]))
    assert ReportReceipt.model_validate(body).model_dump(mode="json") == body
    assert body["observed_at"] == observed.isoformat().replace("+00:00", "Z")


def test_reports_read_categories_and_areas_as_the_database_has_them(
    store: Callable[..., list[Any]],
    riders: Callable[[int], list[uuid.UUID]],
    database: Database,
    settings: Settings,
) -> None:
    """The copy each process holds is replaced once the database's data changes, by
    whatever changed it (here, plain statements, as a tool or another process would)."""
    from sqlalchemy import update

    from app.models import Area, Category

    (rider,) = riders(1)
    receipts(store([(rider, at(0, 0, "waste"), None)]))
    held = reference.held_reference(database)
    with database.transaction() as session:
        session.execute(update(Category).where(Category.code == "waste").values(active=False))
    (refused,) = store([(rider, at(0, 60, "waste"), None)])
    assert isinstance(refused, AppError) and refused.code == "unknown_category"
    assert reference.held_reference(database) is not held
    with database.transaction() as session:
        session.execute(update(Area).where(Area.code == "310105002").values(name="新名字"))
    (renamed,) = receipts(store([(rider, at(0, 120, "other"), None)]))
    assert renamed["area"]["street"] == {"code": "310105002", "name": "新名字"}
