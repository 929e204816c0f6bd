"""Report categories (Open311 "services"): the defaults shipped, look-ups, admin edits."""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.models import Category


@dataclass(frozen=True)
class DefaultCategory:
    code: str
    name_zh: str
    name_en: str
    department: str
    priority: int
    dedup_radius_m: int
    respond_within_h: int
    resolve_within_h: int
    description: str


DEFAULT_CATEGORIES: tuple[DefaultCategory, ...] = (
    DefaultCategory("road_damage", "道路破损", "Road damage", "市政道路养护", 2, 30, 24, 120,
                    "Potholes, broken kerbs and paving, sunken road surface."),
    DefaultCategory("ebike_parking", "电动车乱停放", "Badly parked e-bikes", "城管执法", 3, 20,
                    4, 24, "E-bikes and bicycles blocking pavements, crossings or entrances."),
    DefaultCategory("facility_damage", "公共设施损坏 (井盖、路灯、护栏)",
                    "Damaged public facility (manhole cover, street light, railing)",
                    "市政设施管理", 1, 25, 24, 72,
                    "Missing or broken manhole covers, dark street lights, broken railings."),
    DefaultCategory("fire_exit_blocked", "消防通道堵塞", "Fire exit or lane blocked", "消防救援",
                    1, 30, 2, 12, "Vehicles or goods blocking fire lanes, exits or hydrants."),
    DefaultCategory("illegal_charging", "飞线充电", "Illegal charging cable", "消防救援", 1, 20,
                    4, 24, "E-bike charging cables strung from windows or across walkways."),
    DefaultCategory("waste", "垃圾堆放", "Dumped waste", "绿化市容", 3, 40, 12, 48,
                    "Piles of rubbish, construction waste or bulky items left in public."),
    DefaultCategory("other", "其他", "Other", "街道综合管理", 3, 0, 24, 168,
                    "Anything else a street office should know about. Never merged."),
)


def ensure_default_categories(session: Session) -> list[Category]:
    """Insert the defaults that are missing; leave any the admins changed alone."""
    present = set(session.scalars(select(Category.code)))
    added = []
    for order, d in enumerate(DEFAULT_CATEGORIES):
        if d.code in present:
            continue
        category = Category(code=d.code, name_zh=d.name_zh, name_en=d.name_en,
                            department=d.department, priority=d.priority,
                            dedup_radius_m=d.dedup_radius_m, dedup_window_h=72,
                            respond_within_h=d.respond_within_h,
                            resolve_within_h=d.resolve_within_h, description=d.description,
                            points_open=10, points_confirm=2, points_resolve=5,
                            points_verify=3, active=True, sort_order=order)
        session.add(category)
        added.append(category)
    session.flush()
    return added


def list_categories(session: Session, *, include_inactive: bool = False) -> list[Category]:
    query = select(Category).order_by(Category.sort_order, Category.code)
    if not include_inactive:
        query = query.where(Category.active.is_(True))
    return list(session.scalars(query))


def get_category(session: Session, code: str) -> Category:
    category = session.scalar(select(Category).where(Category.code == code))
    if category is None:
        raise NotFound(f"no category with code {code}")
    return category


def put_category(session: Session, code: str, fields: dict[str, Any]) -> tuple[Category, bool]:
    """Create or replace the category ``code``; returns it and whether it was created."""
    category = session.scalar(select(Category).where(Category.code == code))
    created = category is None
    if category is None:
        category = Category(code=code, sort_order=len(DEFAULT_CATEGORIES))
        session.add(category)
    for name, value in fields.items():
        setattr(category, name, value)
    session.flush()
    return category, created


def entity_tag(payload: Any) -> str:
    """A strong ETag for a JSON-able payload: the hash of its canonical form."""
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False,
                                       default=str).encode()).hexdigest()
    return f'"{digest[:32]}"'
