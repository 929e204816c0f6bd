"""Responsible units: the admin's edits, the look-ups the offices and the dispatch make.

A unit serves streets (always named) and categories (named, or every one: then
``all_categories`` is set and its list is empty). Only an active unit is dispatched to.
"""

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import begin_writes, lock
from app.errors import AlreadyExists, ValidationFailed, found
from app.models import Area, AreaLevel, Category, Ticket, Unit, UnitKind, unit_streets
from app.pagination import Page, PageRequest, keyset_page

UNIT_CODE = r"^[a-z][a-z0-9_-]{1,31}$"
_UNIT_CODE = re.compile(UNIT_CODE)
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class UnitInput:
    """A new unit: the streets it serves, and its categories (None: every one)."""

    code: str
    name: str
    kind: UnitKind
    streets: Sequence[str]
    categories: Sequence[str] | None = None
    active: bool = True


@dataclass(frozen=True)
class UnitChange:
    """What an admin changes of a unit: each field that is None stays as it is, and the
    categories only when ``change_categories`` (to None: every category)."""

    name: str | None = None
    kind: UnitKind | None = None
    streets: Sequence[str] | None = None
    categories: Sequence[str] | None = None
    change_categories: bool = False
    active: bool | None = None


def create_unit(session: Session, data: UnitInput) -> Unit:
    """A new unit; 422 naming the first field that is wrong, 409 if the code is taken."""
    if not _UNIT_CODE.fullmatch(data.code):
        raise ValidationFailed.of_field("code", "2–32 of a-z, 0-9, '_' or '-', from a letter")
    name = _checked_name(data.name)
    streets = _streets(session, data.streets)
    categories = _categories(session, data.categories)
    begin_writes(session)
    lock(session, ("unit", data.code))  # two creations of one code: the second sees the first
    if session.scalar(select(Unit.id).where(Unit.code == data.code)) is not None:
        raise AlreadyExists(f"unit {data.code} exists already")
    unit = Unit(
        code=data.code,
        name=name,
        kind=data.kind,
        all_categories=categories is None,
        active=data.active,
        streets=streets,
        categories=categories or [],
    )
    session.add(unit)
    session.flush()
    return unit


def update_unit(session: Session, code: str, *, change: UnitChange) -> Unit:
    """The unit ``code`` (404 if there is none) changed as ``change`` says; a wrong field
    is a 422 naming it, and nothing changes."""
    get_unit(session, code)
    name = None if change.name is None else _checked_name(change.name)
    streets = None if change.streets is None else _streets(session, change.streets)
    categories = _categories(session, change.categories) if change.change_categories else None
    begin_writes(session)
    lock(session, ("unit", code))  # the lists are replaced whole: one edit at a time
    unit = get_unit(session, code)
    session.refresh(unit)
    if name is not None:
        unit.name = name
    if change.kind is not None:
        unit.kind = change.kind
    if change.active is not None:
        unit.active = change.active
    if streets is not None:
        unit.streets = streets
    if change.change_categories:
        unit.all_categories = categories is None
        unit.categories = categories or []
    session.flush()
    return unit


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValidationFailed.of_field("name", f"1–{MAX_NAME_LENGTH} characters")
    return name


def _streets(session: Session, codes: Sequence[str]) -> list[Area]:
    """The streets of ``codes``, by code; a code of no street is a 422 naming ``streets``."""
    wanted = sorted(set(codes))
    if not wanted:
        raise ValidationFailed.of_field("streets", "a unit serves at least one street")
    streets = list(
        session.scalars(
            select(Area)
            .where(Area.code.in_(wanted), Area.level == AreaLevel.STREET)
            .order_by(Area.code)
        )
    )
    unknown = sorted(set(wanted) - {s.code for s in streets})
    if unknown:
        raise ValidationFailed.of_field(
            "streets", f"not the code of a street: {', '.join(unknown)}"
        )
    return streets


def _categories(session: Session, codes: Sequence[str] | None) -> list[Category] | None:
    """The categories of ``codes``, by code, or None (every category)."""
    if codes is None:
        return None
    wanted = sorted(set(codes))
    if not wanted:
        raise ValidationFailed.of_field(
            "categories", "name at least one category, or null for every category"
        )
    categories = list(
        session.scalars(select(Category).where(Category.code.in_(wanted)).order_by(Category.code))
    )
    unknown = sorted(set(wanted) - {c.code for c in categories})
    if unknown:
        raise ValidationFailed.of_field("categories", f"no such category: {', '.join(unknown)}")
    return categories


def find_unit(session: Session, code: str) -> Unit | None:
    return session.scalar(select(Unit).where(Unit.code == code))


def get_unit(session: Session, code: str) -> Unit:
    return found(find_unit(session, code), f"no unit with code {code}")


def page_units(session: Session, page: PageRequest) -> Page[Unit]:
    """Every unit, inactive ones included, by code."""
    return keyset_page(session, select(Unit), key=Unit.code, page=page)


def units_serving(session: Session, street_ids: Collection[int]) -> list[Unit]:
    """The active units that serve any of the streets ``street_ids``, by code (ids of
    other areas are ignored: a district's whole tree may be passed)."""
    if not street_ids:
        return []
    serving = select(unit_streets.c.unit_id).where(unit_streets.c.street_id.in_(street_ids))
    return list(
        session.scalars(
            select(Unit).where(Unit.active.is_(True), Unit.id.in_(serving)).order_by(Unit.code)
        )
    )


def unit_codes(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """``{unit id: code}`` for ``ids``, in one query."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.execute(select(Unit.id, Unit.code).where(Unit.id.in_(wanted)))
    return {id_: code for id_, code in rows}


def unit_to_dispatch(session: Session, ticket: Ticket, *, code: str | None) -> Unit:
    """The unit ``code``, if it is active and serves the ticket's street and category;
    else (or with no code) a 422 naming ``unit`` that says why."""
    if code is None:
        raise ValidationFailed.of_field("unit", "name the unit to dispatch to")
    unit = find_unit(session, code)
    if unit is None:
        raise ValidationFailed.of_field("unit", f"no unit with code {code}")
    if not unit.active:
        raise ValidationFailed.of_field("unit", f"unit {code} is not active")
    if ticket.street_id is None or ticket.street_id not in {s.id for s in unit.streets}:
        raise ValidationFailed.of_field("unit", f"unit {code} does not serve the ticket's street")
    if not unit.all_categories and ticket.category_id not in {c.id for c in unit.categories}:
        raise ValidationFailed.of_field(
            "unit", f"unit {code} does not handle the ticket's category"
        )
    return unit


def units_for_ticket(session: Session, ticket: Ticket) -> list[Unit]:
    """The active units a ticket may be dispatched to: serving its street, handling its
    category (by code)."""
    if ticket.street_id is None:
        return []
    return [
        unit
        for unit in units_serving(session, [ticket.street_id])
        if unit.all_categories or ticket.category_id in {c.id for c in unit.categories}
    ]
