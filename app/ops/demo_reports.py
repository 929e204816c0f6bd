"""Sample reports for the demo: a few problems in every street of Changning, each with a
photo, reported by two riders through the same intake as the API's, so that a street
office opening the console on a fresh install has tickets to work; and, in every
street, one taken up and one fixed by its office, with the fixed one's photo published,
so that the public page has something to show."""

import io
import random
import uuid
from datetime import datetime, timedelta

import shapely
from PIL import Image, ImageDraw
from sqlalchemy import select

from app import public
from app.categories import list_categories
from app.config import Settings
from app.db import Database
from app.geo import CoordSys
from app.intake import IntakeWriter, ReportInput
from app.media import media_store, store_media
from app.models import Staff, Ticket, TicketAction
from app.ops.demo_areas import build_demo_areas
from app.platforms import get_platform
from app.riders import issue_rider_token
from app.tickets import ActionInput, apply_action

PER_STREET = 3
RIDERS = (("meituan", "demo-rider-mt-01", "王师傅"), ("eleme", "demo-rider-elm-01", "李师傅"))
DESCRIPTIONS = {
    "road_damage": "路面有坑，电动车容易摔",
    "ebike_parking": "人行道上电动车乱停，挡住盲道",
    "facility_damage": "井盖缺失，已放了一个纸箱提醒",
    "fire_exit_blocked": "消防通道被杂物堵住",
    "illegal_charging": "楼道里飞线充电",
    "waste": "垃圾堆在路边没人清",
    "other": "路灯不亮，晚上很黑",
}


def photo(seed: int) -> bytes:
    """A JPEG that stands in for a rider's photo: a street-grey scene with a mark."""
    rng = random.Random(seed)
    image = Image.new("RGB", (640, 480), (120 + rng.randrange(40), 120, 118))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 300, 640, 480), fill=(70, 70, 72))
    x, y = rng.randrange(120, 520), rng.randrange(320, 440)
    draw.ellipse(
        (x - 60, y - 25, x + 60, y + 25), fill=(35, 30, 28), outline=(230, 180, 0), width=6
    )
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def _points(rng: random.Random, boundary: shapely.Geometry, *, n: int) -> list[tuple[float, float]]:
    min_x, min_y, max_x, max_y = boundary.bounds
    found: list[tuple[float, float]] = []
    while len(found) < n:
        x, y = rng.uniform(min_x, max_x), rng.uniform(min_y, max_y)
        if boundary.contains(shapely.Point(x, y)):
            found.append((x, y))
    return found


async def submit_demo_reports(
    database: Database, settings: Settings, *, writer: IntakeWriter, now: datetime
) -> int:
    """Report ``PER_STREET`` problems in every demo street, returning how many tickets
    they opened. Far enough apart that none merges with another."""
    rng = random.Random(310105)
    streets = [a for a in build_demo_areas() if a.level == "street"]
    with database.transaction() as session:
        codes = [c.code for c in list_categories(session)]
        riders = []
        for platform_code, rider_id, name in RIDERS:
            platform = get_platform(session, platform_code)
            riders.append(
                issue_rider_token(
                    session,
                    platform=platform,
                    rider_id=rider_id,
                    display_name=name,
                    settings=settings,
                ).rider
            )
    planned = []
    for n, street in enumerate(streets):
        for i, (lon, lat) in enumerate(_points(rng, street.boundary, n=PER_STREET)):
            seed = n * PER_STREET + i
            planned.append((riders[seed % len(riders)], codes[seed % len(codes)], lon, lat, seed))
    opened = 0
    taken_up: list[tuple[str, int]] = []  # (ticket id, its place among its street's)
    for rider, category, lon, lat, seed in planned:
        with database.transaction() as session:
            media = store_media(
                session, rider=rider, data=photo(seed), store=media_store(settings), now=now
            ).media
            media_id = media.id
        data = ReportInput(
            category=category,
            lat=lat,
            lon=lon,
            coord_sys=CoordSys.WGS84,
            accuracy_m=10.0,
            description=DESCRIPTIONS.get(category, "需要处理"),
            address_hint=None,
            observed_at=now - timedelta(minutes=seed * 7),
            media_ids=(media_id,),
        )
        received = await writer.submit(
            rider_id=rider.id, data=data, key=None, fingerprint="", now=now
        )
        opened += received.status == 201 and received.body.get("outcome") == "new_ticket"
        if seed % PER_STREET:
            taken_up.append((received.body["ticket"]["id"], seed % PER_STREET))
    await writer.stop()
    _triage(database, settings, taken_up=taken_up, now=now)
    return opened


def _triage(
    database: Database, settings: Settings, *, taken_up: list[tuple[str, int]], now: datetime
) -> None:
    """Each street's office accepts its second ticket, and fixes its third and publishes
    its photo (a demo photo shows nobody: no box to blur)."""
    store = media_store(settings)
    for ticket_id, place in taken_up:
        with database.transaction() as session:
            ticket = session.get(Ticket, uuid.UUID(ticket_id))
            assert ticket is not None
            officer = session.scalar(select(Staff).where(Staff.area_id == ticket.street_id))
            if officer is None:
                continue
            steps = [ActionInput(TicketAction.ACCEPT)]
            if place == 2:
                steps.append(ActionInput(TicketAction.RESOLVE, note="已处理完毕"))
            for step in steps:
                apply_action(
                    session,
                    ticket=ticket,
                    staff=officer,
                    data=step,
                    expected_version=None,
                    now=now,
                    settings=settings,
                )
            if place == 2:
                for media_id in public.photos_of(session, ticket):
                    public.publish(
                        session, officer, media_id=media_id, boxes=[], store=store, now=now
                    )
