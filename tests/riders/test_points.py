"""A scripted life of several tickets ends with exactly the points docs/api.md implies, and
every number a platform or a rider is shown agrees with the ledger."""

import itertools
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from app import models
from app.db import Database, migrate
from app.models import DAY, HOUR, TicketStatus, utcnow
from app.pagination import PageRequest
from app.riders.stats import (
    COUNTERS,
    GroupBy,
    Span,
    Window,
    _parts,
    _summed,
    rider_page,
    split,
    split_days,
    summary,
)
from tests.conftest import Auth
from tests.helpers import assert_problem

# Around a point of 江苏路街道 (310105002), GCJ-02, like a rider's phone would send.
LAT, LON = 31.2200, 121.4330
M_LAT, M_LON = 1 / 111_320, 1 / 95_000
Headers = dict[str, str]


def at(north: float = 0.0, east: float = 0.0) -> dict[str, Any]:
    return {"lat": LAT + north * M_LAT, "lon": LON + east * M_LON, "coord_sys": "gcj02"}


class Life:
    def __init__(self, client: TestClient, auth: Auth) -> None:
        self.client = client
        self.office = auth.staff("changning")
        self.riders = {
            "A": auth.rider("meituan", "rider-a"),
            "B": auth.rider("meituan", "rider-b"),
            "C": auth.rider("eleme", "rider-c"),
            "D": auth.rider("eleme", "rider-d"),
        }

    def report(self, rider: str, category: str, **where: float) -> dict[str, Any]:
        response = self.client.post(
            "/v1/reports", headers=self.riders[rider], json={"category": category, **at(**where)}
        )
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def act(self, ticket: str, action: str, **body: Any) -> dict[str, Any]:
        response = self.client.post(
            f"/v1/office/tickets/{ticket}/actions",
            headers=self.office,
            json={"action": action, **body},
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def verify(self, rider: str, ticket: str, fixed: bool) -> None:
        response = self.client.post(
            f"/v1/tickets/{ticket}/verifications",
            headers=self.riders[rider],
            json={"fixed": fixed, **at(north=20)},
        )
        assert response.status_code == 201, response.text

    def me(self, rider: str) -> dict[str, Any]:
        return self.client.get("/v1/me", headers=self.riders[rider]).json()  # type: ignore


def live(life: Life) -> dict[str, str]:
    """Returns the tickets by name. The points each step earns are in the comments."""
    t1 = life.report("A", "road_damage")["ticket"]["id"]
    assert life.report("B", "road_damage", east=5)["ticket"]["id"] == t1  # B confirms
    t2 = life.report("C", "waste", north=30)["ticket"]["id"]
    t3 = life.report("D", "road_damage", east=80)["ticket"]["id"]
    t4 = life.report("B", "facility_damage", north=-40)["ticket"]["id"]
    assert len({t1, t2, t3, t4}) == 4
    for rider in "ABCD":  # nothing at submission
        assert life.me(rider)["points"] == 0
    life.act(t1, "accept")  # A +10 (opened), B +2 (confirmed)
    # A's second report of its own ticket: counted, but one award per rider and ticket.
    assert life.report("A", "road_damage", north=3)["ticket"]["id"] == t1
    life.act(t3, "accept")  # D +10
    life.act(t3, "merge", into_ticket=t1)  # D: opener → confirmation: -10, +2
    life.act(t1, "start")
    life.act(t1, "resolve", note="filled")  # A +5 (the opener, resolved)
    life.verify("C", t1, fixed=True)  # C +3
    life.verify("B", t1, fixed=False)  # B +3; reopened: A -5
    life.act(t1, "resolve", note="filled again")  # A +5
    life.act(t1, "close")  # nothing more
    life.act(t2, "accept")  # C +10
    life.act(t2, "reject", reason="not_our_responsibility")  # C -10: nothing for rejected
    life.act(t4, "reject", reason="spam")  # nothing was earned, nothing taken back
    return {"t1": t1, "t2": t2, "t3": t3, "t4": t4}


EXPECTED = {
    "A": {
        "reports": 2,
        "tickets_opened": 1,
        "joined": 1,
        "accepted": 2,
        "resolved": 2,
        "rejected": 0,
        "verifications": 0,
        "points": 10 + 5 - 5 + 5,
    },
    "B": {
        "reports": 2,
        "tickets_opened": 1,
        "joined": 1,
        "accepted": 1,
        "resolved": 1,
        "rejected": 1,
        "verifications": 1,
        "points": 2 + 3,
    },
    "C": {
        "reports": 1,
        "tickets_opened": 1,
        "joined": 0,
        "accepted": 0,
        "resolved": 0,
        "rejected": 1,
        "verifications": 1,
        "points": 3 + 10 - 10,
    },
    # D's report was merged into t1: a confirmation now, of a resolved ticket.
    "D": {
        "reports": 1,
        "tickets_opened": 0,
        "joined": 1,
        "accepted": 1,
        "resolved": 1,
        "rejected": 0,
        "verifications": 0,
        "points": 10 - 10 + 2,
    },
}
EXTERNAL = {"A": "rider-a", "B": "rider-b", "C": "rider-c", "D": "rider-d"}
PLATFORM = {"A": "meituan", "B": "meituan", "C": "eleme", "D": "eleme"}


@pytest.fixture
def life(client: TestClient, auth: Auth, database: Database) -> Life:
    # Meituan listens for events from the start; Ele.me does not.
    with database.transaction() as session:
        meituan = session.scalar(
            select(models.Platform.id).where(models.Platform.code == "meituan")
        )
        session.add(
            models.Webhook(
                platform_id=meituan, url="https://hooks.example.com/sentinel", secret="whsec_test"
            )
        )
    return Life(client, auth)


def recount(database: Database, rider_id: uuid.UUID) -> dict[str, int]:
    """A rider's numbers from the base tables alone: reports and how their tickets
    stand, verifications, the ledger's sum."""
    with database.session(write=False) as s:
        rows = s.execute(
            select(models.Report.outcome, models.Ticket.status, models.Ticket.accepted_at)
            .join(models.Ticket, models.Ticket.id == models.Report.ticket_id)
            .where(models.Report.rider_id == rider_id)
        ).all()
        counts = Counter(reports=len(rows))
        for outcome, status, accepted_at in rows:
            counts["tickets_opened" if outcome == "new_ticket" else "joined"] += 1
            if status == TicketStatus.REJECTED:
                counts["rejected"] += 1
            elif status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
                counts["resolved"] += 1
                counts["accepted"] += 1
            elif accepted_at is not None:
                counts["accepted"] += 1
        counts["verifications"] = (
            s.scalar(
                select(func.count())
                .select_from(models.Verification)
                .where(models.Verification.rider_id == rider_id)
            )
            or 0
        )
        counts["points"] = (
            s.scalar(
                select(func.coalesce(func.sum(models.PointsEntry.points), 0)).where(
                    models.PointsEntry.rider_id == rider_id
                )
            )
            or 0
        )
        return {name: counts[name] for name in COUNTERS}


def test_a_life_of_tickets_ends_with_the_points_api_md_implies(
    life: Life, client: TestClient, auth: Auth, database: Database
) -> None:
    tickets = live(life)
    for rider, expected in EXPECTED.items():
        me = life.me(rider)
        assert {k: me[k] for k in COUNTERS} == expected, rider

    with database.session(write=False) as s:
        riders = {
            name: s.scalar(select(models.Rider.id).where(models.Rider.external_id == external))
            for name, external in EXTERNAL.items()
        }
        # The totals kept in step equal a recount from scratch, for every rider.
        for name, rider_id in riders.items():
            assert rider_id is not None
            kept = s.get_one(models.RiderTotals, rider_id)
            assert {k: getattr(kept, k) for k in COUNTERS} == recount(database, rider_id), name
        # Every line names its reason, ticket and event; corrections are lines of their own.
        lines = s.scalars(select(models.PointsEntry).order_by(models.PointsEntry.created_at)).all()
        assert all(line.reason and line.ticket_id and line.event_id for line in lines)
        by_rider = Counter[tuple[str, str, int]]()
        names = {v: k for k, v in riders.items()}
        for line in lines:
            by_rider[(names[line.rider_id], line.reason.value, line.points)] += 1
        assert by_rider == Counter(
            {
                ("A", "opened_accepted", 10): 1,
                ("A", "opened_resolved", 5): 2,
                ("A", "opened_resolved", -5): 1,
                ("B", "confirmed_accepted", 2): 1,
                ("B", "verified", 3): 1,
                ("C", "verified", 3): 1,
                ("C", "opened_accepted", 10): 1,
                ("C", "opened_accepted", -10): 1,
                ("D", "opened_accepted", 10): 1,
                ("D", "opened_accepted", -10): 1,
                ("D", "confirmed_accepted", 2): 1,
            }
        )
        # D's correction names the merge, on the ticket its report follows now.
        d_lines = [line for line in lines if line.rider_id == riders["D"]]
        assert {str(line.ticket_id) for line in d_lines[1:]} == {tickets["t1"]}

    # The platforms see the same numbers, each only its own riders.
    for platform, names_ in (("meituan", "AB"), ("eleme", "CD")):
        headers = auth.platform(platform)
        listed = client.get("/v1/platform/riders/stats", headers=headers).json()["items"]
        assert [row["rider_id"] for row in listed] == sorted(
            (EXTERNAL[n] for n in names_),
            key=lambda e: -EXPECTED[next(k for k, v in EXTERNAL.items() if v == e)]["points"],
        )
        for row in listed:
            name = next(k for k, v in EXTERNAL.items() if v == row["rider_id"])
            assert {k: row[k] for k in COUNTERS} == EXPECTED[name]
            detail = client.get(
                f"/v1/platform/riders/{row['rider_id']}/stats", headers=headers
            ).json()
            assert {k: detail[k] for k in COUNTERS} == EXPECTED[name]
            assert (
                sum(c["points"] for c in detail["by_category"].values()) == EXPECTED[name]["points"]
            )
        window = {
            "from": (utcnow() - timedelta(hours=1)).isoformat(),
            "to": (utcnow() + timedelta(hours=1)).isoformat(),
        }
        windowed = client.get("/v1/platform/riders/stats", headers=headers, params=window).json()[
            "items"
        ]
        assert [{k: r[k] for k in COUNTERS} for r in windowed] == [
            {k: r[k] for k in COUNTERS} for r in listed
        ]
        for group_by in ("day", "category", "street"):
            rows = client.get(
                "/v1/platform/summary", headers=headers, params={"group_by": group_by}
            ).json()["items"]
            for counter in COUNTERS:
                assert sum(r[counter] for r in rows) == sum(EXPECTED[n][counter] for n in names_), (
                    group_by,
                    counter,
                )
        other = "rider-c" if platform == "meituan" else "rider-a"
        assert_problem(
            client.get(f"/v1/platform/riders/{other}/stats", headers=headers), 404, "not_found"
        )

    # Meituan was told of every line of its riders and of their reports' changes; Ele.me,
    # without a webhook, had nothing queued.
    with database.session(write=False) as s:
        events = s.scalars(select(models.OutboxEvent).order_by(models.OutboxEvent.created_at)).all()
        meituan = s.scalar(select(models.Platform.id).where(models.Platform.code == "meituan"))
    assert events and all(e.platform_id == meituan for e in events)
    awarded = [e.data for e in events if e.type == "points.awarded"]
    assert sum(e["points"] for e in awarded) == EXPECTED["A"]["points"] + EXPECTED["B"]["points"]
    assert {e["rider_id"] for e in awarded} == {"rider-a", "rider-b"}
    # Each event's total is the rider's total after that line: a running sum.
    for rider in ("rider-a", "rider-b"):
        lines = [e for e in awarded if e["rider_id"] == rider]
        running = 0
        for line in lines:
            running += line["points"]
            assert line["total_points"] == running, (rider, line)
    updated = [e.data for e in events if e.type == "report.updated"]
    assert {(e["rider_id"], e["ticket"]["status"]) for e in updated} >= {
        ("rider-a", "accepted"),
        ("rider-a", "resolved"),
        ("rider-a", "closed"),
        ("rider-b", "rejected"),
    }


def test_the_ledger_refuses_to_be_rewritten(life: Life, database: Database) -> None:
    ticket = life.report("A", "waste")["ticket"]["id"]
    life.act(ticket, "accept")
    with database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(models.PointsEntry)) == 1
    for table in ("points_ledger", "ticket_events"):
        with pytest.raises((DBAPIError, IntegrityError)), database.transaction() as session:
            session.execute(text(f"UPDATE {table} SET created_at = created_at"))
    assert life.me("A")["points"] == 10


