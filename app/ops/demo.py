"""The Changning demo: areas, categories, platforms, staff, and each street's two
responsible units with a crew account each, for a first run.

The street and community boundaries are synthetic (see ``demo_areas``); they are
imported through the same path as official data, labelled as synthetic in ``source``.
"""

from dataclasses import dataclass, field

from shapely.geometry import mapping
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from app.areas import import_areas
from app.config import Settings
from app.models import Area, Platform, Staff, StaffRole, UnitKind, utcnow
from app.ops.demo_areas import DISTRICT_CODE, build_demo_areas
from app.platforms import create_platform
from app.staff import Account, create_staff
from app.tickets import seed_calendar
from app.units import UnitInput, create_unit

DEMO_SOURCE = "synthetic demo partition (not official boundaries)"
DISTRICT_SOURCE = "DataV GeoAtlas outline (2022), converted from GCJ-02"
DEMO_PLATFORMS = (("meituan", "美团"), ("eleme", "饿了么"))
DISTRICT_USERNAME = "changning"
ADMIN_USERNAME = "admin"
# What a street's road-maintenance contractor fixes: the road and what stands on it.
ROAD_CATEGORIES = ("road_damage", "facility_damage")


@dataclass
class DemoCredentials:
    platforms: list[dict[str, str]] = field(default_factory=list)
    staff: list[dict[str, str | None]] = field(default_factory=list)


def database_is_empty(session: Session) -> bool:
    return not any(
        session.scalar(select(exists().select_from(table))) for table in (Area, Platform, Staff)
    )


def officer_username(street_code: str) -> str:
    return f"officer_{street_code}"


def crew_username(unit_code: str) -> str:
    return f"crew_{unit_code}"


def street_units(code: str, name: str) -> list[UnitInput]:
    """A street's two responsible units: its 城管中队, which takes anything, and a
    road-maintenance contractor (made up, as the name says)."""
    return [
        UnitInput(
            code=f"chengguan_{code}",
            name=f"{name}城管中队",
            kind=UnitKind.DEPARTMENT,
            streets=[code],
        ),
        UnitInput(
            code=f"roads_{code}",
            name=f"{name}道路养护（示例承包商）",
            kind=UnitKind.CONTRACTOR,
            streets=[code],
            categories=ROAD_CATEGORIES,
        ),
    ]


def load_demo(session: Session, settings: Settings) -> DemoCredentials | None:
    """Load the demo into an empty database; None (and nothing written) if it is not empty."""
    if not database_is_empty(session):
        return None
    demo_areas = build_demo_areas()
    import_areas(
        session,
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": mapping(a.boundary),
                    "properties": {
                        "code": a.code,
                        "name": a.name,
                        "name_en": a.name_en,
                        "level": a.level,
                        "parent_code": a.parent_code,
                    },
                }
                for a in demo_areas
            ],
        },
        source=DEMO_SOURCE,
    )
    session.execute(update(Area).where(Area.code == DISTRICT_CODE).values(source=DISTRICT_SOURCE))

    seed_calendar(session, utcnow().date())
    credentials = DemoCredentials()
    for code, name in DEMO_PLATFORMS:
        new = create_platform(session, code=code, name=name)
        credentials.platforms.append({"code": code, "name": name, "api_key": new.api_key})

    streets = [a for a in demo_areas if a.level == "street"]
    accounts = [
        Account(officer_username(a.code), StaffRole.OFFICER, a.code, f"{a.name}工作人员")
        for a in streets
    ]
    accounts += [
        Account(DISTRICT_USERNAME, StaffRole.DISTRICT, DISTRICT_CODE, "长宁区城运中心"),
        Account(ADMIN_USERNAME, StaffRole.ADMIN, None, "Operator"),
    ]
    for street in streets:
        for unit in street_units(street.code, street.name):
            create_unit(session, unit)
            accounts.append(
                Account(
                    crew_username(unit.code),
                    StaffRole.CREW,
                    display_name=f"{unit.name}处置组",
                    unit_code=unit.code,
                )
            )
    for account in accounts:
        staff = create_staff(session, account, settings=settings)
        credentials.staff.append(
            {
                "username": account.username,
                "password": staff.password,
                "role": account.role.value,
                "area": account.area_code,
                "unit": account.unit_code,
            }
        )
    return credentials
