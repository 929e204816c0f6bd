"""The unit a ticket may be dispatched to: active, serving the ticket's street, handling its
category (or every category); anything else is a 422 naming ``unit``."""

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import units
from app.db import Database
from app.errors import ValidationFailed
from app.models import Ticket, Unit, UnitKind
from tests.conftest import Auth
from tests.helpers import HUAYANG, JIANGSU, report_at

JIANGSU_STREET, HUAYANG_STREET = "310105002", "310105001"


@pytest.fixture
def road_damage(client: TestClient, auth: Auth) -> uuid.UUID:
    """A rider's road-damage ticket in 江苏路街道."""
    receipt = report_at(client, auth.rider("meituan", "r1"), JIANGSU, category="road_damage")
    return uuid.UUID(receipt["ticket"]["id"])


def ticket(session: Session, ticket_id: uuid.UUID) -> Ticket:
    found = session.get(Ticket, ticket_id)
    assert found is not None
    return found


def refusal(session: Session, ticket_id: uuid.UUID, code: str | None) -> str:
    with pytest.raises(ValidationFailed) as refused:
        units.unit_to_dispatch(session, ticket(session, ticket_id), code=code)
    assert refused.value.status == 422
    assert refused.value.errors is not None
    assert [e["field"] for e in refused.value.errors] == ["unit"]
    return refused.value.detail


def test_a_unit_of_the_street_that_handles_the_category_is_the_one(
    session: Session, road_damage: uuid.UUID
) -> None:
    for code in (f"roads_{JIANGSU_STREET}", f"chengguan_{JIANGSU_STREET}"):
        unit = units.unit_to_dispatch(session, ticket(session, road_damage), code=code)
        assert unit.code == code


def test_a_unit_of_another_street_is_refused(session: Session, road_damage: uuid.UUID) -> None:
    assert "street" in refusal(session, road_damage, f"roads_{HUAYANG_STREET}")
    assert "street" in refusal(session, road_damage, f"chengguan_{HUAYANG_STREET}")


def test_a_unit_of_another_category_is_refused(
    client: TestClient, auth: Auth, session: Session
) -> None:
    receipt = report_at(client, auth.rider("meituan", "r2"), JIANGSU, category="waste")
    waste = uuid.UUID(receipt["ticket"]["id"])

    assert "category" in refusal(session, waste, f"roads_{JIANGSU_STREET}")
    unit = units.unit_to_dispatch(
        session, ticket(session, waste), code=f"chengguan_{JIANGSU_STREET}"
    )
    assert unit.kind == UnitKind.DEPARTMENT


def test_an_inactive_unknown_or_unnamed_unit_is_refused(
    database: Database, session: Session, road_damage: uuid.UUID
) -> None:
    with database.transaction() as writing:
        units.update_unit(writing, f"roads_{JIANGSU_STREET}", change=units.UnitChange(active=False))

    assert "not active" in refusal(session, road_damage, f"roads_{JIANGSU_STREET}")
    assert "no unit" in refusal(session, road_damage, "no-such-unit")
    assert "name the unit" in refusal(session, road_damage, None)


def test_a_ticket_with_no_street_goes_to_no_unit(session: Session, road_damage: uuid.UUID) -> None:
    unrouted = ticket(session, road_damage)
    session.expunge(unrouted)  # changed here only, never stored
    unrouted.street_id = None

    with pytest.raises(ValidationFailed):
        units.unit_to_dispatch(session, unrouted, code=f"chengguan_{JIANGSU_STREET}")


def test_the_units_serving_streets_are_the_active_ones_by_code(
    client: TestClient, auth: Auth, session: Session, database: Database
) -> None:
    report = report_at(client, auth.rider("meituan", "r3"), HUAYANG, category="road_damage")
    with database.transaction() as writing:
        units.update_unit(writing, f"roads_{HUAYANG_STREET}", change=units.UnitChange(active=False))
    huayang = ticket(session, uuid.UUID(report["ticket"]["id"]))
    assert huayang.street_id is not None

    serving = units.units_serving(session, {huayang.street_id})

    assert [u.code for u in serving] == [f"chengguan_{HUAYANG_STREET}"]
    assert units.units_serving(session, set()) == []
    every = session.scalars(select(Unit.id)).all()
    assert units.unit_codes(session, every) == {u.id: u.code for u in session.scalars(select(Unit))}