def test_platform_stats_refuse_bad_parameters(client: TestClient, auth: Auth) -> None:
    headers = auth.platform("meituan")
    for path, params, field in (
        ("/v1/platform/riders/stats", {"sort": "-salary"}, "sort"),
        ("/v1/platform/riders/stats", {"cursor": "not-a-cursor"}, "cursor"),
        (
            "/v1/platform/riders/stats",
            {"from": "2026-11-02T00:00:00+08:00", "to": "2026-11-01T00:00:00+08:00"},
            "to",
        ),
        ("/v1/platform/summary", {"tz": "Mars/Olympus"}, "tz"),
        ("/v1/platform/summary", {"group_by": "rider"}, "group_by"),
        ("/v1/platform/summary", {"from": "yesterday"}, "from"),
    ):
        response = client.get(path, headers=headers, params=params)
        assert field in str(assert_problem(response, 422, "validation_error")), params
    for path in (
        "/v1/platform/riders/stats",
        "/v1/platform/summary",
        "/v1/platform/riders/rider-a/stats",
    ):
        assert_problem(client.get(path), 401, "unauthenticated")
        assert_problem(client.get(path, headers=auth.staff("changning")), 403, "forbidden")


def test_a_summary_day_is_a_shanghai_day_unless_tz_says_otherwise(
    life: Life, client: TestClient, auth: Auth, app: FastAPI
) -> None:
    # 2026-11-29 20:00 UTC is 2026-11-30 04:00 in Shanghai and 15:00 in New York.
    moment = utcnow().replace(
        year=2026, month=11, day=29, hour=20, minute=0, second=0, microsecond=0
    )
    app.state.clock = lambda: moment
    # Observed "now" by the server's clock: the report is received at that moment.
    life.report("A", "waste")
    headers = auth.platform("meituan")
    window = {"from": "2026-11-28T00:00:00Z", "to": "2026-12-02T00:00:00Z"}
    shanghai = client.get("/v1/platform/summary", headers=headers, params=window).json()
    assert shanghai["tz"] == "Asia/Shanghai"
    assert [(r["day"], r["reports"]) for r in shanghai["items"]] == [("2026-11-30", 1)]
    new_york = client.get(
        "/v1/platform/summary", headers=headers, params={**window, "tz": "America/New_York"}
    ).json()
    assert [(r["day"], r["reports"]) for r in new_york["items"]] == [("2026-11-29", 1)]
    # Half-open: a window ending at the report's instant leaves it out.
    until = client.get(
        "/v1/platform/summary",
        headers=headers,
        params={"from": window["from"], "to": "2026-11-29T20:00:00Z"},
    ).json()
    assert until["items"] == []


