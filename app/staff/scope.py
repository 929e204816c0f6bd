"""What part of the area tree a member of staff may see."""

from sqlalchemy import false, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.areas import area_tree_ids, get_area, list_areas
from app.errors import NotFound
from app.models import Area, Dispatch, Staff, StaffRole, Ticket


def staff_area_ids(session: Session, staff: Staff) -> set[int] | None:
    """Ids of the areas in ``staff``'s scope; None means every area (an admin)."""
    if staff.role == StaffRole.ADMIN:
        return None
    if staff.area is None:
        return set()
    return area_tree_ids(session, staff.area)


def scope_areas(session: Session, staff: Staff, *, boundaries: bool = False) -> list[Area]:
    """The areas ``staff`` may see, by code (none for an admin: it works no queue)."""
    ids = staff_area_ids(session, staff)
    return list_areas(session, ids=ids or ()) if boundaries else _areas(session, ids or set())


def _areas(session: Session, ids: set[int]) -> list[Area]:
    return list(session.scalars(select(Area).where(Area.id.in_(ids)).order_by(Area.code)))


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
