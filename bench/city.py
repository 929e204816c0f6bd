"""A Shanghai-sized city on PostGIS: the data the benches of a city's day run on.

Builds, in minutes and in stages (each timed), a fresh database (``--pg-url``, dropped
first if it exists) whose schema comes from the app's own migrations, holding:

* the map: Shanghai's 16 districts (their real outlines: DataV GeoAtlas, 2022, as
  mirrored in ``lyhmyd1211/GeoMapData_CN``, converted from GCJ-02 to WGS-84; the file
  is ``bench/data/shanghai_districts_gcj02.geojson``), cut into about 215 streets and
  6,000 communities. The streets and communities are SYNTHETIC: Voronoi cells of random
  points in each district, grouped into streets around spread-out seeds, named
  "示例"/"synthetic" — not official boundaries. Imported through ``app.areas``, which
  checks them as it checks any import;
* the app's categories (from the migrations), the working calendar of every year of
  the history (chinesecalendar, as the worker seeds it), three platforms with webhooks,
  300 responsible units (a 城管中队 in each street, a road contractor and a utility in
  each district, property companies for the rest) with a crew account each, and 500
  office accounts (an admin, two district users per district, officers in every street,
  more where the street is busy), all with one password;
* two years of history, as the app and its worker would have written it: 200,000 riders
  of three platforms; 1,000,000 tickets, 20,000 of them open, opened by riders' reports
  and joined by 5,000,000 reports in all; the office's and the units' work on each
  (acknowledged, accepted or rejected, resolved by the office or dispatched to a unit
  that signs, starts, reports it done and is checked — returned, failed checks,
  extensions asked and decided, shelved), riders' verifications (some reopen a ticket),
  closing, the worker's deadline marks, warnings, breaches and escalations; every event;
  the points ledger and every counter kept from it (the riders' totals, their hours
  and days, the platforms' hours); the webhook outbox of the last week, delivered; and
  the retention purge of the tickets that ended more than 180 days ago.

The history has the skew of a real one: busy streets and hot spots, delivery rush hours,
weekends, growth over the two years, categories by season (plum rain and road damage,
typhoons and broken facilities, winter and illegal charging) and storm days.

``--scale`` multiplies the history and its people (riders, tickets, reports, open
tickets) so that the builder can be developed small; the map, the units and the staff
are the city's and stay whole. What the benches need to know of the data — the
credentials, the platforms' keys and webhook secrets, the districts, streets and their
accounts, some tickets — goes to ``--out`` (JSON). ``--check`` then holds the city to
the app's rules (``--check-only``: an existing one): counters against the base tables,
the ledger against what each report is owed, versions and statuses against the events,
points routed again, working hours counted again, the worker's sweeps finding nothing
to do and settlements booking nothing. Run from the project root, alone on the machine
at full scale::

    .venv/bin/python bench/city.py --scale 1.0 --out test-artifacts/city.json --check

Not made: photos, idempotency records, ratings of fixes, assignees, hidden reports,
merged, transferred, recategorised or relocated tickets, alerts, notification channels
and their deliveries, Open311 forwarding.
"""

import argparse
import json
import math
import secrets
import struct
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from sqlalchemy import func, make_url, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.areas import import_areas
from app.config import Settings
from app.db import Database, migrate
from app.geo import coords, gcj02_to_wgs84, to_wgs84
from app.models import (
    OPEN_STATUSES,
    WITH_UNIT_STATUSES,
    Area,
    Category,
    Contribution,
    JobMark,
    PointsEntry,
    StaffRole,
    Ticket,
    TicketEvent,
    TicketStatus,
    UnitKind,
    Webhook,
    utcnow,
)
from app.notify.outbox import MARK as NOTIFY_MARK
from app.platforms import create_platform
from app.platforms.webhooks import KEEP_HISTORY
from app.riders import settle
from app.riders.points import REPORT_COUNTERS, counts_in_sql
from app.security import hash_password
from app.tickets import (
    RETURN_REASONS,
    close_resolved,
    current_reference,
    escalate_late,
    mark_deadlines,
    record_breaches,
    record_warnings,
    unshelve_due,
)
from app.tickets.calendar import YearInput, load_calendar, set_year
from app.tickets.deadlines import WARN_AT
from app.tickets.workflow import EXTENDABLE, REJECT_REASONS
from app.tickets.working_time import seed_year
from app.units import UnitInput, create_unit
from bench.common import SECRET

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/sentinel_city"
DATA = Path(__file__).resolve().parent / "data" / "shanghai_districts_gcj02.geojson"

H, DAY = 3600.0, 86400.0
LOCAL = 8 * H  # Asia/Shanghai: UTC+8, no summer time
HISTORY_DAYS = 730
GRID = 1e-7  # degrees: the areas' coordinates, about a centimetre

# The history at scale 1.
TICKETS, REPORTS, OPEN_TICKETS, RIDERS = 1_000_000, 5_000_000, 20_000, 200_000
OFFICE_STAFF, UNITS = 500, 300
COMMUNITIES = 6000
# code: (name, English name, streets, residents in 10,000s (2020 census): each district's
# share of the communities and of the riders' work).
DISTRICTS = {
    "310101": ("黄浦区", "Huangpu", 10, 66),
    "310104": ("徐汇区", "Xuhui", 13, 111),
    "310105": ("长宁区", "Changning", 10, 69),
    "310106": ("静安区", "Jing'an", 14, 98),
    "310107": ("普陀区", "Putuo", 10, 124),
    "310109": ("虹口区", "Hongkou", 8, 76),
    "310110": ("杨浦区", "Yangpu", 12, 124),
    "310112": ("闵行区", "Minhang", 14, 265),
    "310113": ("宝山区", "Baoshan", 12, 223),
    "310114": ("嘉定区", "Jiading", 12, 183),
    "310115": ("浦东新区", "Pudong", 36, 568),
    "310116": ("金山区", "Jinshan", 11, 80),
    "310117": ("松江区", "Songjiang", 15, 191),
    "310118": ("青浦区", "Qingpu", 11, 127),
    "310120": ("奉贤区", "Fengxian", 11, 114),
    "310151": ("崇明区", "Chongming", 16, 64),
}
CENTRAL = {"310101", "310104", "310105", "310106", "310107", "310109", "310110"}
AREA_SOURCE = "synthetic benchmark partition (not official boundaries)"
DISTRICT_SOURCE = "DataV GeoAtlas outline (2022), converted from GCJ-02"

PLATFORMS = (("meituan", "美团", 0.55), ("eleme", "饿了么", 0.35), ("sftc", "顺丰同城", 0.10))

# Reports by local hour: the lunch and dinner rushes of delivery riders.
HOURS = np.array(
    [
        0.4,
        0.25,
        0.15,
        0.1,
        0.1,
        0.2,
        0.5,
        1.0,
        1.4,
        1.2,
        1.6,
        2.6,
        2.8,
        1.8,
        1.2,
        1.1,
        1.4,
        2.2,
        2.6,
        2.2,
        1.6,
        1.2,
        0.9,
        0.6,
    ]
)
MONTHS = np.array([0.9, 0.75, 0.95, 1.0, 1.05, 1.15, 1.2, 1.2, 1.1, 1.0, 0.95, 0.9])
# Categories' shares by month (January first), and how a storm day multiplies them.
SEASONS = {
    "road_damage": [1.3, 1.3, 1.2, 1.0, 1.0, 1.6, 1.6, 1.1, 1.0, 0.9, 0.9, 1.0],
    "ebike_parking": [2.0, 1.8, 2.3, 2.4, 2.4, 2.2, 2.0, 2.0, 2.3, 2.4, 2.3, 2.1],
    "facility_damage": [0.8, 0.8, 0.8, 0.8, 0.8, 0.9, 1.1, 1.6, 1.6, 0.9, 0.8, 0.8],
    "fire_exit_blocked": [0.7, 0.7, 0.6, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.6, 0.7],
    "illegal_charging": [1.3, 1.2, 0.9, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6, 0.7, 0.9, 1.3],
    "waste": [1.0, 1.1, 1.0, 1.1, 1.3, 1.6, 1.7, 1.7, 1.4, 1.1, 1.0, 1.0],
    "other": [0.4] * 12,
}
STORM = {"road_damage": 3.0, "facility_damage": 3.0, "waste": 1.5}
# What the office does with a category's tickets: the share it rejects, and of the rest
# the share it dispatches to a unit (it fixes the others itself).
REJECTED = {"other": 0.15}
DISPATCHED = {
    "road_damage": 0.85,
    "facility_damage": 0.85,
    "waste": 0.6,
    "fire_exit_blocked": 0.6,
    "illegal_charging": 0.55,
    "ebike_parking": 0.4,
}
# The units a category goes to besides a street's own 城管中队, with their shares.
UNIT_KINDS = {
    "road_damage": {"roads": 0.7},
    "facility_damage": {"utility": 0.5, "roads": 0.2},
    "waste": {"property": 0.5},
    "fire_exit_blocked": {"property": 0.5},
    "illegal_charging": {"property": 0.5},
    "ebike_parking": {"property": 0.3},
}
PROPERTY_CATEGORIES = ("waste", "fire_exit_blocked", "illegal_charging", "ebike_parking")

WORDS = {
    "road_damage": ["路面有坑，电动车容易摔", "人行道砖松动翘起", "下雨后路面塌了一块"],
    "ebike_parking": ["人行道上电动车乱停，挡住盲道", "共享单车堆在路口", "电动车停在消防栓前"],
    "facility_damage": ["井盖缺失，已放了一个纸箱提醒", "路灯杆歪了", "护栏被撞坏"],
    "fire_exit_blocked": ["消防通道被杂物堵住", "楼道里堆满纸箱", "消防车道停满了车"],
    "illegal_charging": ["楼道里飞线充电", "电瓶车推进电梯充电", "窗口拉线给电动车充电"],
    "waste": ["垃圾堆在路边没人清", "垃圾桶满了溢出来", "建筑垃圾倒在绿化带里"],
    "other": ["路灯不亮，晚上很黑", "树枝快掉下来了", "路口红绿灯不亮"],
}
NOTES = {
    "resolve": ["已处置完毕", "已联系责任单位修复", "现场已清理"],
    "report_done": ["已修复，附照片", "已清运完毕", "已现场整改"],
    "check_fail": ["现场核查未完成，请返工", "照片与现场不符，请重新处置"],
    "deescalate": ["已督办，责任单位已落实"],
}
# The app's reasons, and how often an office gives each.
REJECTIONS = {"spam": 0.4, "not_actionable": 0.3, "not_our_responsibility": 0.2, "other": 0.1}
assert set(REJECTIONS) == REJECT_REASONS
RETURNS = tuple(sorted(RETURN_REASONS))
EXTENSION_REASONS = ("需要协调产权单位", "材料采购中", "需要夜间施工")
SHELVE_REASONS = ("待道路整体改造时一并处理", "涉及多方产权，需协调")
EXTENSION_STATES = ("pending", "approved", "denied")

# A ticket's status, as the plan numbers it.
STATUSES = (
    TicketStatus.NEW,
    TicketStatus.ACCEPTED,
    TicketStatus.IN_PROGRESS,
    TicketStatus.DISPATCHED,
    TicketStatus.AWAITING_CHECK,
    TicketStatus.SHELVED,
    TicketStatus.RESOLVED,
    TicketStatus.CLOSED,
    TicketStatus.REJECTED,
)
S = {status: code for code, status in enumerate(STATUSES)}
OPEN = [S[s] for s in STATUSES if s in OPEN_STATUSES]
WITH_UNIT = [S[s] for s in STATUSES if s in WITH_UNIT_STATUSES]
EXTENDING = [S[s] for s in STATUSES if s in EXTENDABLE]
RETENTION_DAYS = Settings.model_fields["retention_days"].default
AUTO_CLOSE_H = Settings.model_fields["auto_close_h"].default
ESCALATE_AFTER = Settings.model_fields["escalate_after"].default
WEBHOOK_HISTORY_DAYS = 7  # what the worker keeps of delivered events
WORKER_LEASE_S = Settings.model_fields["worker_lease_s"].default
# Big tables are loaded without their indexes and constraints, which are built after.
BULK_TABLES = (
    "tickets",
    "reports",
    "ticket_events",
    "points_ledger",
    "verifications",
    "dispatches",
    "riders",
    "rider_totals",
    "rider_activity",
    "rider_daily_activity",
    "platform_activity",
    "outbox_events",
    "webhook_deliveries",
)


# --- the run's frame ---------------------------------------------------------------------