def test_rider_stats_pages_follow_the_sort_with_a_cursor(client: TestClient, auth: Auth) -> None:
    for i in range(5):
        auth.rider("meituan", f"pager-{i}")
    headers = auth.platform("meituan")
    seen: list[str] = []
    cursor = None
    while True:
        page = client.get(
            "/v1/platform/riders/stats",
            headers=headers,
            params={"limit": 2, "sort": "rider_id", **({"cursor": cursor} if cursor else {})},
        ).json()
        seen += [row["rider_id"] for row in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) >= 5
    eleme = client.get("/v1/platform/riders/stats", headers=auth.platform("eleme")).json()
    assert not {row["rider_id"] for row in eleme["items"]} & set(seen)


def test_the_hourly_activity_equals_the_base_tables(life: Life, database: Database) -> None:
    """The summary's whole hours come from ``platform_activity``; after a life of tickets
    they say exactly what counting the reports, verifications and ledger says."""
    live(life)
    hour = int(utcnow().timestamp()) // 3600
    aligned = Window(
        datetime.fromtimestamp(hour * 3600, UTC), datetime.fromtimestamp((hour + 1) * 3600, UTC)
    )
    with database.session(write=False) as s:
        for platform in s.scalars(select(models.Platform)):
            for group_by in (GroupBy.CATEGORY, GroupBy.STREET, GroupBy.DAY):
                hourly = summary(
                    s,
                    platform=platform,
                    window=aligned,
                    group_by=group_by,
                    tz=ZoneInfo("Asia/Shanghai"),
                )
                key = "bucket" if group_by is GroupBy.DAY else group_by.value
                counted = s.execute(_summed(_parts(platform.id, aligned, key=key))).all()
                assert sum(r["points"] for r in hourly) == sum(r.points or 0 for r in counted)
                if group_by is not GroupBy.DAY:
                    by_key = {
                        r.key: {n: int(getattr(r, n) or 0) for n in COUNTERS} for r in counted
                    }
                    assert {r[group_by.value]: {n: r[n] for n in COUNTERS} for r in hourly} == {
                        _code(s, group_by, k): v for k, v in by_key.items()
                    }
            rows = s.scalar(
                select(func.count())
                .select_from(models.PlatformActivity)
                .where(models.PlatformActivity.platform_id == platform.id)
            )
            assert rows, platform.code


