"""What part of the area tree a member of staff may see."""

from sqlalchemy import false
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.errors import NotFound
from app.models import Area, Staff, StaffRole, Ticket
from app.services.areas import area_tree_ids, get_area


def staff_area_ids(session: Session, staff: Staff) -> set[int] | None:
    """Ids of the areas in ``staff``'s scope; None means every area (an admin)."""
    if staff.role == StaffRole.ADMIN:
        return None
    if staff.area is None:
        return set()
    return area_tree_ids(session, staff.area)


def area_in_scope(session: Session, staff: Staff, code: str) -> Area:
    """The area ``code`` if ``staff`` may see it; otherwise as unknown as a missing one."""
    area = get_area(session, code)
    scope = staff_area_ids(session, staff)
    if scope is not None and area.id not in scope:
        raise NotFound(f"no area with code {code}")
    return area


def ticket_scope_filter(staff: Staff) -> ColumnElement[bool]:
    """The tickets ``staff`` may see: its street's, or every one of its district's."""
    if staff.role == StaffRole.OFFICER:
        return Ticket.street_id == staff.area_id
    if staff.role == StaffRole.DISTRICT:
        return Ticket.district_id == staff.area_id
    return false()