class Stages:
    """Prints each stage's time as it ends, and keeps them for the summary."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        print(f"{name} …", file=sys.stderr, flush=True)
        started = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - started
        print(f"  {name}: {self.seconds[name]:.1f} s", file=sys.stderr, flush=True)


def scaled(count: int, scale: float, *, least: int = 1) -> int:
    return max(least, round(count * scale))


def libpq(url: str) -> str:
    """The SQLAlchemy URL as psycopg takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def drop_database(url: str, *, then_create: bool = False) -> None:
    name = make_url(url).database
    server = libpq(make_url(url).set(database="postgres").render_as_string(hide_password=False))
    with psycopg.connect(server, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if then_create:
            c.execute(f'CREATE DATABASE "{name}"')


# --- the map -----------------------------------------------------------------------------


@dataclass
class Street:
    code: str
    name: str
    district: str
    boundary: MultiPolygon
    communities: list[MultiPolygon]
    id: int = 0
    community_ids: list[int] = field(default_factory=list)
    # How busy it is: its share of the city's reports, and its communities' shares of it.
    weight: float = 1.0
    community_weights: np.ndarray = field(default_factory=lambda: np.ones(0))


def _polygonal(geometry: shapely.Geometry) -> MultiPolygon:
    parts: list[Polygon] = []
    for part in shapely.get_parts(geometry):
        if isinstance(part, Polygon):
            if not part.is_empty:
                parts.append(part)
        elif isinstance(part, MultiPolygon | shapely.GeometryCollection):
            parts.extend(_polygonal(part).geoms)
    return MultiPolygon(parts)


def district_outlines() -> dict[str, MultiPolygon]:
    """The districts' outlines in WGS-84, on the grid."""
    collection = json.loads(DATA.read_text(encoding="utf-8"))

    def to_wgs84(xy: np.ndarray) -> np.ndarray:
        return np.array([gcj02_to_wgs84(float(x), float(y)) for x, y in xy])

    outlines = {}
    for feature in collection["features"]:
        geometry = shapely.transform(shape(feature["geometry"]), to_wgs84)
        outlines[str(feature["properties"]["adcode"])] = _polygonal(
            shapely.set_precision(shapely.make_valid(geometry), GRID)
        )
    return outlines


def spread_points(rng: np.random.Generator, outline: MultiPolygon, n: int) -> np.ndarray:
    """``n`` random points inside ``outline``, none closer to another than a share of the
    spacing ``n`` points would have (so that no Voronoi cell is a sliver)."""
    min_x, min_y, max_x, max_y = outline.bounds
    shapely.prepare(outline)
    spacing = 0.5 * math.sqrt(outline.area / n)
    while True:
        kept: list[tuple[float, float]] = []
        cells: dict[tuple[int, int], list[tuple[float, float]]] = {}
        for _ in range(40):
            xs, ys = rng.uniform(min_x, max_x, 4 * n), rng.uniform(min_y, max_y, 4 * n)
            inside = shapely.contains_xy(outline, xs, ys)
            for x, y in zip(xs[inside], ys[inside], strict=True):
                gx, gy = int(x // spacing), int(y // spacing)
                near = (
                    p
                    for dx in (-1, 0, 1)
                    for dy in (-1, 0, 1)
                    for p in cells.get((gx + dx, gy + dy), ())
                )
                if any((x - px) ** 2 + (y - py) ** 2 < spacing**2 for px, py in near):
                    continue
                cells.setdefault((gx, gy), []).append((x, y))
                kept.append((x, y))
                if len(kept) == n:
                    return np.array(kept)
        spacing *= 0.8


def build_map(rng: np.random.Generator) -> tuple[dict[str, MultiPolygon], list[Street]]:
    """The districts' outlines and the synthetic streets with their communities: each
    district cut into Voronoi cells (its communities), grouped around spread-out seeds
    into its streets."""
    outlines = district_outlines()
    residents = np.array([d[3] for d in DISTRICTS.values()])
    counts = np.round(residents / residents.sum() * COMMUNITIES).astype(int)
    streets: list[Street] = []
    for (code, (name, _, n_streets, _)), n in zip(DISTRICTS.items(), counts, strict=True):
        outline = outlines[code]
        points = spread_points(rng, outline, int(n))
        min_x, min_y, max_x, max_y = outline.bounds
        extent = shapely.box(min_x - 0.05, min_y - 0.05, max_x + 0.05, max_y + 0.05)
        cells = shapely.get_parts(
            shapely.voronoi_polygons(shapely.MultiPoint(points), extend_to=extent, ordered=True)
        )
        communities = [
            _polygonal(cell) for cell in shapely.intersection(cells, outline, grid_size=GRID)
        ]
        # The streets' seeds as far apart as can be (each the farthest from those before).
        seeds = [int(rng.integers(len(points)))]
        distance = np.hypot(*(points - points[seeds[0]]).T)
        for _ in range(n_streets - 1):
            seeds.append(int(np.argmax(distance)))
            distance = np.minimum(distance, np.hypot(*(points - points[seeds[-1]]).T))
        owner = np.argmin(
            np.hypot(
                points[:, None, 0] - points[seeds][None, :, 0],
                points[:, None, 1] - points[seeds][None, :, 1],
            ),
            axis=1,
        )
        order = np.argsort([points[s][1] for s in seeds])[::-1]  # numbered north to south
        for number, k in enumerate(order, start=1):
            own = [
                communities[i] for i in np.flatnonzero(owner == k) if not communities[i].is_empty
            ]
            streets.append(
                Street(
                    code=f"{code}{number:03d}",
                    name=f"{name}第{number:02d}街道（示例）",
                    district=code,
                    boundary=_polygonal(shapely.union_all(own, grid_size=GRID)),
                    communities=own,
                )
            )
    return outlines, streets


def import_map(
    database: Database, outlines: dict[str, MultiPolygon], streets: list[Street]
) -> None:
    """The map through the app's import (which checks every area against its parent)."""
    features: list[dict[str, Any]] = []

    def feature(boundary: MultiPolygon, **properties: Any) -> None:
        features.append(
            {"type": "Feature", "geometry": mapping(boundary), "properties": properties}
        )

    for code, (name, english, _, _) in DISTRICTS.items():
        feature(
            outlines[code], code=code, name=name, name_en=f"{english} District", level="district"
        )
    for street in streets:
        english = DISTRICTS[street.district][1]
        number = street.code[-3:]
        feature(
            street.boundary,
            code=street.code,
            name=street.name,
            name_en=f"{english} Street {number} (synthetic)",
            level="street",
            parent_code=street.district,
        )
        for i, community in enumerate(street.communities, start=1):
            feature(
                community,
                code=f"{street.code}{i:03d}",
                name=f"{street.name}第{i:03d}社区（示例）",
                name_en=f"{english} Street {number} Community {i:03d} (synthetic)",
                level="community",
                parent_code=street.code,
            )
    with database.transaction() as session:
        import_areas(
            session, {"type": "FeatureCollection", "features": features}, source=AREA_SOURCE
        )
        session.execute(update(Area).where(Area.level == "district").values(source=DISTRICT_SOURCE))
    with database.session(write=False) as session:
        ids = dict(session.execute(select(Area.code, Area.id)).all())
    for street in streets:
        street.id = ids[street.code]
        street.community_ids = [
            ids[f"{street.code}{i:03d}"] for i in range(1, len(street.communities) + 1)
        ]


# --- the city's people and reference data ------------------------------------------------


@dataclass(frozen=True)
class CategoryRow:
    id: int
    code: str
    respond_h: float
    resolve_h: float
    dedup_radius_m: int
    dedup_window_h: int


@dataclass
class UnitRow:
    id: int
    code: str
    kind: str  # "chengguan", "roads", "utility", "property"
    streets: list[int]
    categories: list[str] | None


@dataclass
class Structure:
    """What the history is written on: areas, categories, platforms, units and staff."""

    districts: dict[str, int]
    streets: list[Street]
    categories: list[CategoryRow]
    platforms: list[dict[str, Any]]
    units: list[UnitRow]
    staff: list[dict[str, Any]]  # username, role, area, unit, id
    password: str


def seed_calendar_years(database: Database, start: datetime, now: datetime) -> None:
    """Every year of the history, and the next, as the worker would have added them year
    by year from chinesecalendar (a year it does not know counts Monday to Friday)."""
    with database.transaction() as session:
        for year in range(start.year, now.year + 2):
            known = seed_year(year)
            if known is not None:
                set_year(
                    session,
                    year,
                    data=YearInput(sorted(known.holidays), sorted(known.workdays)),
                    source="chinesecalendar",
                )


def make_units(database: Database, streets: list[Street]) -> list[UnitRow]:
    """A 城管中队 in each street (every category), a road contractor and a utility in each
    district, and property companies (waste, fire exits, charging, parking) serving a
    few streets each, up to ``UNITS`` in all."""
    by_district: dict[str, list[Street]] = {}
    for street in streets:
        by_district.setdefault(street.district, []).append(street)
    inputs: list[tuple[str, UnitInput]] = []
    for street in streets:
        inputs.append(
            (
                "chengguan",
                UnitInput(
                    code=f"cg{street.code}",
                    name=f"{street.name}城管中队",
                    kind=UnitKind.DEPARTMENT,
                    streets=[street.code],
                ),
            )
        )
    for code, own in by_district.items():
        name = DISTRICTS[code][0]
        inputs.append(
            (
                "roads",
                UnitInput(
                    code=f"roads{code}",
                    name=f"{name}道路养护（示例承包商）",
                    kind=UnitKind.CONTRACTOR,
                    streets=[s.code for s in own],
                    categories=["road_damage", "facility_damage"],
                ),
            )
        )
        inputs.append(
            (
                "utility",
                UnitInput(
                    code=f"utility{code}",
                    name=f"{name}管线设施（示例）",
                    kind=UnitKind.UTILITY,
                    streets=[s.code for s in own],
                    categories=["facility_damage"],
                ),
            )
        )
    ordered = [s for own in by_district.values() for s in own]
    for i in range(max(0, UNITS - len(inputs))):
        first = ordered[(3 * i) % len(ordered)]
        served = [s.code for s in by_district[first.district]][:]
        at = served.index(first.code)
        inputs.append(
            (
                "property",
                UnitInput(
                    code=f"property{i + 1:03d}",
                    name=f"示例物业公司{i + 1:03d}",
                    kind=UnitKind.PROPERTY,
                    streets=served[at : at + 3],
                    categories=list(PROPERTY_CATEGORIES),
                ),
            )
        )
    street_ids = {s.code: s.id for s in streets}
    units = []
    with database.transaction() as session:
        for kind, data in inputs:
            unit = create_unit(session, data)
            units.append(
                UnitRow(
                    unit.id,
                    unit.code,
                    kind,
                    [street_ids[c] for c in data.streets],
                    list(data.categories) if data.categories else None,
                )
            )
    return units


def make_staff(
    database: Database, streets: list[Street], units: list[UnitRow], rng: np.random.Generator
) -> tuple[list[dict[str, Any]], str]:
    """An admin, two district users per district, the officers (one per street, the rest
    where the streets are busy), and a crew account per unit, all with one password
    (hashed once, as the app hashes one)."""
    password = "city-" + secrets.token_urlsafe(12)
    password_hash = hash_password(password, Settings(_env_file=None, secret_key=SECRET))
    accounts: list[dict[str, Any]] = [
        {"username": "admin", "role": StaffRole.ADMIN, "area": None, "unit": None}
    ]
    for code in DISTRICTS:
        for k in (1, 2):
            accounts.append(
                {"username": f"district_{code}_{k}", "role": StaffRole.DISTRICT, "area": code}
            )
    officers = OFFICE_STAFF - len(accounts)
    weights = np.array([s.weight for s in streets])
    extra = rng.multinomial(max(0, officers - len(streets)), weights / weights.sum())
    for street, more in zip(streets, extra, strict=True):
        for k in range(1, 2 + int(more)):
            accounts.append(
                {
                    "username": f"officer_{street.code}_{k}",
                    "role": StaffRole.OFFICER,
                    "area": street.code,
                }
            )
    for unit in units:
        accounts.append(
            {"username": f"crew_{unit.code}", "role": StaffRole.CREW, "unit": unit.code}
        )
    areas = {s.code: s.id for s in streets}
    with database.session(write=False) as session:
        areas |= dict(
            session.execute(select(Area.code, Area.id).where(Area.level == "district")).all()
        )
    unit_ids = {u.code: u.id for u in units}
    now = utcnow()
    rows = []
    for account in accounts:
        account["id"] = uuid.uuid4()
        rows.append(
            {
                "id": account["id"],
                "username": account["username"],
                "display_name": None,
                "password_hash": password_hash,
                "role": account["role"].value,
                "area_id": areas.get(account.get("area") or ""),
                "unit_id": unit_ids.get(account.get("unit") or ""),
                "active": True,
                "may_publish_alerts": False,
                "created_at": now,
                "updated_at": now,
            }
        )
    with database.transaction() as session:
        session.execute(
            text(
                "INSERT INTO staff (id, username, display_name, password_hash, role, area_id, "
                "unit_id, active, may_publish_alerts, created_at, updated_at) VALUES (:id, "
                ":username, :display_name, :password_hash, :role, :area_id, :unit_id, :active, "
                ":may_publish_alerts, :created_at, :updated_at)"
            ),
            rows,
        )
    return accounts, password


def make_platforms(database: Database) -> list[dict[str, Any]]:
    """The three platforms, through the app, each with a webhook (to a receiver on this
    machine that the bench of the day points wherever it listens)."""
    made = []
    with database.transaction() as session:
        for i, (code, name, share) in enumerate(PLATFORMS):
            new = create_platform(session, code=code, name=name)
            url = f"http://127.0.0.1:{18081 + i}/hooks/{code}"
            secret = "whsec_" + secrets.token_urlsafe(32)
            session.add(Webhook(platform_id=new.platform.id, url=url, secret=secret))
            made.append(
                {
                    "id": new.platform.id,
                    "code": code,
                    "name": name,
                    "share": share,
                    "api_key": new.api_key,
                    "webhook_url": url,
                    "webhook_secret": secret,
                }
            )
    return made


# --- the history, planned in arrays --------------------------------------------------------


def lognormal(
    rng: np.random.Generator, median: float | np.ndarray, sigma: float, n: int
) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(n))


def staff_time(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """``t``, or if it falls in the night (23:00 to 07:00 in the city) the next morning
    between 07:00 and 08:30: when offices and crews act."""
    local = t + LOCAL
    second = np.mod(local, DAY)
    late, early = second >= 23 * H, second < 7 * H
    morning = local - second + np.where(late, DAY, 0.0) + 7 * H + rng.uniform(0, 1.5 * H, t.shape)
    return np.where(late | early, morning - LOCAL, t)


def new_uuids(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` random (version 4) UUIDs as 16-byte values."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return raw.view("V16").reshape(n)


def uuid_bytes(values: Sequence[uuid.UUID | None]) -> np.ndarray:
    """UUIDs as 16-byte values (None: the nil UUID, which the load reads as NULL)."""
    return np.frombuffer(
        b"".join((v or uuid.UUID(int=0)).bytes for v in values), dtype="V16"
    ).copy()


def ticket_refs(rng: np.random.Generator, n: int) -> np.ndarray:
    """References as ``new_ticket_ref`` makes them: 12 random Crockford base32 characters
    in groups of four."""
    alphabet = np.frombuffer(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ", dtype=np.uint8)
    chars = alphabet[rng.integers(0, 32, size=(n, 12))]
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    joined = np.hstack([chars[:, :4], dash, chars[:, 4:8], dash, chars[:, 8:]])
    return joined.view("S14").reshape(n)


def gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``app.geo.coords.wgs84_to_gcj02`` on arrays (points in China)."""
    x, y = lon - 105.0, lat - 35.0
    pi = math.pi
    d_lat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * np.sqrt(np.abs(x))
        + (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
        + (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * pi) + 320 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    )
    d_lon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * np.sqrt(np.abs(x))
        + (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
        + (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    )
    rad_lat = lat / 180.0 * pi
    magic = 1 - coords.EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((coords.A * (1 - coords.EE)) / (magic * sqrt_magic) * pi)
    d_lon = (d_lon * 180.0) / (coords.A / sqrt_magic * np.cos(rad_lat) * pi)
    return lon + d_lon, lat + d_lat


def coarse(values: np.ndarray) -> np.ndarray:
    """``app.privacy``'s coarse grid on arrays: the centre of the 0.001° cell."""
    return np.round((np.floor_divide(values, 0.001) + 0.5) * 0.001, 6)


class WorkingHours:
    """The app's working calendar as cumulative working hours, day by day, so that the
    working hours between two instants (``WorkingCalendar.between``) are a difference."""

    def __init__(self, calendar: Any, first: date, days: int) -> None:
        self.first_midnight = (first - date(1970, 1, 1)).days * DAY - LOCAL
        opens, closes = np.zeros(days), np.zeros(days)
        for i in range(days):
            day = first + timedelta(days=i)
            year = calendar.year(day.year)
            if year.tz != "Asia/Shanghai":
                raise SystemExit(f"the calendar of {day.year} is not on Shanghai's time")
            midnight = self.first_midnight + i * DAY
            if year.is_working_day(day):
                opens[i] = midnight + year.start.hour * H + year.start.minute * 60
                closes[i] = midnight + year.end.hour * H + year.end.minute * 60
            else:
                opens[i] = closes[i] = midnight
        self.opens, self.closes = opens, closes
        self.before = np.concatenate([[0.0], np.cumsum(closes - opens)[:-1]])

    def at(self, t: np.ndarray) -> np.ndarray:
        known = ~np.isnan(t)
        i = np.floor((np.where(known, t, self.first_midnight) - self.first_midnight) / DAY)
        i = i.astype(np.int64)
        worked = np.clip(t - self.opens[i], 0, self.closes[i] - self.opens[i]) + self.before[i]
        return np.where(known, worked, np.nan)

    def between(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Working hours from ``start`` to ``end``, as the app rounds them (NaN: none)."""
        return np.round(np.maximum(self.at(end) - self.at(start), 0) / H, 4)


def points_in(
    rng: np.random.Generator, polygons: Sequence[MultiPolygon], which: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A random point inside ``polygons[which[i]]`` for every i."""
    x, y = np.empty(len(which)), np.empty(len(which))
    order = np.argsort(which, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(which[order])) + 1)
    for rows in groups:
        if not len(rows):
            continue
        polygon = polygons[int(which[rows[0]])]
        shapely.prepare(polygon)
        min_x, min_y, max_x, max_y = polygon.bounds
        found_x: list[np.ndarray] = []
        found_y: list[np.ndarray] = []
        missing = len(rows)
        while missing > 0:
            cx = rng.uniform(min_x, max_x, 2 * missing + 16)
            cy = rng.uniform(min_y, max_y, 2 * missing + 16)
            inside = shapely.contains_xy(polygon, cx, cy)
            found_x.append(cx[inside][:missing])
            found_y.append(cy[inside][:missing])
            missing -= int(inside.sum())
        x[rows], y[rows] = (
            np.concatenate(found_x)[: len(rows)],
            np.concatenate(found_y)[: len(rows)],
        )
    return x, y


def efraimidis_pick(rng: np.random.Generator, weights: np.ndarray, k: int) -> np.ndarray:
    """``k`` indices drawn without replacement with probabilities after ``weights``."""
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    keys = np.log(rng.random(len(weights))) / np.maximum(weights, 1e-300)
    return np.argpartition(-keys, k - 1)[:k]


# The steps a ticket can take, in the order they happen (each later than those before it
# on its path): the columns of the plan that hold their times.
STEPS = (
    "ack", "acc", "rej", "ost", "res", "d1", "ret", "d2", "k", "s", "xr", "xa", "u1",
    "f", "k2", "u2", "p", "v0", "r2", "vf1", "vf2", "cl", "sh",
)  # fmt: skip
# The steps that make a new version of the ticket (everything an office, a crew or a
# rider's "not fixed" does; not a confirmation or the worker's notes).
VERSIONED = (*tuple(s for s in STEPS if s not in ("vf1", "vf2")), "de")


@dataclass
class History:
    """The tickets' and reports' plan: arrays, one element per ticket (``t``) or report
    (``r``), loaded into staging tables and turned into the app's rows in SQL."""

    now: float
    t: dict[str, np.ndarray] = field(default_factory=dict)
    r: dict[str, np.ndarray] = field(default_factory=dict)
    riders: dict[str, np.ndarray] = field(default_factory=dict)
    verifications: dict[str, np.ndarray] = field(default_factory=dict)
    dispatches: dict[str, np.ndarray] = field(default_factory=dict)
    polygons: list[MultiPolygon] = field(default_factory=list)  # the communities, in order
    open_natural: int = 0  # tickets open where their lives took them, before more were held


def plan_history(
    rng: np.random.Generator, city: Structure, *, scale: float, now: datetime, hours: WorkingHours
) -> History:
    history = History(now=now.timestamp())
    _plan_tickets(rng, city, history, scale=scale)
    _plan_lifecycles(rng, city, history)
    _freeze_open_tickets(rng, history, wanted=scaled(OPEN_TICKETS, scale))
    _plan_deadline_marks(rng, history)
    _plan_rider_ids(rng, city, history, scale=scale)
    _plan_reports(rng, city, history, scale=scale)
    _plan_ticket_columns(rng, history, hours=hours)
    _plan_dispatches(history, hours=hours)
    _plan_rider_times(rng, history)
    return history


def _plan_tickets(
    rng: np.random.Generator, city: Structure, history: History, *, scale: float
) -> None:
    """When and where each ticket was opened, and its category."""
    t, now = history.t, history.now
    n = scaled(TICKETS, scale)
    start = now - HISTORY_DAYS * DAY
    first_day = datetime.fromtimestamp(start + LOCAL, UTC).date()
    days = [first_day + timedelta(days=i) for i in range(HISTORY_DAYS + 1)]
    months = np.array([d.month for d in days])
    summer = np.flatnonzero(np.isin(months, (7, 8, 9)))
    storms = set(rng.choice(summer, size=min(len(summer), 8), replace=False).tolist())
    storm_day = np.array([i in storms for i in range(len(days))])
    weights = (
        (0.55 + 0.9 * np.arange(len(days)) / len(days))  # the program grows
        * np.array([1.12 if d.weekday() >= 5 else 1.0 for d in days])
        * MONTHS[months - 1]
        * np.where(storm_day, 2.2, 1.0)
    )
    midnights = np.array([(d - date(1970, 1, 1)).days * DAY - LOCAL for d in days])
    created = np.empty(n)
    todo = np.arange(n)
    while len(todo):
        day = rng.choice(len(days), size=len(todo), p=weights / weights.sum())
        hour = rng.choice(24, size=len(todo), p=HOURS / HOURS.sum()) + rng.random(len(todo))
        created[todo] = midnights[day] + hour * H
        todo = todo[(created[todo] <= start) | (created[todo] >= now - 1)]
    created.sort()
    day = np.floor((created - midnights[0]) / DAY).astype(np.int64)
    month, storm = months[day] - 1, storm_day[day]

    codes = [c.code for c in city.categories]
    seasons = np.array([SEASONS.get(code, [0.5] * 12) for code in codes])
    boost = np.array([STORM.get(code, 1.0) for code in codes])
    p = seasons[:, month] * np.where(storm, boost[:, None], 1.0)
    cumulative = np.cumsum(p / p.sum(axis=0), axis=0)
    category = (rng.random(n)[None, :] > cumulative).sum(axis=0).clip(0, len(codes) - 1)

    polygons = [c for s in city.streets for c in s.communities]
    community_ids = np.array([i for s in city.streets for i in s.community_ids])
    street_of = np.array([k for k, s in enumerate(city.streets) for _ in s.communities])
    shares = np.concatenate([s.weight * s.community_weights for s in city.streets])
    community = rng.choice(len(polygons), size=n, p=shares / shares.sum())
    lon, lat = points_in(rng, polygons, community)
    street = street_of[community]

    t["n"] = np.arange(n, dtype=np.int32)
    t["id"] = new_uuids(rng, n)
    t["ref"] = ticket_refs(rng, n)
    t["cat"] = category.astype(np.int32)  # the index into city.categories
    t["category_id"] = np.array([c.id for c in city.categories], dtype=np.int32)[category]
    t["street"] = street.astype(np.int32)  # the index into city.streets
    t["street_id"] = np.array([s.id for s in city.streets], dtype=np.int32)[street]
    t["community"] = community.astype(np.int32)  # the index into the map's communities
    t["community_id"] = community_ids[community].astype(np.int32)
    t["district_id"] = np.array([city.districts[s.district] for s in city.streets], dtype=np.int32)[
        street
    ]
    t["lon"], t["lat"] = lon, lat
    t["c"] = created
    history.polygons = polygons


def _has(t: dict[str, np.ndarray], step: str) -> np.ndarray:
    return ~np.isnan(t[step])


def status_of(t: dict[str, np.ndarray]) -> np.ndarray:
    """Each ticket's status after the steps it has taken (each step's target, in order)."""
    status = np.full(len(t["c"]), S[TicketStatus.NEW], dtype=np.int16)
    for step, target in (
        ("acc", TicketStatus.ACCEPTED),
        ("rej", TicketStatus.REJECTED),
        ("ost", TicketStatus.IN_PROGRESS),
        ("res", TicketStatus.RESOLVED),
        ("d1", TicketStatus.DISPATCHED),
        ("ret", TicketStatus.ACCEPTED),
        ("d2", TicketStatus.DISPATCHED),
        ("s", TicketStatus.IN_PROGRESS),
        ("u1", TicketStatus.AWAITING_CHECK),
        ("f", TicketStatus.DISPATCHED),
        ("u2", TicketStatus.AWAITING_CHECK),
        ("p", TicketStatus.RESOLVED),
        ("v0", TicketStatus.ACCEPTED),
        ("r2", TicketStatus.RESOLVED),
        ("cl", TicketStatus.CLOSED),
        ("sh", TicketStatus.SHELVED),
    ):
        status[_has(t, step)] = S[target]
    return status


def status_before(t: dict[str, np.ndarray], rows: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The status of tickets ``rows`` just before ``at`` (one instant each)."""
    earlier = {step: np.where(t[step][rows] < at, t[step][rows], np.nan) for step in STEPS}
    earlier["c"] = t["c"][rows]
    return status_of(earlier)


def cut(t: dict[str, np.ndarray], rows: np.ndarray, at: np.ndarray) -> None:
    """Tickets ``rows`` took no step after ``at``."""
    for step in STEPS:
        column = t[step]
        column[rows] = np.where(column[rows] <= at, column[rows], np.nan)


def _plan_lifecycles(rng: np.random.Generator, city: Structure, history: History) -> None:
    """Every ticket's life from opening to closing (or to now): what the office, the units,
    the riders passing by and the clock did, and when; each life then cut at now."""
    t, now = history.t, history.now
    n = len(t["c"])
    cats = city.categories
    c = t["c"]
    respond = np.array([x.respond_h for x in cats])[t["cat"]] * H
    resolve = np.array([x.resolve_h for x in cats])[t["cat"]] * H
    codes = np.array([x.code for x in cats])[t["cat"]]
    nan = np.full(n, np.nan)

    def chance(p: float | np.ndarray) -> np.ndarray:
        return rng.random(n) < p

    def later(at: np.ndarray, earlier: np.ndarray, gap: float = 60.0) -> np.ndarray:
        return np.maximum(at, earlier + gap)

    rejected = chance(np.array([REJECTED.get(x.code, 0.05) for x in cats])[t["cat"]])
    dispatched = ~rejected & chance(np.array([DISPATCHED.get(x.code, 0.5) for x in cats])[t["cat"]])
    office = ~rejected & ~dispatched
    ack = np.where(chance(0.6), staff_time(rng, c + lognormal(rng, 25 * 60, 1.0, n)), nan)
    first = np.fmax(c, ack)
    decided = later(staff_time(rng, first + lognormal(rng, 0.25 * respond, 0.9, n)), first, 30)
    acc, rej = np.where(rejected, nan, decided), np.where(rejected, decided, nan)
    fixed = np.maximum(c + lognormal(rng, 0.38 * resolve, 0.75, n), decided + 1800)

    ost = np.where(office & chance(0.5), staff_time(rng, acc + lognormal(rng, H, 1.0, n)), nan)
    ost = np.where(ost < fixed, ost, nan)
    res = np.where(office, staff_time(rng, np.maximum(fixed, np.fmax(acc, ost) + 600)), nan)

    unit1, unit_f = _choose_units(rng, city, t, codes)
    chengguan = np.array([u.kind == "chengguan" for u in city.units])
    returned = dispatched & ~chengguan[unit1] & chance(0.04)
    unit_f = np.where(returned, unit_f, unit1)
    d1 = np.where(dispatched, later(staff_time(rng, acc + lognormal(rng, 1200, 0.8, n)), acc), nan)
    ret = np.where(returned, later(staff_time(rng, d1 + lognormal(rng, 3 * H, 1.0, n)), d1), nan)
    d2 = np.where(returned, later(staff_time(rng, ret + lognormal(rng, H, 0.8, n)), ret), nan)
    df = np.fmax(d1, d2)
    k = np.where(
        dispatched & chance(0.92),
        later(staff_time(rng, df + lognormal(rng, 2400, 1.0, n)), df),
        nan,
    )
    s = np.where(
        dispatched,
        later(staff_time(rng, np.fmax(df, k) + lognormal(rng, 1800, 1.0, n)), np.fmax(df, k)),
        nan,
    )
    extended = dispatched & chance(0.06)
    ext_hours = rng.choice([24.0, 48.0, 72.0], size=n)
    approved = extended & chance(0.85)
    fixed_unit = np.where(approved, fixed + rng.uniform(0.3, 0.9, n) * ext_hours * H, fixed)
    xr = np.where(extended, s + rng.uniform(0.1, 0.4, n) * np.maximum(fixed - s, H), nan)
    xa = np.where(extended, later(staff_time(rng, xr + lognormal(rng, 2 * H, 0.8, n)), xr), nan)
    u1 = np.where(
        dispatched,
        staff_time(
            rng, np.maximum(fixed_unit - lognormal(rng, 1.5 * H, 0.8, n), np.fmax(s, xa) + 600)
        ),
        nan,
    )
    failed = dispatched & chance(0.06)
    f = np.where(failed, later(staff_time(rng, u1 + lognormal(rng, 3 * H, 0.8, n)), u1), nan)
    k2 = np.where(
        failed & chance(0.9), later(staff_time(rng, f + lognormal(rng, 1800, 1.0, n)), f), nan
    )
    done = np.fmax(f, k2)
    u2 = np.where(failed, later(staff_time(rng, done + lognormal(rng, 4 * H, 0.8, n)), done), nan)
    done = np.fmax(u1, u2)
    p = np.where(
        dispatched, later(staff_time(rng, done + lognormal(rng, 2 * H, 1.0, n)), done), nan
    )
    r1 = np.fmax(res, p)
    reopened = ~rejected & chance(0.02)
    v0 = np.where(reopened, r1 + rng.uniform(1, 48, n) * H, nan)
    r2 = np.where(reopened, later(staff_time(rng, v0 + lognormal(rng, 20 * H, 0.8, n)), v0), nan)
    rf = np.fmax(r1, r2)
    by_office = staff_time(rng, rf + lognormal(rng, 10 * H, 1.0, n))
    closed_by_office = (
        chance(0.15) & (by_office < rf + (AUTO_CLOSE_H - 1) * H) & (by_office > rf + 60)
    )
    cl = np.where(
        closed_by_office, by_office, rf + AUTO_CLOSE_H * H + rng.uniform(1, 300, n)
    )  # the worker's sweep, every five minutes
    vf1 = np.where(chance(0.25), rf + rng.uniform(0.5, 60, n) * H, nan)
    vf2 = np.where(chance(0.1), vf1 + rng.uniform(0.1, 10, n) * H, nan)
    vf1, vf2 = np.where(vf1 < cl - 60, vf1, nan), np.where(vf2 < cl - 60, vf2, nan)

    t.update(
        ack=ack, acc=acc, rej=rej, ost=ost, res=res, d1=d1, ret=ret, d2=d2, k=k, s=s, xr=xr,
        xa=xa, u1=u1, f=f, k2=k2, u2=u2, p=p, v0=v0, r2=r2, vf1=vf1, vf2=vf2, cl=cl, sh=nan.copy(),
    )  # fmt: skip
    t["respond_by"], t["resolve_by0"] = c + respond, c + resolve
    t["ext_hours"], t["approved"] = np.where(extended, ext_hours, np.nan), approved
    t["closed_by_office"] = closed_by_office
    t["unit1"] = np.array([u.id for u in city.units], dtype=np.int32)[unit1]
    t["unit_f"] = np.array([u.id for u in city.units], dtype=np.int32)[unit_f]
    crews = {s["unit"]: s["id"] for s in city.staff if s["role"] is StaffRole.CREW}
    crew_ids = uuid_bytes([crews[u.code] for u in city.units])
    t["crew1_id"], t["crew_f_id"] = crew_ids[unit1], crew_ids[unit_f]
    t["officer_id"], t["district_user_id"] = _choose_office_staff(rng, city, t)
    t["reject_reason"] = rng.choice(len(REJECTIONS), size=n, p=list(REJECTIONS.values()))
    t["return_reason"] = rng.choice(len(RETURNS), size=n)
    t["words"] = rng.integers(0, 3, size=n)  # which of the notes and reasons each one uses
    cut(t, np.arange(n), np.full(n, now))
    history.open_natural = int(np.isin(status_of(t), OPEN).sum())


def _choose_units(
    rng: np.random.Generator, city: Structure, t: dict[str, np.ndarray], codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The unit each ticket would be dispatched to (one serving its street and category,
    by the category's shares of the kinds of unit), and its street's 城管中队 (who takes
    what another unit hands back)."""
    n = len(codes)
    index = {u.id: i for i, u in enumerate(city.units)}
    first, own = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    for k, street in enumerate(city.streets):
        rows = np.flatnonzero(t["street"] == k)
        serving = [u for u in city.units if street.id in u.streets]
        kinds: dict[str, list[int]] = {}
        for u in serving:
            kinds.setdefault(u.kind, []).append(index[u.id])
        own[rows] = kinds["chengguan"][0]
        first[rows] = own[rows]
        draw = rng.random(len(rows))
        for code, shares in UNIT_KINDS.items():
            of_code = codes[rows] == code
            floor = 0.0
            for kind, share in shares.items():
                chosen = of_code & (draw >= floor) & (draw < floor + share)
                floor += share
                if kind in kinds and chosen.any():
                    first[rows[chosen]] = rng.choice(kinds[kind], size=int(chosen.sum()))
    return first, own


def _choose_office_staff(
    rng: np.random.Generator, city: Structure, t: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The officer of the ticket's street who works it, and the district user who
    decides its extensions and shelving."""
    officers: dict[str, list[uuid.UUID]] = {}
    districts: dict[str, list[uuid.UUID]] = {}
    for account in city.staff:
        if account["role"] is StaffRole.OFFICER:
            officers.setdefault(account["area"], []).append(account["id"])
        elif account["role"] is StaffRole.DISTRICT:
            districts.setdefault(account["area"], []).append(account["id"])
    n = len(t["c"])
    officer, district = np.zeros(n, dtype="V16"), np.zeros(n, dtype="V16")
    for k, street in enumerate(city.streets):
        rows = np.flatnonzero(t["street"] == k)
        own = uuid_bytes(officers[street.code])
        officer[rows] = own[rng.integers(0, len(own), size=len(rows))]
        users = uuid_bytes(districts[street.district])
        district[rows] = users[rng.integers(0, len(users), size=len(rows))]
    return officer, district


def _freeze_open_tickets(rng: np.random.Generator, history: History, *, wanted: int) -> None:
    """Hold more tickets open, up to ``wanted``: older ones that stopped at some stage of
    their life (still new, accepted, with a unit, waiting for the check, or shelved)."""
    t, now = history.t, history.now
    n = len(t["c"])
    t["sh_from"] = np.full(n, -1, dtype=np.int16)
    t["review_on"] = np.full(n, -1, dtype=np.int32)
    more = wanted - history.open_natural
    candidates = np.flatnonzero(~np.isin(status_of(t), OPEN) & np.isnan(t["rej"]))
    if more <= 0 or not len(candidates):
        return
    age = (now - t["c"][candidates]) / DAY
    rows = candidates[efraimidis_pick(rng, np.exp(-age / 20), min(more, len(candidates)))]
    unit = _has(t, "d1")[rows]
    draw = rng.random(len(rows))
    stage = np.where(
        unit,
        np.select(
            [draw < 0.2, draw < 0.3, draw < 0.55, draw < 0.75, draw < 0.85],
            ["new", "accepted", "dispatched", "in_progress", "awaiting_check"],
            "shelved",
        ),
        np.select(
            [draw < 0.25, draw < 0.55, draw < 0.75], ["new", "accepted", "in_progress"], "shelved"
        ),
    )
    u = rng.random(len(rows))

    def between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + u * (b - a)

    g = {step: t[step][rows] for step in STEPS}
    df = np.fmax(g["d1"], g["d2"])
    after_acc = np.fmin(np.fmin(g["ost"], g["res"]), g["d1"])
    office_progress = _has(g, "ost") & ~unit
    at = np.select(
        [
            stage == "new",
            stage == "accepted",
            stage == "dispatched",
            (stage == "in_progress") & unit,
            stage == "in_progress",
            stage == "awaiting_check",
        ],
        [
            between(t["c"][rows], g["acc"]),
            between(g["acc"], after_acc),
            between(df, g["s"]),
            between(g["s"], g["u1"]),
            np.where(office_progress, between(g["ost"], g["res"]), between(g["acc"], after_acc)),
            between(g["u1"], np.fmin(g["f"], g["p"])),
        ],
        # Shelved from where the unit or the office is at.
        np.where(unit, between(df, g["u1"]), between(g["acc"], after_acc)),
    )
    cut(t, rows, at)
    # A unit at work on a fifth of them asked for more time, and waits for the district.
    ask = np.flatnonzero((stage == "in_progress") & unit & np.isnan(t["xr"][rows]))
    ask = ask[rng.random(len(ask)) < 0.2]
    asking = rows[ask]
    t["xr"][asking] = g["s"][ask] + rng.random(len(ask)) * (at[ask] - g["s"][ask])
    t["ext_hours"][asking] = rng.choice([24.0, 48.0, 72.0], size=len(ask))
    t["approved"][asking] = False
    shelved = rows[stage == "shelved"]
    t["sh"][shelved] = at[stage == "shelved"] + 1
    t["sh_from"][shelved] = status_before(t, shelved, t["sh"][shelved])
    today = datetime.fromtimestamp(now + LOCAL, UTC).date()
    t["review_on"][shelved] = (today - date(1970, 1, 1)).days + rng.integers(
        1, 61, size=len(shelved)
    )


@dataclass
class _Clock:
    """What the worker's sweeps have left on the tickets so far: escalations, breaches,
    and the marks of the deadline that matters (when they were worked out, the warning's
    and the escalation's times, and when the sweeps would reach each)."""

    n: int
    escalated: np.ndarray = field(init=False)
    escalated_at: np.ndarray = field(init=False)
    respond_breached: np.ndarray = field(init=False)
    resolve_breached: np.ndarray = field(init=False)
    resolve_breached_due: np.ndarray = field(init=False)
    marked: np.ndarray = field(init=False)
    warn_at: np.ndarray = field(init=False)
    escalate_at: np.ndarray = field(init=False)
    warned: np.ndarray = field(init=False)
    escalating: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.escalated = np.zeros(self.n, dtype=bool)
        for name in (
            "escalated_at", "respond_breached", "resolve_breached", "resolve_breached_due",
            "marked", "warn_at", "escalate_at", "warned", "escalating",
        ):  # fmt: skip
            setattr(self, name, np.full(self.n, np.nan))

    def phase(
        self,
        rng: np.random.Generator,
        *,
        active: np.ndarray,
        start: np.ndarray,
        end: np.ndarray,
        created: np.ndarray,
        deadline: np.ndarray,
        fix: bool = True,
    ) -> np.ndarray:
        """One stretch on the clock towards ``deadline`` (its marks worked out afresh at
        its start; the fix's deadline unless not ``fix``): the sweeps' breach and
        escalation while it lasts; returns when the warning was given (NaN: none)."""
        n = self.n
        allowance = deadline - created
        marked = start + rng.uniform(0, 30, n)  # the marks' sweep: every 30 s
        warn_at = created + WARN_AT * allowance
        escalate_at = deadline + ESCALATE_AFTER * allowance
        warned = np.maximum(warn_at, marked) + rng.uniform(0, 30, n)
        escalating = np.maximum(escalate_at, marked) + rng.uniform(0, 30, n)
        breach = np.maximum(deadline, start) + rng.uniform(0, 60, n)  # every minute
        breached = fix & active & (breach < end) & np.isnan(self.resolve_breached)
        self.resolve_breached = np.where(breached, breach, self.resolve_breached)
        self.resolve_breached_due = np.where(breached, deadline, self.resolve_breached_due)
        escalates = active & (escalating < end) & ~self.escalated
        self.escalated |= escalates
        self.escalated_at = np.where(escalates, escalating, self.escalated_at)
        for name, value in (
            ("marked", marked),
            ("warn_at", warn_at),
            ("escalate_at", escalate_at),
            ("warned", warned),
            ("escalating", escalating),
        ):
            setattr(self, name, np.where(active, value, getattr(self, name)))
        return np.where(active & (warned < end) & (warned < deadline), warned, np.nan)


def _plan_deadline_marks(rng: np.random.Generator, history: History) -> None:
    """The worker's marks, warnings, breaches and escalations over each ticket's life
    (app.tickets.deadlines and .sla), a district taking most escalations back before the
    ticket ends, and the retention purge of the tickets that ended long enough ago."""
    t, now = history.t, history.now
    n, c = len(t["c"]), t["c"]
    nan = np.full(n, np.nan)
    extended = t["approved"] & _has(t, "xa")
    t["resolve_by"] = np.where(extended, t["resolve_by0"] + t["ext_hours"] * H, t["resolve_by0"])
    t["original_resolve_by"] = np.where(extended, t["resolve_by0"], nan)
    r1 = np.fmax(t["res"], t["p"])
    clock = _Clock(n)
    ended_new = np.fmin.reduce([t["acc"], t["rej"], np.full(n, now)])
    t["w1"] = clock.phase(
        rng,
        active=np.ones(n, dtype=bool),
        start=c,
        end=ended_new,
        created=c,
        deadline=t["respond_by"],
        fix=False,
    )
    breach = np.maximum(t["respond_by"], c) + rng.uniform(0, 60, n)
    clock.respond_breached = np.where(breach < ended_new, breach, nan)
    breach = t["resolve_by0"] + rng.uniform(0, 60, n)  # late for the fix while still new
    late_new = breach < ended_new
    clock.resolve_breached = np.where(late_new, breach, nan)
    clock.resolve_breached_due = np.where(late_new, t["resolve_by0"], nan)
    now_ = np.full(n, now)
    t["w2a"] = clock.phase(
        rng,
        active=_has(t, "acc"),
        start=t["acc"],
        end=np.fmin.reduce([np.where(extended, t["xa"], nan), r1, t["sh"], now_]),
        created=c,
        deadline=t["resolve_by0"],
    )
    t["w2b"] = clock.phase(
        rng,
        active=extended,
        start=t["xa"],
        end=np.fmin.reduce([r1, t["sh"], now_]),
        created=c,
        deadline=t["resolve_by"],
    )
    t["w3"] = clock.phase(
        rng,
        active=_has(t, "v0"),
        start=t["v0"],
        end=np.fmin(t["r2"], now_),
        created=c,
        deadline=t["resolve_by"],
    )
    t["b_respond"], t["b_resolve"] = clock.respond_breached, clock.resolve_breached
    t["b_resolve_due"] = clock.resolve_breached_due
    t["esc"] = np.where(clock.escalated, clock.escalated_at, nan)

    # The marks as the last sweep left them; a rejected ticket's were worked out again
    # (its deadline moved), off the clock: warned and escalated at once.
    rejected = _has(t, "rej")
    marked = np.where(rejected, t["rej"] + rng.uniform(0, 30, n), clock.marked)
    seen = marked <= now
    t["warn_at"] = np.where(seen, np.where(rejected, t["resolve_by0"], clock.warn_at), nan)
    t["escalate_at"] = np.where(seen, np.where(rejected, t["resolve_by0"], clock.escalate_at), nan)
    warned = np.where(rejected, marked, clock.warned)
    t["warned_at"] = np.where(seen & (warned <= now), warned, nan)
    escalating = np.where(rejected, marked, clock.escalating)
    t["escalated_at"] = np.where(
        clock.escalated, clock.escalated_at, np.where(seen & (escalating <= now), escalating, nan)
    )

    # The district takes back most escalations of the tickets that ended, just before the
    # end, and half of those of the tickets still open, a day or two after.
    status = status_of(t)
    ended = ~np.isin(status, OPEN)
    end = np.where(rejected, t["rej"], np.where(t["esc"] < r1, r1, t["r2"]))
    de = np.where(ended, end - rng.uniform(1, 600, n), t["esc"] + lognormal(rng, 1.5 * DAY, 0.8, n))
    taken = (
        clock.escalated
        & (rng.random(n) < np.where(ended, 0.85, 0.5))
        & (de > t["esc"] + 1)
        & (de < now)
    )
    t["de"] = np.where(taken, de, nan)
    t["de_status"] = np.full(n, -1, dtype=np.int16)
    rows = np.flatnonzero(taken)
    t["de_status"][rows] = status_before(t, rows, de[rows])
    t["escalated"] = clock.escalated & ~taken

    closed_or_rejected = np.where(status == S[TicketStatus.CLOSED], t["cl"], t["rej"])
    purged_at = closed_or_rejected + RETENTION_DAYS * DAY + rng.uniform(0, DAY, n)
    t["purged_at"] = np.where(purged_at < now, purged_at, nan)
    t["status"] = status


def _plan_rider_ids(
    rng: np.random.Generator, city: Structure, history: History, *, scale: float
) -> None:
    n = scaled(RIDERS, scale, least=3)
    shares = np.array([p["share"] for p in city.platforms])
    platform = rng.choice(len(shares), size=n, p=shares / shares.sum())
    history.riders = {
        "n": np.arange(n, dtype=np.int32),
        "id": new_uuids(rng, n),
        "platform": platform.astype(np.int32),
        "platform_id": uuid_bytes([p["id"] for p in city.platforms])[platform],
    }


def _some_riders(rng: np.random.Generator, history: History, size: int) -> np.ndarray:
    """Riders drawn as their reports are: a few report a great deal, most now and then."""
    n = len(history.riders["n"])
    return np.minimum((n * rng.random(size) ** 2).astype(np.int64), n - 1)


def _plan_reports(
    rng: np.random.Generator, city: Structure, history: History, *, scale: float
) -> None:
    """Each ticket's reports: the one that opened it, and those that joined it while it
    was open and within its category's merge window, near its point (inside its
    community), as many as make ``REPORTS`` in all; each rider's first on a ticket earns.
    Then the riders' verifications."""
    t, now = history.t, history.now
    n, c = len(t["c"]), t["c"]
    cats = city.categories
    radius = np.array([x.dedup_radius_m for x in cats], dtype=float)[t["cat"]]
    window = np.array([x.dedup_window_h for x in cats], dtype=float)[t["cat"]] * H
    t["r1"] = np.fmax(t["res"], t["p"])
    until = np.fmin.reduce([c + window, np.fmin(t["rej"], t["r1"]), np.full(n, now)])
    span = np.maximum(until - c, 0.0)
    z, reach = rng.standard_normal(n), np.sqrt(np.minimum(1.0, span / DAY))

    def counts(mu: float) -> np.ndarray:
        joined = np.floor(np.exp(mu + z) * reach)
        return np.where(radius > 0, 1 + joined, 1).clip(1, 300).astype(np.int64)

    target, low, high = scaled(REPORTS, scale), -6.0, 6.0
    for _ in range(50):
        middle = (low + high) / 2
        low, high = (middle, high) if counts(middle).sum() < target else (low, middle)
    k = counts(high)
    t["report_count"] = k.astype(np.int32)
    m = int(k.sum())
    ti = np.repeat(np.arange(n), k)
    opener = (np.arange(m) - np.repeat(np.cumsum(k) - k, k)) == 0
    received = np.where(opener, c[ti], c[ti] + np.maximum(span[ti] * rng.random(m) ** 1.5, 1.0))
    rider = _some_riders(rng, history, m)
    order = np.lexsort((received, rider, ti))
    first = np.ones(m, dtype=bool)
    first[1:] = (ti[order][1:] != ti[order][:-1]) | (rider[order][1:] != rider[order][:-1])
    earns = np.empty(m, dtype=bool)
    earns[order] = first

    lon, lat = t["lon"][ti], t["lat"][ti]
    joined = np.flatnonzero(~opener)
    distance = radius[ti[joined]] * 0.8 * np.sqrt(rng.random(len(joined)))
    angle = rng.uniform(0, 2 * math.pi, len(joined))
    x = lon[joined] + distance * np.cos(angle) / (111_320 * np.cos(np.radians(lat[joined])))
    y = lat[joined] + distance * np.sin(angle) / 110_574
    communities = np.array(history.polygons, dtype=object)
    shapely.prepare(communities)
    inside = shapely.contains_xy(communities[t["community"][ti[joined]]], x, y)
    lon[joined[inside]], lat[joined[inside]] = x[inside], y[inside]

    purged = _has(t, "purged_at")[ti]
    gcj = ~purged & (rng.random(m) < 0.92)
    in_lon, in_lat = gcj02(lon, lat)
    in_lon, in_lat = np.where(gcj, in_lon, lon), np.where(gcj, in_lat, lat)
    check = rng.integers(0, m, size=min(m, 20))
    for i in check:
        expected = coords.wgs84_to_gcj02(float(lon[i]), float(lat[i]))
        assert abs(gcj02(lon[i : i + 1], lat[i : i + 1])[0][0] - expected[0]) < 1e-9
    lon, lat = np.where(purged, coarse(lon), lon), np.where(purged, coarse(lat), lat)
    in_lon, in_lat = np.where(purged, lon, in_lon), np.where(purged, lat, in_lat)
    words = np.where(rng.random(m) < np.where(opener, 0.85, 0.3), rng.integers(0, 3, size=m), -1)
    offline = rng.random(m) < 0.03
    observed = received - np.where(
        offline, rng.uniform(600, 6 * H, m), np.maximum(lognormal(rng, 90, 1.2, m), 1.0)
    )
    last_join = np.full(n, np.nan)
    np.fmax.at(last_join, ti[joined], received[joined])
    t["last_join"] = last_join
    history.r = {
        "id": new_uuids(rng, m),
        "event_id": new_uuids(rng, m),
        "ticket": ti.astype(np.int32),
        "ticket_id": t["id"][ti],
        "rider": rider.astype(np.int32),
        "rider_id": history.riders["id"][rider],
        "platform_id": history.riders["platform_id"][rider],
        "category_id": t["category_id"][ti],
        "district_id": t["district_id"][ti],
        "street_id": t["street_id"][ti],
        "community_id": t["community_id"][ti],
        "opened": opener.astype(np.int16),
        "earns": earns.astype(np.int16),
        "lon": lon,
        "lat": lat,
        "input_lon": in_lon,
        "input_lat": in_lat,
        "wgs84": (~gcj).astype(np.int16),
        "accuracy": np.where(purged, np.nan, np.round(lognormal(rng, 8, 0.5, m), 1)),
        "words": np.where(purged, -1, words).astype(np.int16),
        "observed": observed,
        "received": received,
    }
    _plan_verifications(rng, history)


def _plan_verifications(rng: np.random.Generator, history: History) -> None:
    """The riders passing resolved tickets: "fixed" (``vf1``, ``vf2``) or "not fixed" (the
    reopening ``v0``), each by another rider, from within 150 m."""
    t = history.t
    n = len(t["c"])
    riders = len(history.riders["n"])
    chosen = [_some_riders(rng, history, n)]
    for _ in range(2):
        other = _some_riders(rng, history, n)
        for earlier in chosen:
            other = np.where(other == earlier, (other + 1) % riders, other)
        for earlier in chosen:
            other = np.where(other == earlier, (other + 1) % riders, other)
        chosen.append(other)
    rows: dict[str, list[np.ndarray]] = {}
    purged = _has(t, "purged_at")
    for step, rider in zip(("v0", "vf1", "vf2"), chosen, strict=True):
        at = np.flatnonzero(_has(t, step))
        distance = rng.uniform(5, 150, len(at))
        angle = rng.uniform(0, 2 * math.pi, len(at))
        lat0 = t["lat"][at]
        lon = t["lon"][at] + distance * np.cos(angle) / (111_320 * np.cos(np.radians(lat0)))
        lat = lat0 + distance * np.sin(angle) / 110_574
        ids, events = new_uuids(rng, len(at)), new_uuids(rng, len(at))
        t[f"vid_{step}"] = np.zeros(n, dtype="V16")
        t[f"vid_{step}"][at] = ids
        t[f"ev_{step}"] = np.zeros(n, dtype="V16")
        t[f"ev_{step}"][at] = events
        for name, value in (
            ("id", ids),
            ("event_id", events),
            ("ticket_id", t["id"][at]),
            ("rider_id", history.riders["id"][rider[at]]),
            ("platform_id", history.riders["platform_id"][rider[at]]),
            ("rider", rider[at].astype(np.int32)),
            ("category_id", t["category_id"][at]),
            ("street_id", t["street_id"][at]),
            ("fixed", np.full(len(at), step != "v0", dtype=np.int16)),
            ("lon", lon),
            ("lat", lat),
            ("kept_lon", np.where(purged[at], coarse(lon), lon)),
            ("kept_lat", np.where(purged[at], coarse(lat), lat)),
            ("at", t[step][at]),
        ):
            rows.setdefault(name, []).append(value)
    history.verifications = {name: np.concatenate(parts) for name, parts in rows.items()}


def _plan_ticket_columns(
    rng: np.random.Generator, history: History, *, hours: WorkingHours
) -> None:
    """The columns the app keeps on a ticket, as its life left them."""
    t = history.t
    n, c, status = len(t["c"]), t["c"], t["status"]
    nan = np.full(n, np.nan)
    resolved = np.isin(status, [S[TicketStatus.RESOLVED], S[TicketStatus.CLOSED]])
    t["resolved_at"] = np.where(resolved, np.fmax(t["r1"], t["r2"]), nan)
    t["response_working_h"] = hours.between(c, t["acc"])
    t["resolution_working_h"] = hours.between(c, t["resolved_at"])
    t["reopen_count"] = _has(t, "v0").astype(np.int32)
    current_unit = np.where(_has(t, "d2"), t["unit_f"], t["unit1"])
    t["unit_id"] = np.where(np.isin(status, WITH_UNIT) & _has(t, "d1"), current_unit, -1).astype(
        np.int32
    )
    # Who signed for it last, as the steps set it and let it go (in the order they come).
    acknowledged = nan.copy()
    for step in STEPS:
        if step in ("ack", "k", "k2"):
            acknowledged = np.where(_has(t, step), t[step], acknowledged)
        elif step in ("d1", "ret", "d2", "f", "res", "p", "v0", "r2", "sh"):
            acknowledged = np.where(_has(t, step), np.nan, acknowledged)
    t["acknowledged_at"] = acknowledged
    t["office_acknowledged_at"] = np.where(_has(t, "ack"), t["ack"], t["acc"])
    state = np.select(
        [_has(t, "xa") & t["approved"], _has(t, "xa"), _has(t, "xr") & np.isin(status, EXTENDING)],
        [1, 2, 0],
        -1,
    )
    t["extension_state"] = state.astype(np.int16)
    t["ext_asked"] = t["ext_hours"]
    t["ext_hours"] = np.where(state >= 0, t["ext_hours"], np.nan)
    changes = np.count_nonzero([_has(t, step) for step in VERSIONED], axis=0)
    t["version"] = (1 + changes).astype(np.int32)
    t["updated_at"] = np.fmax.reduce([c, t["last_join"], *(t[step] for step in VERSIONED)])
    for name in ("ev_acc", "ev_r1", "ev_r2"):
        t[name] = new_uuids(rng, n)


def _plan_dispatches(history: History, *, hours: WorkingHours) -> None:
    """A row per dispatch: the one a unit handed back (``ret``), and the one it holds or
    held (the first, or ``d2`` after a return)."""
    t = history.t
    handed_back = _has(t, "ret")
    done = np.fmax(t["u1"], t["u2"])
    shelved_from_unit = _has(t, "sh") & np.isin(t["sh_from"], WITH_UNIT)
    parts: dict[str, list[np.ndarray]] = {}

    def add(rows: np.ndarray, unit: np.ndarray, at: np.ndarray, current: bool) -> None:
        nan = np.full(len(rows), np.nan)

        def now_or_nan(values: np.ndarray) -> np.ndarray:
            return values[rows] if current else nan

        extended = t["approved"][rows] & _has(t, "xa")[rows]
        ended = np.where(
            _has(t, "p")[rows],
            t["p"][rows],
            np.where(shelved_from_unit[rows], t["sh"][rows], np.nan),
        )
        for name, value in (
            ("ticket_id", t["id"][rows]),
            ("unit_id", unit[rows]),
            ("dispatched_at", at[rows]),
            (
                "due_at",
                np.where(extended, t["resolve_by"][rows], t["resolve_by0"][rows])
                if current
                else t["resolve_by0"][rows],
            ),
            ("acknowledged_at", now_or_nan(np.where(_has(t, "k"), t["k"], t["k2"]))),
            ("started_at", now_or_nan(t["s"])),
            ("done_at", now_or_nan(done)),
            ("done_working_h", now_or_nan(hours.between(at, done))),
            ("done_count", (_has(t, "u1")[rows].astype(np.int32) + _has(t, "u2")[rows]) * current),
            ("check_fail_count", _has(t, "f")[rows].astype(np.int32) * current),
            ("passed_at", now_or_nan(t["p"])),
            ("returned_at", nan if current else t["ret"][rows]),
            (
                "return_reason",
                np.full(len(rows), -1, dtype=np.int16)
                if current
                else t["return_reason"][rows].astype(np.int16),
            ),
            ("ended_at", ended if current else t["ret"][rows]),
        ):
            parts.setdefault(name, []).append(np.asarray(value))

    add(np.flatnonzero(handed_back), t["unit1"], t["d1"], current=False)
    add(np.flatnonzero(_has(t, "d1") & ~handed_back), t["unit1"], t["d1"], current=True)
    add(np.flatnonzero(_has(t, "d2")), t["unit_f"], t["d2"], current=True)
    history.dispatches = {name: np.concatenate(values) for name, values in parts.items()}


def _plan_rider_times(rng: np.random.Generator, history: History) -> None:
    """When each rider registered (before its first report or verification) and last
    took a token (just before its last)."""
    n = len(history.riders["n"])
    first, last = np.full(n, np.inf), np.full(n, -np.inf)
    for rider, at in (
        (history.r["rider"], history.r["received"]),
        (history.verifications["rider"], history.verifications["at"]),
    ):
        np.minimum.at(first, rider, at)
        np.maximum.at(last, rider, at)
    active = np.isfinite(first)
    start = history.now - HISTORY_DAYS * DAY
    created = np.where(
        active,
        first - rng.uniform(60, 30 * DAY, n),
        rng.uniform(start, history.now - DAY, n),
    )
    history.riders["created"] = created
    history.riders["last_token"] = np.where(
        active, np.maximum(last - rng.uniform(0, H, n), created), np.nan
    )


# --- loading: staging tables by binary COPY, then the app's rows by set-based SQL ------------

_PG_TYPES = {"i2": "smallint", "i4": "integer", "i8": "bigint", "f8": "double precision"}


def _column_type(values: np.ndarray) -> tuple[str, str]:
    """The binary COPY field type and the SQL type of an array."""
    if values.dtype.kind == "V":
        return f"V{values.dtype.itemsize}", "uuid"
    if values.dtype.kind == "S":
        return f"S{values.dtype.itemsize}", "text"
    code = f"{values.dtype.kind}{values.dtype.itemsize}"
    return f">{code}", _PG_TYPES[code]


def stage(cursor: psycopg.Cursor[Any], table: str, columns: dict[str, np.ndarray]) -> None:
    """An unlogged table ``table`` holding ``columns`` (equal-length arrays of integers,
    floats — NaN for none —, 16-byte UUIDs or fixed-length text), by binary COPY."""
    columns = {
        name: values.astype(np.int16) if values.dtype == bool else values
        for name, values in columns.items()
    }
    types = {name: _column_type(values) for name, values in columns.items()}
    cursor.execute(f"DROP TABLE IF EXISTS {table}")
    cursor.execute(
        f"CREATE UNLOGGED TABLE {table} ("
        + ", ".join(f"{name} {sql}" for name, (_, sql) in types.items())
        + ")"
    )
    rows = len(next(iter(columns.values())))
    layout = [("count", ">i2")]
    for i, (binary, _) in enumerate(types.values()):
        layout += [(f"l{i}", ">i4"), (f"v{i}", binary)]
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
        for first in range(0, rows, 200_000):
            last = min(rows, first + 200_000)
            record = np.empty(last - first, dtype=layout)
            record["count"] = len(columns)
            for i, values in enumerate(columns.values()):
                record[f"l{i}"] = values.dtype.itemsize
                record[f"v{i}"] = values[first:last]
            copy.write(record.tobytes())
        copy.write(struct.pack(">h", -1))


def ts(column: str) -> str:
    """A staged time (seconds since the epoch, NaN for none) as a timestamptz."""
    return f"to_timestamp(NULLIF({column}, 'NaN'))"


def pick(values: Sequence[str], index: str) -> str:
    """The ``index``-th (from 0) of ``values``, in SQL."""
    return "(ARRAY[" + ", ".join(f"'{v}'" for v in values) + f"])[{index} + 1]"


def status_sql(column: str) -> str:
    """A status the plan numbers, as the app writes it."""
    return pick([s.value for s in STATUSES], column)


def strip_tables(cursor: psycopg.Cursor[Any], tables: Sequence[str]) -> list[str]:
    """Drops the keys, indexes and foreign keys of ``tables`` (and the foreign keys that
    point at them) for a bulk load; returns the statements that put back exactly what
    the migrations made, in the order to run them."""
    constraints = cursor.execute(
        "SELECT conname, conrelid::regclass::text, contype, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE contype IN ('p', 'u', 'f') "
        "AND (conrelid::regclass::text = ANY(%(t)s) OR confrelid::regclass::text = ANY(%(t)s))",
        {"t": list(tables)},
    ).fetchall()
    indexes = cursor.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "WHERE i.indrelid::regclass::text = ANY(%(t)s) AND NOT EXISTS (SELECT 1 FROM "
        "pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u'))",
        {"t": list(tables)},
    ).fetchall()
    keys = [c for c in constraints if c[2] in ("p", "u")]
    foreign = [c for c in constraints if c[2] == "f"]
    for name, table, _, _ in foreign + keys:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cursor.execute(f"DROP INDEX {name}")
    return (
        [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {d}' for name, table, _, d in keys]
        + [definition for _, definition in indexes]
        + [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {d}' for name, table, _, d in foreign]
    )


def load_staging(cursor: psycopg.Cursor[Any], city: Structure, history: History) -> None:
    t = history.t
    # What the SQL of the load reads of the plan (the rest stays in the arrays).
    ticket_columns = (  # noqa: SIM905 (a list of names, easier read as words)
        "n id ref category_id district_id street_id community_id lon lat c report_count "
        "respond_by resolve_by resolve_by0 original_resolve_by status resolved_at r1 "
        "b_respond b_resolve b_resolve_due purged_at response_working_h resolution_working_h "
        "reopen_count unit_id acknowledged_at office_acknowledged_at ext_hours ext_asked "
        "extension_state review_on escalated warn_at warned_at escalate_at escalated_at "
        "version updated_at reject_reason return_reason words unit1 unit_f crew1_id crew_f_id "
        "officer_id district_user_id closed_by_office approved sh_from de de_status "
        "w1 w2a w2b w3 esc ev_acc ev_r1 ev_r2 ev_v0"
    ).split()
    stage(cursor, "city_tickets", {name: t[name] for name in (*ticket_columns, *STEPS)})
    stage(cursor, "city_reports", history.r)
    stage(cursor, "city_verifications", history.verifications)
    stage(cursor, "city_dispatches", history.dispatches)
    stage(cursor, "city_riders", history.riders)
    words = [
        (category.id, k, text)
        for category in city.categories
        for k, text in enumerate(WORDS.get(category.code, WORDS["other"]))
    ]
    cursor.execute("DROP TABLE IF EXISTS city_words")
    cursor.execute("CREATE UNLOGGED TABLE city_words (category_id integer, k integer, words text)")
    cursor.executemany("INSERT INTO city_words VALUES (%s, %s, %s)", words)
    cursor.execute(
        "ANALYZE city_tickets, city_reports, city_verifications, city_dispatches, city_riders"
    )


def load_riders(cursor: psycopg.Cursor[Any]) -> None:
    cursor.execute(
        "INSERT INTO riders (id, platform_id, external_id, display_name, pseudonym, "
        "last_token_at, erased_at, created_at, updated_at) "
        "SELECT r.id, r.platform_id, p.code || '-' || lpad(r.n::text, 7, '0'), NULL, "
        "'R-' || upper(substr(md5(r.n::text || random()::text), 1, 8)), "
        f"{ts('r.last_token')}, NULL, {ts('r.created')}, "
        f"coalesce({ts('r.last_token')}, {ts('r.created')}) "
        "FROM city_riders r JOIN platforms p ON p.id = r.platform_id ORDER BY r.created"
    )


def load_tickets(cursor: psycopg.Cursor[Any]) -> None:
    reasons, states = (
        pick(tuple(REJECTIONS), "p.reject_reason"),
        pick(EXTENSION_STATES, "p.extension_state"),
    )
    cursor.execute(
        "INSERT INTO tickets (id, ref, category_id, status, priority, location, district_id, "
        "street_id, community_id, report_count, respond_by, resolve_by, version, "
        "reject_reason, accepted_at, resolved_at, closed_at, respond_breached_at, "
        "resolve_breached_at, created_at, updated_at, purged_at, response_working_h, "
        "resolution_working_h, reopen_count, hidden_report_count, unit_id, acknowledged_at, "
        "extension_hours, extension_reason, extension_status, review_on, escalated, "
        "original_resolve_by, warn_at, warned_at, escalate_at, escalated_at, "
        "office_acknowledged_at) "
        f"SELECT p.id, p.ref, p.category_id, {status_sql('p.status')}, c.priority, "
        "ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326), p.district_id, p.street_id, "
        f"p.community_id, p.report_count, {ts('p.respond_by')}, {ts('p.resolve_by')}, "
        f"p.version, CASE WHEN p.status = {S[TicketStatus.REJECTED]} THEN {reasons} END, "
        f"{ts('p.acc')}, {ts('p.resolved_at')}, {ts('p.cl')}, {ts('p.b_respond')}, "
        f"{ts('p.b_resolve')}, {ts('p.c')}, {ts('p.updated_at')}, {ts('p.purged_at')}, "
        "NULLIF(p.response_working_h, 'NaN'), NULLIF(p.resolution_working_h, 'NaN'), "
        f"p.reopen_count, 0, NULLIF(p.unit_id, -1), {ts('p.acknowledged_at')}, "
        "NULLIF(p.ext_hours, 'NaN'), "
        f"CASE WHEN p.extension_state >= 0 THEN {pick(EXTENSION_REASONS, 'p.words')} END, "
        f"CASE WHEN p.extension_state >= 0 THEN {states} END, "
        "CASE WHEN p.review_on >= 0 THEN DATE '1970-01-01' + p.review_on END, "
        f"p.escalated = 1, {ts('p.original_resolve_by')}, {ts('p.warn_at')}, "
        f"{ts('p.warned_at')}, {ts('p.escalate_at')}, {ts('p.escalated_at')}, "
        f"{ts('p.office_acknowledged_at')} "
        "FROM city_tickets p JOIN categories c ON c.id = p.category_id ORDER BY p.n"
    )


def load_reports(cursor: psycopg.Cursor[Any]) -> None:
    """The reports, each counted as its ticket stands now (``app.riders.points``)."""
    standing = (
        f"CASE WHEN p.status = {S[TicketStatus.REJECTED]} THEN 'rejected' "
        f"WHEN p.status IN ({S[TicketStatus.RESOLVED]}, {S[TicketStatus.CLOSED]}) THEN 'resolved' "
        "WHEN p.acc <> 'NaN' THEN 'accepted' ELSE 'pending' END"
    )
    outcome = "CASE WHEN r.opened = 1 THEN 'new_ticket' ELSE 'joined_ticket' END"
    cursor.execute(
        "INSERT INTO reports (id, rider_id, platform_id, ticket_id, category_id, outcome, "
        "counted_as, location, input_lat, input_lon, input_coord_sys, accuracy_m, "
        "description, district_id, street_id, community_id, observed_at, received_at) "
        f"SELECT r.id, r.rider_id, r.platform_id, r.ticket_id, r.category_id, {outcome}, "
        f"{outcome} || '/' || {standing}, ST_SetSRID(ST_MakePoint(r.lon, r.lat), 4326), "
        "r.input_lat, r.input_lon, CASE WHEN r.wgs84 = 1 THEN 'wgs84' ELSE 'gcj02' END, "
        "NULLIF(r.accuracy, 'NaN'), w.words, r.district_id, r.street_id, r.community_id, "
        f"{ts('r.observed')}, {ts('r.received')} "
        "FROM city_reports r JOIN city_tickets p ON p.n = r.ticket "
        "LEFT JOIN city_words w ON w.category_id = r.category_id AND w.k = r.words "
        "ORDER BY r.received"
    )


def iso_sql(column: str) -> str:
    """A staged time as ``datetime.isoformat()`` writes an aware UTC instant."""
    return f"to_char({ts(column)} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"


def _words(kind: Sequence[str]) -> str:
    return pick(kind, f"(p.words % {len(kind)})")


@dataclass(frozen=True)
class EventOfStep:
    """How a step of the plan is recorded as a ticket event (each part SQL over the plan
    ``p`` and the units ``u1`` and ``uf`` it was dispatched to)."""

    step: str
    type: str
    actor: str  # "officer", "district", "crew1", "crew", "system", or SQL for the kind
    from_status: str = "NULL"
    to_status: str = "NULL"
    note: str = "NULL"
    data: str = "NULL"
    id: str = "gen_random_uuid()"
    actor_id: str | None = None  # SQL, when ``actor`` is SQL


EVENTS = (
    EventOfStep("ack", "'acknowledge'", "officer", "'new'", "'new'"),
    EventOfStep("acc", "'accept'", "officer", "'new'", "'accepted'", id="p.ev_acc"),
    EventOfStep(
        "rej",
        "'reject'",
        "officer",
        "'new'",
        "'rejected'",
        note=pick(tuple(REJECTIONS), "p.reject_reason"),
    ),
    EventOfStep("ost", "'start'", "officer", "'accepted'", "'in_progress'"),
    EventOfStep(
        "res",
        "'resolve'",
        "officer",
        "CASE WHEN p.ost <> 'NaN' THEN 'in_progress' ELSE 'accepted' END",
        "'resolved'",
        note=_words(NOTES["resolve"]),
        id="p.ev_r1",
    ),
    EventOfStep(
        "d1",
        "'dispatch'",
        "officer",
        "'accepted'",
        "'dispatched'",
        data="json_build_object('unit', u1.code)",
    ),
    EventOfStep(
        "ret",
        "'return'",
        "crew1",
        "'dispatched'",
        "'accepted'",
        note=pick(RETURNS, "p.return_reason"),
        data=f"json_build_object('reason', {pick(RETURNS, 'p.return_reason')})",
    ),
    EventOfStep(
        "d2",
        "'dispatch'",
        "officer",
        "'accepted'",
        "'dispatched'",
        data="json_build_object('unit', uf.code)",
    ),
    EventOfStep("k", "'acknowledge'", "crew", "'dispatched'", "'dispatched'"),
    EventOfStep("s", "'start'", "crew", "'dispatched'", "'in_progress'"),
    EventOfStep(
        "xr",
        "'request_extension'",
        "crew",
        "'in_progress'",
        "'in_progress'",
        note=_words(EXTENSION_REASONS),
        data=f"json_build_object('hours', p.ext_asked, 'reason', {_words(EXTENSION_REASONS)})",
    ),
    EventOfStep(
        "xa",
        "CASE WHEN p.approved = 1 THEN 'approve_extension' ELSE 'deny_extension' END",
        "district",
        "'in_progress'",
        "'in_progress'",
        data=(
            "CASE WHEN p.approved = 1 THEN json_build_object('hours', p.ext_asked, 'due', "
            f"{iso_sql('p.resolve_by')}) ELSE json_build_object('hours', p.ext_asked) END"
        ),
    ),
    EventOfStep(
        "u1",
        "'report_done'",
        "crew",
        "'in_progress'",
        "'awaiting_check'",
        note=_words(NOTES["report_done"]),
    ),
    EventOfStep(
        "f",
        "'check_fail'",
        "officer",
        "'awaiting_check'",
        "'dispatched'",
        note=_words(NOTES["check_fail"]),
    ),
    EventOfStep("k2", "'acknowledge'", "crew", "'dispatched'", "'dispatched'"),
    EventOfStep(
        "u2",
        "'report_done'",
        "crew",
        "'dispatched'",
        "'awaiting_check'",
        note=_words(NOTES["report_done"]),
    ),
    EventOfStep("p", "'check_pass'", "officer", "'awaiting_check'", "'resolved'", id="p.ev_r1"),
    EventOfStep(
        "r2",
        "'resolve'",
        "officer",
        "'accepted'",
        "'resolved'",
        note=_words(NOTES["resolve"]),
        id="p.ev_r2",
    ),
    EventOfStep(
        "cl",
        "CASE WHEN p.closed_by_office = 1 THEN 'close' ELSE 'auto_closed' END",
        "CASE WHEN p.closed_by_office = 1 THEN 'staff' ELSE 'system' END",
        "'resolved'",
        "'closed'",
        actor_id="CASE WHEN p.closed_by_office = 1 THEN p.officer_id END",
    ),
    EventOfStep(
        "sh",
        "'shelve'",
        "district",
        status_sql("p.sh_from"),
        "'shelved'",
        note=_words(SHELVE_REASONS),
        data=(
            "json_build_object('review_on', to_char(DATE '1970-01-01' + p.review_on, "
            f"'YYYY-MM-DD'), 'reason', {_words(SHELVE_REASONS)})"
        ),
    ),
    EventOfStep(
        "de",
        "'deescalate'",
        "district",
        status_sql("p.de_status"),
        status_sql("p.de_status"),
        note=_words(NOTES["deescalate"]),
    ),
    EventOfStep(
        "w1", "'sla_warning'", "system", data=f"json_build_object('due', {iso_sql('p.respond_by')})"
    ),
    EventOfStep(
        "w2a",
        "'sla_warning'",
        "system",
        data=f"json_build_object('due', {iso_sql('p.resolve_by0')})",
    ),
    EventOfStep(
        "w2b",
        "'sla_warning'",
        "system",
        data=f"json_build_object('due', {iso_sql('p.resolve_by')})",
    ),
    EventOfStep(
        "w3", "'sla_warning'", "system", data=f"json_build_object('due', {iso_sql('p.resolve_by')})"
    ),
    EventOfStep(
        "b_respond",
        "'sla_breached'",
        "system",
        data=f"json_build_object('deadline', 'respond_by', 'due', {iso_sql('p.respond_by')})",
    ),
    EventOfStep(
        "b_resolve",
        "'sla_breached'",
        "system",
        data=f"json_build_object('deadline', 'resolve_by', 'due', {iso_sql('p.b_resolve_due')})",
    ),
    EventOfStep("esc", "'escalated'", "system", data="json_build_object('why', 'late')"),
)
ACTORS = {
    "officer": ("'staff'", "p.officer_id"),
    "district": ("'staff'", "p.district_user_id"),
    "crew1": ("'staff'", "p.crew1_id"),
    "crew": ("'staff'", "p.crew_f_id"),
    "system": ("'system'", "NULL::uuid"),
}


def load_events(cursor: psycopg.Cursor[Any]) -> None:
    """Every event of the tickets: a report opening or joining one, each step of its
    plan (a statement per step: only its tickets pay for its expressions), and the
    verifications."""
    cursor.execute(
        "INSERT INTO ticket_events (id, ticket_id, type, actor_kind, actor_id, from_status, "
        "to_status, note, data, created_at) "
        "SELECT r.event_id, r.ticket_id, CASE WHEN r.opened = 1 THEN 'created' ELSE "
        "'report_joined' END, 'rider', r.rider_id, NULL, CASE WHEN r.opened = 1 THEN 'new' END, "
        f"NULL, json_build_object('report_id', r.id::text), {ts('r.received')} "
        "FROM city_reports r"
    )
    for event in EVENTS:
        kind, actor = ACTORS.get(event.actor, (event.actor, event.actor_id or "NULL::uuid"))
        cursor.execute(
            "INSERT INTO ticket_events (id, ticket_id, type, actor_kind, actor_id, "
            "from_status, to_status, note, data, created_at) "
            f"SELECT {event.id}, p.id, {event.type}, {kind}, {actor}, {event.from_status}, "
            f"{event.to_status}, {event.note}, {event.data}, {ts(f'p.{event.step}')} "
            "FROM city_tickets p LEFT JOIN units u1 ON u1.id = p.unit1 "
            "LEFT JOIN units uf ON uf.id = p.unit_f "
            f"WHERE p.{event.step} <> 'NaN'"
        )
    cursor.execute(
        "INSERT INTO ticket_events (id, ticket_id, type, actor_kind, actor_id, from_status, "
        "to_status, note, data, created_at) "
        "SELECT c.event_id, v.ticket_id, CASE WHEN v.fixed THEN 'verified' ELSE 'reopened' "
        "END, 'rider', v.rider_id, 'resolved', CASE WHEN v.fixed THEN 'resolved' ELSE "
        "'accepted' END, NULL, json_build_object('fixed', v.fixed, 'distance_m', "
        "v.distance_m), v.created_at FROM verifications v JOIN city_verifications c ON c.id = v.id"
    )


def load_verifications_and_dispatches(cursor: psycopg.Cursor[Any]) -> None:
    cursor.execute(
        "INSERT INTO verifications (id, ticket_id, rider_id, platform_id, category_id, "
        "street_id, fixed, location, distance_m, note, media_ids, created_at) "
        "SELECT v.id, v.ticket_id, v.rider_id, v.platform_id, v.category_id, v.street_id, "
        "v.fixed = 1, ST_SetSRID(ST_MakePoint(v.kept_lon, v.kept_lat), 4326), "
        "round(ST_Distance(ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)::geography, "
        "ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326)::geography)::numeric, 1), NULL, NULL, "
        f"{ts('v.at')} FROM city_verifications v JOIN city_tickets p ON p.id = v.ticket_id "
        "ORDER BY v.at"
    )
    cursor.execute(
        "INSERT INTO dispatches (id, ticket_id, unit_id, dispatched_at, due_at, "
        "acknowledged_at, started_at, done_at, done_working_h, done_count, check_fail_count, "
        "passed_at, returned_at, return_reason, return_note, ended_at) "
        f"SELECT gen_random_uuid(), d.ticket_id, d.unit_id, {ts('d.dispatched_at')}, "
        f"{ts('d.due_at')}, {ts('d.acknowledged_at')}, {ts('d.started_at')}, "
        f"{ts('d.done_at')}, NULLIF(d.done_working_h, 'NaN'), d.done_count, "
        f"d.check_fail_count, {ts('d.passed_at')}, {ts('d.returned_at')}, "
        f"CASE WHEN d.return_reason >= 0 THEN {pick(RETURNS, 'd.return_reason')} END, "
        f"NULL, {ts('d.ended_at')} FROM city_dispatches d ORDER BY d.dispatched_at"
    )


def load_ledger(cursor: psycopg.Cursor[Any]) -> None:
    """The points ledger as the settlements wrote it (``app.riders.points``): a report's
    rider earns on its first report of a ticket — the opener when the office accepts
    and when it resolves (taken back by a reopening, earned again by the next
    resolution), a confirmation when the ticket is accepted or when it joins one that
    is — and a verification earns its rider at once. Each line names the event that
    caused it, and the ticket's category and street."""
    line = (
        "INSERT INTO points_ledger (id, rider_id, platform_id, reason, points, ticket_id, "
        "event_id, report_id, verification_id, category_id, street_id, created_at) "
    )
    report_lines = [
        ("opened_accepted", "c.points_open", "p.acc", "p.ev_acc", "r.opened = 1"),
        (
            "confirmed_accepted",
            "c.points_confirm",
            "greatest(p.acc, r.received)",
            "CASE WHEN r.received > p.acc THEN r.event_id ELSE p.ev_acc END",
            "r.opened = 0 AND r.earns = 1",
        ),
        (
            "opened_resolved",
            "c.points_resolve",
            "p.r1",
            "p.ev_r1",
            "r.opened = 1 AND p.r1 <> 'NaN'",
        ),
        (
            "opened_resolved",
            "-c.points_resolve",
            "p.v0",
            "p.ev_v0",
            "r.opened = 1 AND p.v0 <> 'NaN'",
        ),
        (
            "opened_resolved",
            "c.points_resolve",
            "p.r2",
            "p.ev_r2",
            "r.opened = 1 AND p.r2 <> 'NaN'",
        ),
    ]
    selects = [
        f"SELECT gen_random_uuid(), r.rider_id, r.platform_id, '{reason}', {points}, "
        f"r.ticket_id, {event}, r.id, NULL::uuid, r.category_id, r.street_id, {ts(at)} "
        "FROM city_reports r JOIN city_tickets p ON p.n = r.ticket "
        "JOIN categories c ON c.id = r.category_id "
        f"WHERE p.acc <> 'NaN' AND p.status <> {S[TicketStatus.REJECTED]} AND {where}"
        for reason, points, at, event, where in report_lines
    ]
    selects.append(
        "SELECT gen_random_uuid(), v.rider_id, v.platform_id, 'verified', c.points_verify, "
        "v.ticket_id, v.event_id, NULL::uuid, v.id, v.category_id, v.street_id, "
        f"{ts('v.at')} FROM city_verifications v JOIN categories c ON c.id = v.category_id"
    )
    cursor.execute(
        line + "SELECT * FROM (" + " UNION ALL ".join(selects) + ") AS lines ORDER BY 12"
    )


def _counted(counter: str) -> str:
    """The app's rule for which reports ``counter`` counts (by ``counted_as``), as SQL."""
    condition = counts_in_sql(counter).compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    return f"({str(condition).replace('reports.', '')})::int"


def _hour(column: str) -> str:
    return f"floor(extract(epoch FROM {column}) / 3600)::bigint"


def load_counters(cursor: psycopg.Cursor[Any]) -> None:
    """What ``app.riders.points.Books`` keeps in step, counted from the base tables: each
    report as it is counted now (in the hour it came), each verification, each line of
    the ledger (in the hour it was written)."""
    names = Contribution.COUNTERS
    report_counters = [name for name in names if name in REPORT_COUNTERS]
    assert [*report_counters, "verifications", "points"] == list(names)

    def activity(key: str, time: str, what: str) -> str:
        return f"SELECT platform_id, {_hour(time)} AS hour, {key}, {what}"

    zeros = ", ".join("0" for _ in report_counters)
    parts = (
        ("reports", "received_at", ", ".join(_counted(n) for n in report_counters) + ", 0, 0"),
        ("verifications", "created_at", f"{zeros}, 1, 0"),
        ("points_ledger", "created_at", f"{zeros}, 0, points"),
    )
    sums = ", ".join(f"sum({n})" for n in names)
    columns = ", ".join(names)
    for table, key, key_sql, group in (
        ("rider_activity", "rider_id", "rider_id", "platform_id, hour, rider_id"),
        (
            "platform_activity",
            "category_id, street_key",
            "category_id, coalesce(street_id, 0) AS street_key",
            "platform_id, hour, category_id, street_key",
        ),
    ):
        union = " UNION ALL ".join(
            activity(key_sql, time, values) + f" FROM {source}" for source, time, values in parts
        )
        cursor.execute(
            f"INSERT INTO {table} (platform_id, hour, {key}, {columns}) "
            f"SELECT {group}, {sums} FROM ({union}) AS a ({group}, {columns}) "
            f"GROUP BY {group} ORDER BY {group}"
        )
    cursor.execute(
        f"INSERT INTO rider_daily_activity (platform_id, day, rider_id, {columns}) "
        f"SELECT platform_id, hour / 24, rider_id, {sums} FROM rider_activity "
        "GROUP BY platform_id, hour / 24, rider_id ORDER BY platform_id, hour / 24, rider_id"
    )
    cursor.execute(
        f"INSERT INTO rider_totals (rider_id, platform_id, {columns}) "
        f"SELECT r.id, r.platform_id, "
        + ", ".join(f"coalesce(a.{n}, 0)" for n in names)
        + f" FROM riders r LEFT JOIN (SELECT rider_id, {sums} FROM rider_daily_activity "
        f"GROUP BY rider_id) AS a (rider_id, {columns}) ON a.rider_id = r.id"
    )


def load_outbox(cursor: psycopg.Cursor[Any], now: datetime) -> None:
    """The platforms' events of the last week (older ones the worker has purged), each
    delivered at the worker's next round: ``report.updated`` to the platform of every
    report on a ticket whose status changed, ``points.awarded`` for every ledger line
    with the rider's points after it."""
    since = now - KEEP_HISTORY
    delivered = (
        "'delivered', 1, {at} + make_interval(secs => {sent} + %(lease)s), {at} + "
        "make_interval(secs => {sent})"
    )
    cursor.execute(
        "INSERT INTO outbox_events (id, platform_id, type, data, created_at, state, attempts, "
        "next_attempt_at, delivered_at) "
        "SELECT gen_random_uuid(), r.platform_id, 'report.updated', json_build_object("
        "'report_id', r.id::text, 'rider_id', rd.external_id, 'event', e.type, 'ticket', "
        "json_build_object('id', t.id::text, 'ref', t.ref, 'status', e.to_status, "
        "'previous_status', e.from_status)), e.created_at, "
        + delivered.format(at="e.created_at", sent="e.sent")
        + " FROM (SELECT *, 0.2 + random() * 5 AS sent FROM ticket_events WHERE created_at >= "
        "%(since)s AND from_status <> to_status) AS e "
        "JOIN reports r ON r.ticket_id = e.ticket_id AND r.received_at <= e.created_at "
        "JOIN riders rd ON rd.id = r.rider_id JOIN tickets t ON t.id = e.ticket_id",
        {"since": since, "lease": WORKER_LEASE_S},
    )
    cursor.execute(
        "INSERT INTO outbox_events (id, platform_id, type, data, created_at, state, attempts, "
        "next_attempt_at, delivered_at) "
        "SELECT gen_random_uuid(), l.platform_id, 'points.awarded', json_build_object("
        "'rider_id', rd.external_id, 'report_id', l.report_id::text, 'ticket_id', "
        "l.ticket_id::text, 'reason', l.reason, 'points', l.points, 'total_points', "
        "coalesce(b.points, 0) + sum(l.points) OVER (PARTITION BY l.rider_id ORDER BY "
        "l.created_at, l.id)), l.created_at, "
        + delivered.format(at="l.created_at", sent="l.sent")
        + " FROM (SELECT *, 0.2 + random() * 5 AS sent FROM points_ledger WHERE created_at >= "
        "%(since)s) AS l JOIN riders rd ON rd.id = l.rider_id LEFT JOIN (SELECT rider_id, "
        "sum(points) AS points FROM points_ledger WHERE created_at < %(since)s GROUP BY "
        "rider_id) AS b ON b.rider_id = l.rider_id",
        {"since": since, "lease": WORKER_LEASE_S},
    )
    cursor.execute(
        "INSERT INTO webhook_deliveries (id, event_id, platform_id, url, attempt, "
        "attempted_at, status_code, error, duration_ms) "
        "SELECT gen_random_uuid(), o.id, o.platform_id, w.url, 1, o.delivered_at, 200, NULL, "
        "(8 + random() * 150)::int FROM outbox_events o JOIN webhooks w "
        "ON w.platform_id = o.platform_id ORDER BY o.delivered_at"
    )


# --- the build ------------------------------------------------------------------------------


def set_activity(rng: np.random.Generator, streets: list[Street]) -> None:
    """How busy each street and community is: the district's share of the riders' work
    (central districts more), each street a skewed share of it, each community a skewed
    share of its street's, and a few hot spots (a market, a metro exit) four times more."""
    for street in streets:
        _, _, n_streets, residents = DISTRICTS[street.district]
        central = 1.5 if street.district in CENTRAL else 1.0
        street.weight = residents / n_streets * central * float(lognormal(rng, 1.0, 0.9, 1)[0])
        weights = lognormal(rng, 1.0, 0.7, len(street.communities))
        weights *= np.where(rng.random(len(weights)) < 0.02, 4.0, 1.0)
        street.community_weights = weights / weights.sum()


def build_structure(
    database: Database, rng: np.random.Generator, stages: Stages, *, now: datetime
) -> Structure:
    with stages.stage("map (synthetic streets and communities)"):
        outlines, streets = build_map(rng)
        import_map(database, outlines, streets)
        set_activity(rng, streets)
    with stages.stage("calendar, platforms, units, staff"):
        seed_calendar_years(database, now - timedelta(days=HISTORY_DAYS), now)
        platforms = make_platforms(database)
        units = make_units(database, streets)
        staff, password = make_staff(database, streets, units, rng)
        with database.session(write=False) as session:
            districts = dict(
                session.execute(select(Area.code, Area.id).where(Area.level == "district")).all()
            )
            categories = [
                CategoryRow(
                    c.id,
                    c.code,
                    c.respond_within_h,
                    c.resolve_within_h,
                    c.dedup_radius_m,
                    c.dedup_window_h,
                )
                for c in session.scalars(select(Category).order_by(Category.id))
                if c.active
            ]
            clocks = set(session.scalars(select(Category.sla_clock)))
    if clocks != {"hours"}:
        raise SystemExit(f"the builder counts deadlines in hours; the categories use {clocks}")
    return Structure(districts, streets, categories, platforms, units, staff, password)


STAGING = ("city_tickets", "city_reports", "city_verifications", "city_dispatches", "city_riders")


def build(*, pg_url: str, scale: float, seed: int) -> dict[str, Any]:
    """Builds the city at ``pg_url`` (dropped first); returns what ``--out`` holds."""
    stages = Stages()
    rng = np.random.default_rng(seed)
    now = utcnow().replace(microsecond=0)
    with stages.stage("database and the app's migrations"):
        drop_database(pg_url, then_create=True)
        migrate.upgrade(pg_url)
    database = Database(pg_url)
    try:
        city = build_structure(database, rng, stages, now=now)
        with database.session(write=False) as session:
            calendar = load_calendar(session)
    finally:
        database.dispose()
    with stages.stage("plan of the history (arrays)"):
        first = (now - timedelta(days=HISTORY_DAYS + 2)).date()
        hours = WorkingHours(calendar, first, HISTORY_DAYS + 5)
        history = plan_history(rng, city, scale=scale, now=now, hours=hours)
    with psycopg.connect(libpq(pg_url), autocommit=True) as connection:
        cursor = connection.cursor()
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET work_mem = '256MB'")
        cursor.execute("SET maintenance_work_mem = '1GB'")
        with stages.stage("staging tables (binary COPY)"):
            restore = strip_tables(cursor, BULK_TABLES)
            load_staging(cursor, city, history)
        with stages.stage("riders and tickets"):
            load_riders(cursor)
            load_tickets(cursor)
        with stages.stage("reports"):
            load_reports(cursor)
        with stages.stage("verifications and dispatches"):
            load_verifications_and_dispatches(cursor)
        with stages.stage("ticket events"):
            load_events(cursor)
        with stages.stage("points ledger"):
            load_ledger(cursor)
        with stages.stage("riders' totals, hours and days, platforms' hours"):
            load_counters(cursor)
        with stages.stage("webhook outbox of the last week, delivered"):
            load_outbox(cursor, now)
        with stages.stage("keys, indexes and foreign keys"):
            for statement in restore:
                cursor.execute(statement)
            # The worker has told the channels everything up to now (and the check
            # reads the moment of the build here).
            cursor.execute(
                "INSERT INTO job_marks (name, at, after_id) VALUES (%s, %s, %s)",
                (NOTIFY_MARK, now, uuid.UUID(int=0)),
            )
        with stages.stage("vacuum and analyze"):
            for table in (*STAGING, "city_words"):
                cursor.execute(f"DROP TABLE {table}")
            cursor.execute("VACUUM (ANALYZE)")
            cursor.execute("CHECKPOINT")
        summary = describe(cursor, city, history, pg_url=pg_url, now=now)
    summary |= {"scale": scale, "seed": seed}
    summary["stage_seconds"] = {k: round(v, 1) for k, v in stages.seconds.items()}
    summary["build_seconds"] = round(sum(stages.seconds.values()), 1)
    return summary


COUNTED_TABLES = (
    "areas", "staff", "units", "riders", "tickets", "reports", "ticket_events",
    "verifications", "dispatches", "points_ledger", "rider_totals", "rider_activity",
    "rider_daily_activity", "platform_activity", "outbox_events", "webhook_deliveries",
)  # fmt: skip


def describe(
    cursor: psycopg.Cursor[Any], city: Structure, history: History, *, pg_url: str, now: datetime
) -> dict[str, Any]:
    """What the benches of the day need to know of the city (``--out``)."""

    def rows(sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return cursor.execute(sql, params).fetchall()

    open_by_street = dict(
        rows(
            "SELECT a.code, count(*) FROM tickets t JOIN areas a ON a.id = t.street_id "
            "WHERE t.status = ANY(%s) GROUP BY a.code",
            [status.value for status in OPEN_STATUSES],
        )
    )
    return {
        "database_url": pg_url,
        "built_at": now.isoformat(),
        "note": "the streets and communities are synthetic (not official boundaries)",
        "password": city.password,
        "staff": [
            {k: (v.value if isinstance(v, StaffRole) else v) for k, v in a.items() if k != "id"}
            for a in city.staff
        ],
        "platforms": [
            {k: v for k, v in p.items() if k not in ("id", "share")} for p in city.platforms
        ],
        "districts": [
            {
                "code": code,
                "name": DISTRICTS[code][0],
                "streets": [s.code for s in city.streets if s.district == code],
            }
            for code in DISTRICTS
        ],
        "streets": [
            {
                "code": s.code,
                "name": s.name,
                "district": s.district,
                "open_tickets": open_by_street.get(s.code, 0),
            }
            for s in city.streets
        ],
        "units": [{"code": u.code, "kind": u.kind} for u in city.units],
        "categories": [c.code for c in city.categories],
        "counts": {table: rows(f"SELECT count(*) FROM {table}")[0][0] for table in COUNTED_TABLES},
        "tickets_by_status": dict(rows("SELECT status, count(*) FROM tickets GROUP BY status")),
        "open_tickets_of_their_own_life": history.open_natural,
        # The newest tickets of each status, and the riders who report most.
        "tickets": {
            status.value: [
                str(row[0])
                for row in rows(
                    "SELECT id FROM tickets WHERE status = %s ORDER BY created_at DESC LIMIT 20",
                    status.value,
                )
            ]
            for status in STATUSES
        },
        "busiest_riders": [
            {"platform": platform, "rider_id": rider}
            for platform, rider in rows(
                "SELECT p.code, r.external_id FROM rider_totals t JOIN riders r ON "
                "r.id = t.rider_id JOIN platforms p ON p.id = r.platform_id "
                "ORDER BY t.reports DESC LIMIT 30"
            )
        ],
    }


# --- the check -----------------------------------------------------------------------------

# Each a count of the rows that break a rule of the app (at the moment of the build).
RULES = {
    "a ticket's report_count is not its reports": """
        SELECT count(*) FROM tickets t
        WHERE report_count <> (SELECT count(*) FROM reports r WHERE r.ticket_id = t.id)""",
    "a ticket's first report did not open it": """
        SELECT count(*) FROM (SELECT DISTINCT ON (ticket_id) outcome FROM reports
        ORDER BY ticket_id, received_at, id) AS f WHERE outcome <> 'new_ticket'""",
    "a ticket is not where the report that opened it is": """
        SELECT count(*) FROM tickets t JOIN reports r ON r.ticket_id = t.id
        AND r.outcome = 'new_ticket' WHERE t.purged_at IS NULL
        AND NOT ST_Equals(t.location, r.location)""",
    "a report joined a ticket that was not open, or out of its window": """
        SELECT count(*) FROM reports r JOIN tickets t ON t.id = r.ticket_id
        JOIN categories c ON c.id = t.category_id WHERE r.outcome = 'joined_ticket'
        AND (r.received_at > t.created_at + make_interval(hours => c.dedup_window_h)
        OR r.received_at > (SELECT min(e.created_at) FROM ticket_events e
        WHERE e.ticket_id = t.id AND e.to_status IN ('resolved', 'rejected')))""",
    "a report is not counted as its ticket stands": """
        SELECT count(*) FROM reports r JOIN tickets t ON t.id = r.ticket_id
        WHERE r.counted_as <> r.outcome || '/' || CASE WHEN t.status = 'rejected'
        THEN 'rejected' WHEN t.status IN ('resolved', 'closed') THEN 'resolved'
        WHEN t.accepted_at IS NOT NULL THEN 'accepted' ELSE 'pending' END""",
    "a ticket's version is not one more than its changes": """
        SELECT count(*) FROM tickets t WHERE version <> 1 + (SELECT count(*)
        FROM ticket_events e WHERE e.ticket_id = t.id AND (e.actor_kind = 'staff'
        OR e.type IN ('auto_closed', 'reopened', 'unshelve')))""",
    "a ticket's updated_at is not its last change": """
        SELECT count(*) FROM tickets t WHERE updated_at <> greatest(t.created_at,
        (SELECT max(e.created_at) FROM ticket_events e WHERE e.ticket_id = t.id
        AND (e.actor_kind = 'staff' OR e.type IN ('auto_closed', 'reopened', 'unshelve'))),
        (SELECT max(r.received_at) FROM reports r WHERE r.ticket_id = t.id))""",
    "a ticket's status is not its last event's": """
        SELECT count(*) FROM tickets t WHERE status <> (SELECT e.to_status
        FROM ticket_events e WHERE e.ticket_id = t.id AND e.to_status IS NOT NULL
        ORDER BY e.created_at DESC LIMIT 1)""",
    "an event starts from another status than the one before it left": """
        SELECT count(*) FROM (SELECT from_status, lag(to_status) OVER (PARTITION BY
        ticket_id ORDER BY created_at) AS before FROM ticket_events
        WHERE to_status IS NOT NULL) AS e WHERE from_status <> before""",
    "a ticket's unit is not the one its open dispatch names": """
        SELECT count(*) FROM tickets t WHERE t.unit_id IS DISTINCT FROM (SELECT d.unit_id
        FROM dispatches d WHERE d.ticket_id = t.id AND d.ended_at IS NULL)""",
    "the office signed for a ticket after accepting it": """
        SELECT count(*) FROM tickets WHERE office_acknowledged_at > accepted_at""",
    "a ticket escalated without the event": """
        SELECT count(*) FROM tickets t WHERE escalated AND NOT EXISTS (SELECT 1
        FROM ticket_events e WHERE e.ticket_id = t.id AND e.type = 'escalated')""",
    "a report does not hold what it is owed": """
        WITH r AS (SELECT r.id, r.outcome, t.status, t.accepted_at, c.points_open,
        c.points_confirm, c.points_resolve, row_number() OVER (PARTITION BY r.ticket_id,
        r.rider_id ORDER BY r.received_at, r.id) = 1 AS earns FROM reports r
        JOIN tickets t ON t.id = r.ticket_id JOIN categories c ON c.id = t.category_id),
        owed AS (SELECT id, CASE WHEN NOT earns OR status = 'rejected' OR (accepted_at IS NULL
        AND status NOT IN ('resolved', 'closed')) THEN 0 WHEN outcome = 'new_ticket' THEN
        points_open + CASE WHEN status IN ('resolved', 'closed') THEN points_resolve ELSE 0
        END ELSE points_confirm END AS points FROM r),
        held AS (SELECT report_id, sum(points) AS points FROM points_ledger
        WHERE report_id IS NOT NULL GROUP BY report_id)
        SELECT count(*) FROM owed LEFT JOIN held ON held.report_id = owed.id
        WHERE owed.points <> coalesce(held.points, 0)""",
    "a verification without its line in the ledger": """
        SELECT count(*) FROM verifications v WHERE NOT EXISTS
        (SELECT 1 FROM points_ledger l WHERE l.verification_id = v.id)""",
    "a line of the ledger names an event of another ticket": """
        SELECT count(*) FROM points_ledger l WHERE NOT EXISTS (SELECT 1 FROM ticket_events e
        WHERE e.id = l.event_id AND e.ticket_id = l.ticket_id)""",
    "a rider's totals are not what the base tables count": """
        WITH counted AS (SELECT r.rider_id, count(*) AS reports,
        count(*) FILTER (WHERE r.outcome = 'new_ticket') AS opened,
        count(*) FILTER (WHERE r.outcome = 'joined_ticket') AS joined,
        count(*) FILTER (WHERE t.status IN ('resolved', 'closed') OR (t.status <> 'rejected'
        AND t.accepted_at IS NOT NULL)) AS accepted,
        count(*) FILTER (WHERE t.status IN ('resolved', 'closed')) AS resolved,
        count(*) FILTER (WHERE t.status = 'rejected') AS rejected
        FROM reports r JOIN tickets t ON t.id = r.ticket_id GROUP BY r.rider_id),
        v AS (SELECT rider_id, count(*) AS n FROM verifications GROUP BY rider_id),
        l AS (SELECT rider_id, sum(points) AS points FROM points_ledger GROUP BY rider_id)
        SELECT count(*) FROM riders d LEFT JOIN rider_totals tt ON tt.rider_id = d.id
        LEFT JOIN counted c ON c.rider_id = d.id LEFT JOIN v ON v.rider_id = d.id
        LEFT JOIN l ON l.rider_id = d.id WHERE (tt.reports, tt.tickets_opened, tt.joined,
        tt.accepted, tt.resolved, tt.rejected, tt.verifications, tt.points) IS DISTINCT FROM
        (coalesce(c.reports, 0), coalesce(c.opened, 0), coalesce(c.joined, 0),
        coalesce(c.accepted, 0), coalesce(c.resolved, 0), coalesce(c.rejected, 0),
        coalesce(v.n, 0), coalesce(l.points, 0))""",
    "a rider's days do not add up to its totals": """
        SELECT count(*) FROM rider_totals t FULL JOIN (SELECT rider_id, sum(reports) AS r,
        sum(accepted) AS a, sum(verifications) AS v, sum(points) AS p
        FROM rider_daily_activity GROUP BY rider_id) AS d ON d.rider_id = t.rider_id
        WHERE (d.r, d.a, d.v, d.p) IS DISTINCT FROM (t.reports, t.accepted, t.verifications,
        t.points) AND t.reports + t.verifications > 0""",
    "a platform's hour is not its riders' hours": """
        SELECT count(*) FROM (SELECT platform_id, hour, sum(reports) AS r, sum(resolved) AS s,
        sum(points) AS p FROM platform_activity GROUP BY 1, 2) AS a FULL JOIN (SELECT
        platform_id, hour, sum(reports) AS r, sum(resolved) AS s, sum(points) AS p
        FROM rider_activity GROUP BY 1, 2) AS b USING (platform_id, hour)
        WHERE (a.r, a.s, a.p) IS DISTINCT FROM (b.r, b.s, b.p)""",
    "a rider registered after its first report": """
        SELECT count(*) FROM riders d WHERE created_at > (SELECT min(received_at)
        FROM reports r WHERE r.rider_id = d.id)""",
    "an event for a platform not delivered, or older than the worker keeps": """
        SELECT count(*) FROM outbox_events WHERE state <> 'delivered'
        OR created_at < :now - make_interval(secs => :kept)""",
    "an open ticket purged, or a purged one's report still exact": """
        SELECT count(*) FROM tickets t LEFT JOIN reports r ON r.ticket_id = t.id
        WHERE t.purged_at IS NOT NULL AND (t.status NOT IN ('closed', 'rejected')
        OR r.description IS NOT NULL OR r.input_coord_sys <> 'wgs84')""",
    "an area that is not a valid polygon": """
        SELECT count(*) FROM areas WHERE NOT ST_IsValid(boundary)""",
}


def check(pg_url: str, *, sample: int = 20_000) -> list[str]:
    """What of the city at ``pg_url`` breaks a rule of the app, as of the moment it was
    built: the rules above; a sample of tickets and reports routed again by the app, and
    their working hours counted again on its calendar; the worker's sweeps (which must
    find nothing to do); a sample of tickets settled again (which must book nothing)."""
    problems = []
    database = Database(pg_url)
    settings = Settings(_env_file=None, secret_key=SECRET)
    try:
        with database.session() as session:
            now = session.execute(
                select(JobMark.at).where(JobMark.name == NOTIFY_MARK)
            ).scalar_one()
            kept = KEEP_HISTORY.total_seconds()
            for rule, sql in RULES.items():
                found = session.execute(text(sql), {"now": now, "kept": kept}).scalar_one()
                if found:
                    problems.append(f"{rule}: {found}")
            problems += _check_with_the_app(session, settings, now=now, sample=sample)
    finally:
        database.dispose()
    return problems


def _check_with_the_app(
    session: Session, settings: Settings, *, now: datetime, sample: int
) -> list[str]:
    problems = []
    areas = current_reference(session).areas
    routed = session.execute(
        text(
            "SELECT ST_X(r.location), ST_Y(r.location), r.input_lon, r.input_lat, "
            "r.input_coord_sys, r.district_id, r.street_id, r.community_id FROM reports r "
            "JOIN tickets t ON t.id = r.ticket_id WHERE t.purged_at IS NULL "
            "ORDER BY random() LIMIT :n"
        ),
        {"n": sample},
    ).all()
    for lon, lat, input_lon, input_lat, coord_sys, *where in routed:
        route = areas.route(lon=lon, lat=lat, snap_m=settings.routing_snap_m)
        ids = [route.district.id, _id(route.street), _id(route.community)]
        sent = to_wgs84(input_lon, input_lat, coord_sys)
        if ids != where or max(abs(sent[0] - lon), abs(sent[1] - lat)) > 1e-7:
            problems.append(f"a report at ({lon}, {lat}) is routed or converted elsewhere")
    calendar = load_calendar(session)
    for created, accepted, resolved, to_respond, to_resolve in session.execute(
        text(
            "SELECT created_at, accepted_at, resolved_at, response_working_h, "
            "resolution_working_h FROM tickets WHERE accepted_at IS NOT NULL "
            "ORDER BY random() LIMIT :n"
        ),
        {"n": sample // 4},
    ):
        if round(calendar.between(created, accepted), 4) != to_respond or (
            resolved is not None and round(calendar.between(created, resolved), 4) != to_resolve
        ):
            problems.append(f"working hours of a ticket opened at {created} miscounted")
    for name, sweep in (
        ("marks", lambda: mark_deadlines(session, now, escalate_after=settings.escalate_after)),
        ("breaches", lambda: record_breaches(session, now)),
        ("warnings", lambda: record_warnings(session, now)),
        ("escalations", lambda: escalate_late(session, now)),
        ("closing", lambda: close_resolved(session, now, after=timedelta(hours=AUTO_CLOSE_H))),
        ("reviews", lambda: unshelve_due(session, now)),
    ):
        if done := sweep():
            problems.append(f"the worker's sweep of {name} had {done} to do")
        session.rollback()
    count_lines = select(func.count()).select_from(PointsEntry)
    lines = session.execute(count_lines).scalar_one()
    for ticket in session.scalars(select(Ticket).order_by(func.random()).limit(sample // 40)):
        event = TicketEvent(
            id=uuid.uuid4(),
            ticket_id=ticket.id,
            type="comment",
            actor_kind="system",
            created_at=now,
        )
        session.add(event)
        settle(session, ticket, event=event, now=now)
    session.flush()
    if added := session.execute(count_lines).scalar_one() - lines:
        problems.append(f"settling tickets again booked {added} more lines")
    session.rollback()
    return problems


def _id(area: Any) -> int | None:
    return area.id if area is not None else None


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="of the history and its people")
    parser.add_argument("--pg-url", default=PG_URL, help="the database to make (dropped first)")
    parser.add_argument("--out", type=Path, default=Path("test-artifacts/city.json"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--check", action="store_true", help="then check it against the app's rules"
    )
    parser.add_argument(
        "--check-only", action="store_true", help="check the city at --pg-url, build nothing"
    )
    args = parser.parse_args()
    if not args.check_only:
        summary = build(pg_url=args.pg_url, scale=args.scale, seed=args.seed)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, ensure_ascii=False, indent=1, default=str))
        shown = ("counts", "tickets_by_status", "stage_seconds", "build_seconds")
        print(json.dumps({k: summary[k] for k in shown}, indent=1))
        print(f"written: {args.out}", file=sys.stderr)
    if args.check or args.check_only:
        started = time.perf_counter()
        problems = check(args.pg_url)
        print(f"checked in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        print("\n".join(problems) or "the city keeps the app's rules")
        if problems:
            sys.exit(1)


if __name__ == "__main__":
    main()