def _code(session: Any, group_by: GroupBy, key: int | None) -> str | None:
    if key is None:
        return None
    model = models.Category if group_by is GroupBy.CATEGORY else models.Area
    return session.scalar(select(model.code).where(model.id == key))  # type: ignore[no-any-return]


def test_merges_move_what_was_earned_with_the_reports(life: Life) -> None:
    """An accepted ticket merged into a new one: its opener is a confirmation of a ticket
    nobody has accepted yet, so owed nothing until the target is accepted. A pending one
    merged into an accepted target: its opener earns the confirmation at once."""
    accepted = life.report("A", "road_damage")["ticket"]["id"]
    pending = life.report("B", "road_damage", east=80)["ticket"]["id"]
    life.act(accepted, "accept")
    assert life.me("A")["points"] == 10
    life.act(accepted, "merge", into_ticket=pending)
    assert (life.me("A")["points"], life.me("A")["joined"]) == (0, 1)
    life.act(pending, "accept")
    assert (life.me("A")["points"], life.me("B")["points"]) == (2, 10)

    third = life.report("C", "waste")["ticket"]["id"]
    fourth = life.report("D", "waste", east=90)["ticket"]["id"]
    life.act(fourth, "accept")
    life.act(third, "merge", into_ticket=fourth)
    assert (life.me("C")["points"], life.me("D")["points"]) == (2, 10)
    # The merge gave the moved report's rider a report.updated naming its new ticket.
    life.act(fourth, "resolve", note="cleared")
    assert (life.me("C")["points"], life.me("D")["points"]) == (2, 15)
    assert life.me("C")["resolved"] == 1


