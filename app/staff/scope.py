"""What part of the area tree a member of staff may see."""

import threading
import weakref
from dataclasses import dataclass

from sqlalchemy import false, or_, select, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.areas import get_area, list_areas
from app.db import DATABASE, Database
from app.errors import NotFound
from app.models import Area, AreaLevel, Dispatch, ReferenceVersion, Staff, StaffRole, Ticket


@dataclass(frozen=True)
class AreaName:
    """An area as a page names it: its code, its names, its level and its parent."""

    id: int
    code: str
    name: str
    name_en: str | None
    level: AreaLevel
    parent_id: int | None


_NAMED = (Area.id, Area.code, Area.name, Area.name_en, Area.level, Area.parent_id)


def _in_tree(root_id: int) -> list[ColumnElement[bool]]:
    """The area ``root_id`` and every area at most two levels below it, as conditions
    each found through an index (the root by its key, the others by their parent's), to
    be read as a union: one statement however many areas the tree holds, where a list of
    a district's 1,400 ids would be a statement of 1,400 parameters compiled anew on
    every page."""
    parents = select(Area.id).where(or_(Area.id == root_id, Area.parent_id == root_id))
    return [Area.id == root_id, Area.parent_id.in_(parents)]


def staff_area_ids(session: Session, staff: Staff) -> set[int] | None:
    """Ids of the areas in ``staff``'s scope; None means every area (an admin)."""
    if staff.role == StaffRole.ADMIN:
        return None
    return {area.id for area in scope_area_names(session, staff)}


def scope_areas(session: Session, staff: Staff) -> list[Area]:
    """The areas ``staff`` may see, with their boundaries, by code (none for an admin: it
    works no queue)."""
    return list_areas(session, ids=staff_area_ids(session, staff) or ())


# The areas' version token (``reference_versions``, replaced by a trigger whenever a
# statement changes the table): the names a process holds are current while it is.
_AREAS_TOKEN = select(ReferenceVersion.token).where(ReferenceVersion.name == "areas")
# Per database: a scope's root → (the areas' token they were read at, the scope's names).
_Held = dict[int, tuple[str | None, tuple[AreaName, ...]]]
_held_names: "weakref.WeakKeyDictionary[Database, _Held]" = weakref.WeakKeyDictionary()
_held_lock = threading.Lock()


def scope_area_names(session: Session, staff: Staff) -> tuple[AreaName, ...]:
    """The areas ``staff`` may see, by code, as the pages name them (none for an admin,
    as :func:`scope_areas`).

    Areas change a few times a year and a district's queue names its 1,400 on every
    page (7 ms to read them): each process keeps a scope's names, and reads them again
    only when the areas' version token of this transaction is no longer the one they
    were read at."""
    root = None if staff.role == StaffRole.ADMIN else staff.area_id
    if root is None:
        return ()
    token = session.scalar(_AREAS_TOKEN)
    database = session.info.get(DATABASE)
    with _held_lock:
        held = _held_names.get(database, {}).get(root) if database is not None else None
    if held is not None and held[0] == token:
        return held[1]
    parts = [select(*_NAMED).where(c) for c in _in_tree(root)]
    rows = session.execute(union_all(*parts))
    named = tuple(sorted((AreaName(*row) for row in rows), key=lambda a: a.code))
    if database is not None and token is not None:
        with _held_lock:
            _held_names.setdefault(database, {})[root] = (token, named)
    return named


def district_streets(session: Session, staff: Staff) -> list[AreaName]:
    """The streets of ``staff``'s district (an officer's: its street's district), by
    code, as the pages name them: those a ticket of theirs may be transferred to."""
    area = staff.area
    if area is None:
        return []
    district_id = area.id if area.level == AreaLevel.DISTRICT else area.parent_id
    if district_id is None:
        return []
    rows = session.execute(
        select(*_NAMED)
        .where(Area.parent_id == district_id, Area.level == AreaLevel.STREET)
        .order_by(Area.code)
    )
    return [AreaName(*row) for row in rows]


def area_in_scope(session: Session, staff: Staff, *, code: str) -> Area:
    """The area ``code`` if ``staff`` may see it; otherwise as unknown as a missing one."""
    area = get_area(session, code)
    scope = staff_area_ids(session, staff)
    if scope is not None and area.id not in scope:
        raise NotFound(f"no area with code {code}")
    return area


def ticket_scope_filter(staff: Staff) -> ColumnElement[bool]:
    """The tickets ``staff`` may see: its street's, every one of its district's, or (a
    unit's crew) those ever dispatched to its unit — the ones it holds now to act on, the
    others to read."""
    if staff.role == StaffRole.OFFICER:
        return Ticket.street_id == staff.area_id
    if staff.role == StaffRole.DISTRICT:
        return Ticket.district_id == staff.area_id
    if staff.role == StaffRole.CREW and staff.unit_id is not None:
        return Ticket.id.in_(select(Dispatch.ticket_id).where(Dispatch.unit_id == staff.unit_id))
    return false()
