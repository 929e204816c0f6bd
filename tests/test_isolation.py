"""What keeps the tests apart: after a test every table is as the baseline left it, whoever
wrote it and however; a shared app is given back as it was built."""

import uuid
from typing import Any

import pytest
from geoalchemy2.elements import WKBElement
from sqlalchemy import text, update

from app.config import Settings
from app.db import Database, begin_writes
from app.models import Area, Category, Staff, utcnow
from tests.apps import Apps
from tests.baseline import Baseline, Writes, restore, snapshot
from tests.conftest import Auth
from tests.helpers import JIANGSU, calendar_holding, report_at
from tests.reporting import png


def comparable(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Rows with their geometries as hex WKB (two loads of one polygon compare equal)."""
    return {
        table: [
            {k: v.desc if isinstance(v, WKBElement) else v for k, v in row.items()}
            for row in table_rows
        ]
        for table, table_rows in rows.items()
    }


def test_after_a_restore_every_table_is_the_baseline(
    client: Any, auth: Auth, database: Database, baseline: Baseline, writes: Writes
) -> None:
    photo = client.post(
        "/v1/media",
        headers=auth.rider("meituan", "iso-1"),
        files={"file": ("p.png", png((10, 200, 30)), "image/png")},
    ).json()["id"]
    report_at(client, auth.rider("meituan", "iso-1"), JIANGSU, media_ids=[photo])
    with database.transaction() as session:  # parents the baseline's children refer to
        session.execute(update(Area).where(Area.code == "310105002").values(name="改名"))
        session.execute(update(Category).values(priority=1))
        session.execute(update(Staff).values(tokens_valid_after=utcnow()))
    calendar_holding(database, 2025)  # whatever years the demo seeded today
    with database.engine.begin() as connection:  # a connection of its own, raw SQL
        connection.execute(text("DELETE FROM sign_in_throttles"))
        connection.execute(
            text("UPDATE platforms SET name = :name"), {"name": f"x-{uuid.uuid4().hex}"}
        )
    assert comparable(snapshot(database)) != comparable(baseline.rows)

    restored = restore(database, baseline, writes)

    assert {"areas", "categories", "staff", "working_calendars", "platforms"} <= restored
    assert {"reports", "tickets", "media", "report_media", "riders"} <= restored
    assert comparable(snapshot(database)) == comparable(baseline.rows)
    assert restore(database, baseline, writes) == set()  # nothing written since


def test_a_write_in_a_rolled_back_transaction_is_restored_or_gone(
    database: Database, baseline: Baseline, writes: Writes
) -> None:
    with pytest.raises(RuntimeError), database.transaction() as session:
        begin_writes(session)
        session.execute(update(Category).values(priority=5))
        raise RuntimeError("rolled back")
    restore(database, baseline, writes)
    assert comparable(snapshot(database)) == comparable(baseline.rows)


def test_a_schema_taken_down_and_up_again_is_restored_whole(
    database: Database, baseline: Baseline, writes: Writes
) -> None:
    """Migrations down and up drop the counters' triggers with the tables: every table
    is then restored, and the triggers are back."""
    trigger = "test_writes_categories" + ("_DELETE" if database.is_sqlite else "")
    with database.engine.begin() as connection:
        if database.is_sqlite:
            connection.exec_driver_sql(f"DROP TRIGGER {trigger}")
        else:
            connection.exec_driver_sql(f"DROP TRIGGER {trigger} ON categories")
        connection.execute(text("DELETE FROM categories WHERE code = 'other'"))

    restored = restore(database, baseline, writes)

    assert restored == set(baseline.rows)
    assert comparable(snapshot(database)) == comparable(baseline.rows)
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE categories SET priority = 2 WHERE code = 'other'"))
    assert restore(database, baseline, writes) >= {"categories"}


def test_a_shared_app_is_given_back_as_it_was_built(apps: Apps, settings: Settings) -> None:
    running = apps.running(settings)
    built_clock = running.app.state.clock
    changed = settings.model_copy(update={"rider_reports_per_hour": 1})
    running = apps.running(changed)  # another object of other values: another app
    assert running.app.state.settings is changed
    running = apps.running(settings)
    assert running.app.state.settings is settings  # the test's own object, while it runs

    running.app.state.clock = lambda: utcnow()
    running.app.state.settings = changed
    running.app.state.left_behind = True
    running.client.cookies.set("sentinel_console", "someone's session")
    running.client.headers["Authorization"] = "Bearer someone's token"
    running.client.follow_redirects = not running.client.follow_redirects
    apps.give_back(running)

    assert running.app.state.clock is built_clock
    assert running.app.state.settings == settings
    assert running.app.state.intake.settings == settings
    assert not hasattr(running.app.state, "left_behind")
    assert not running.client.cookies
    assert "authorization" not in running.client.headers
    assert running.client.follow_redirects is running.follow_redirects


def test_a_shared_app_that_was_changed_is_refused_and_dropped(
    apps: Apps, settings: Settings
) -> None:
    running = apps.running(settings)

    @running.app.get("/added-by-a-test")
    def added() -> None: ...

    with pytest.raises(AssertionError, match="own_app"):
        apps.give_back(running)
    assert apps.running(settings) is not running  # a new one, built from the settings