def test_a_cursor_of_another_sort_is_refused(life: Life, client: TestClient, auth: Auth) -> None:
    for i in range(3):
        auth.rider("meituan", f"sorted-{i}")
    headers = auth.platform("meituan")
    cursor = client.get(
        "/v1/platform/riders/stats", headers=headers, params={"limit": 1, "sort": "rider_id"}
    ).json()["next_cursor"]
    assert cursor
    for sort in ("-points", "reports", "-rider_id"):
        assert_problem(
            client.get(
                "/v1/platform/riders/stats",
                headers=headers,
                params={"cursor": cursor, "sort": sort},
            ),
            422,
            "validation_error",
        )
    # Nor is a cursor of another window, or of all time.
    life.report("A", "waste")
    life.report("B", "waste", north=60)
    month_ago = (datetime.now(UTC) - timedelta(days=30)).replace(microsecond=0)
    windowed = {"from": month_ago.isoformat()}
    cursor = client.get(
        "/v1/platform/riders/stats", headers=headers, params={"limit": 1, **windowed}
    ).json()["next_cursor"]
    assert cursor
    other_start = {"from": (month_ago + timedelta(days=1)).isoformat()}
    other_end = {**windowed, "to": (month_ago + timedelta(days=60)).date().isoformat()}
    for params in ({}, other_start, other_end):
        assert_problem(
            client.get(
                "/v1/platform/riders/stats", headers=headers, params={"cursor": cursor, **params}
            ),
            422,
            "validation_error",
        )
    assert (
        client.get(
            "/v1/platform/riders/stats", headers=headers, params={"cursor": cursor, **windowed}
        ).status_code
        == 200
    )
    for far in ({"from": "9999-12-31T23:30:00Z"}, {"to": "1969-12-31T00:00:00Z"}):
        assert_problem(
            client.get("/v1/platform/riders/stats", headers=headers, params=far),
            422,
            "validation_error",
        )
    too_long = {"from": "2020-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
    assert_problem(
        client.get("/v1/platform/summary", headers=headers, params=too_long),
        422,
        "validation_error",
    )


def test_a_rider_list_over_any_window_equals_counting_the_base_tables(
    life: Life, app: FastAPI, database: Database
) -> None:
    """Over a window, the rider list sums the riders' hours (``rider_activity``) and counts
    the minutes at either end from the base tables, and the summary does the same with
    the platform's hours; whatever the window, that is what counting the base tables over
    all of it says. Events fall on the hour and a microsecond before it, on two days."""
    start = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)
    tick = timedelta(microseconds=1)
    ticks = itertools.count()

    def clock() -> datetime:  # 22:00, 22:30, 22:59:59.999999, 23:30, 00:00, …
        n = next(ticks)
        return start + n * timedelta(minutes=30) - (tick if n % 4 == 2 else timedelta(0))

    app.state.clock = clock
    live(life)
    end = clock()
    assert end - start > timedelta(hours=5)
    hour, minute = timedelta(hours=1), timedelta(minutes=1)
    windows = [
        Window(start, end + minute),  # whole hours only
        Window(start + hour - tick, start + 3 * hour),  # cut a microsecond before an hour
        Window(start + hour, start + 3 * hour + tick),  # and a microsecond after one
        Window(start + 37 * minute + 3 * tick, end - 71 * minute),
        Window(start + 65 * minute, start + 110 * minute),  # inside one hour
        Window(start + 90 * minute, None),
        Window(None, start + 200 * minute),
        Window(start + 3 * hour, start + 4 * hour),
        Window(start - 22 * hour, end + 5 * minute),  # a whole day, then hours, minutes
        Window(start - 2 * DAY + 7 * minute, end + DAY + 3 * minute),
        Window(start + 2 * hour - tick, end + 2 * DAY),  # midnight + 1 day, cut short
        Window(None, end + DAY),
        Window(start - 3 * DAY, None),
    ]
    with database.session(write=False) as s:
        hours = s.scalar(select(func.count(func.distinct(models.RiderActivity.hour))))
        assert hours and hours > 3  # the life spans several hours, and two days
        assert s.scalar(select(func.count(func.distinct(models.RiderDailyActivity.day)))) == 2
        for platform in s.scalars(select(models.Platform)):
            for window in windows:
                counted = {
                    s.scalar(select(models.Rider.external_id).where(models.Rider.id == row.key)): {
                        n: int(getattr(row, n) or 0) for n in COUNTERS
                    }
                    for row in s.execute(_summed(_parts(platform.id, window, key="rider")))
                }
                for sort in ("-points", "reports", "-verifications", "rider_id"):
                    listed = rider_page(
                        s, platform=platform, window=window, sort=sort, page=PageRequest(100)
                    ).items
                    assert {
                        r["rider_id"]: {n: r[n] for n in COUNTERS} for r in listed
                    } == counted, (platform.code, window, sort)
                    # A page at a time (ties and all), the same riders in the same order.
                    paged, cursor = [], None
                    while True:
                        page = rider_page(
                            s,
                            platform=platform,
                            window=window,
                            sort=sort,
                            page=PageRequest(1, cursor),
                        )
                        paged += page.items
                        if (cursor := page.next_cursor) is None:
                            break
                    assert paged == listed, (platform.code, window, sort)
                if window.start is None or window.end is None:
                    continue
                by_category = {
                    _code(s, GroupBy.CATEGORY, row.key): {
                        n: int(getattr(row, n) or 0) for n in COUNTERS
                    }
                    for row in s.execute(_summed(_parts(platform.id, window, key="category")))
                }
                assert {
                    r["category"]: {n: r[n] for n in COUNTERS}
                    for r in summary(
                        s,
                        platform=platform,
                        window=window,
                        group_by=GroupBy.CATEGORY,
                        tz=ZoneInfo("Asia/Shanghai"),
                    )
                } == by_category, (platform.code, window)


def test_a_window_splits_into_whole_days_hours_and_the_minutes_around_them() -> None:
    hour = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    h = int(hour.timestamp()) // 3600
    minute, tick = timedelta(minutes=1), timedelta(microseconds=1)

    def hours(window: Window) -> tuple[Span | None, list[Window]]:
        return split(window, HOUR)

    assert hours(Window(hour, hour + 120 * minute)) == (Span(h, h + 2), [])
    assert hours(Window(hour + tick, hour + 120 * minute - tick)) == (
        None,
        [Window(hour + tick, hour + 120 * minute - tick)],
    )  # no whole hour
    assert hours(Window(hour + tick, hour + 180 * minute - tick)) == (
        Span(h + 1, h + 2),
        [
            Window(hour + tick, hour + 60 * minute),
            Window(hour + 120 * minute, hour + 180 * minute - tick),
        ],
    )
    assert hours(Window(hour - 5 * minute, hour + 185 * minute)) == (
        Span(h, h + 3),
        [Window(hour - 5 * minute, hour), Window(hour + 180 * minute, hour + 185 * minute)],
    )
    assert hours(Window(hour + 10 * minute, hour + 50 * minute)) == (
        None,
        [Window(hour + 10 * minute, hour + 50 * minute)],
    )
    assert hours(Window(None, hour + tick)) == (Span(None, h), [Window(hour, hour + tick)])
    assert hours(Window(hour - tick, None)) == (Span(h, None), [Window(hour - tick, hour)])

    midnight = datetime(2026, 11, 30, tzinfo=UTC)
    d = h // 24
    assert midnight == datetime.fromtimestamp(d * 86400, UTC)
    # 29 Nov 21:59:59.999999 to 2 Dec 03:30: the minute before 22:00, the hours to
    # midnight, two whole days, three hours, half an hour.
    assert split_days(Window(midnight - 2 * HOUR - tick, midnight + 2 * DAY + 210 * minute)) == (
        Span(d, d + 2),
        [Span(24 * d - 2, 24 * d), Span(24 * d + 48, 24 * d + 51)],
        [
            Window(midnight - 2 * HOUR - tick, midnight - 2 * HOUR),
            Window(midnight + 2 * DAY + 3 * HOUR, midnight + 2 * DAY + 210 * minute),
        ],
    )
    assert split_days(Window(midnight + tick, midnight + DAY)) == (
        None,
        [Span(24 * d + 1, 24 * d + 24)],
        [Window(midnight + tick, midnight + HOUR)],
    )
    assert split_days(Window(None, midnight)) == (Span(None, d), [], [])


def test_the_riders_hours_are_what_the_migration_counts_from_the_base_tables(
    life: Life, app: FastAPI, database: Database
) -> None:
    """The riders' hours and days kept in step by every event equal the rows migration
    0005 fills from the reports, verifications and ledger — also for events in the last
    moment of an hour (which SQLite's date functions would round into the next)."""
    start = datetime(2026, 11, 29, 9, 0, tzinfo=UTC) - timedelta(microseconds=400)
    ticks = itertools.count()
    app.state.clock = lambda: start + next(ticks) * timedelta(hours=1)
    live(life)

    def rows() -> set[tuple[Any, ...]]:
        with database.session(write=False) as s:
            return {
                (table.name, *r)
                for table in (models.RiderActivity.__table__, models.RiderDailyActivity.__table__)
                for r in s.execute(select(table))
            }

    kept = rows()
    assert len(kept) >= 8
    url = database.engine.url.render_as_string(hide_password=False)
    migrate.downgrade(url, "0004")
    migrate.upgrade(url)
    assert rows() == kept
