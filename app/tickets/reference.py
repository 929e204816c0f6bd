"""Areas, categories and the working calendar, held in each process for the reports
that read them.

Every report reads both; they change a few times a year (an area import, an admin's
edit of a category). So each process keeps a :class:`Reference` in memory — the areas
indexed for routing, the categories' rules by code — and whoever relies on it checks,
in the transaction it works in, that the database's version tokens (``reference_versions``,
replaced by a trigger whenever a statement changes either table) are still the ones the
copy was loaded at: one small read. The intake checks once per batch of reports, inside
the batch's transaction; a request that routes a point, once per request.

One copy per database (a process may talk to several: the test suite does).
"""

import logging
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.areas import AreaMap, Route, load_area_map
from app.db import DATABASE, Database
from app.models import Category, ReferenceVersion
from app.tickets.calendar import load_calendar
from app.tickets.working_time import WorkingCalendar

logger = logging.getLogger("sentinel.reference")

REFERENCE_TOKENS = select(ReferenceVersion.name, ReferenceVersion.token).order_by(
    ReferenceVersion.name
)


@dataclass(frozen=True)
class CategoryRules:
    """What intake needs of a category: whether it takes reports, how its tickets are
    merged and timed, and what its reports earn."""

    id: int
    code: str
    active: bool
    priority: int
    respond_within_h: int
    resolve_within_h: int
    sla_clock: str
    dedup_radius_m: int
    dedup_window_h: int
    points_open: int
    points_confirm: int
    points_resolve: int
    points_verify: int


_RULES = tuple(CategoryRules.__dataclass_fields__)


@dataclass(frozen=True)
class Reference:
    tokens: tuple[tuple[str, str], ...]
    areas: AreaMap
    categories: Mapping[str, CategoryRules]
    calendar: WorkingCalendar


_copies: "weakref.WeakKeyDictionary[Database, Reference]" = weakref.WeakKeyDictionary()
_loading = threading.Lock()


def held_reference(database: Database) -> Reference | None:
    """This process's copy for ``database``, current or not (None before the first load)."""
    return _copies.get(database)


def current_reference(session: Session) -> Reference:
    """The reference data as this session's transaction sees it: the copy held, if its
    tokens are the database's, else a fresh copy (kept for the next caller)."""
    tokens = tuple((name, token) for name, token in session.execute(REFERENCE_TOKENS))
    return current_at(session, tokens)


def current_at(session: Session, tokens: tuple[tuple[str, str], ...]) -> Reference:
    """Like :func:`current`, with the tokens already read in this transaction."""
    database: Database = session.info[DATABASE]
    copy = _copies.get(database)
    if copy is not None and copy.tokens == tokens:
        return copy
    with _loading:  # one load at a time: concurrent callers wait for it and share it
        copy = _copies.get(database)
        if copy is None or copy.tokens != tokens:
            copy = Reference(
                tokens,
                load_area_map(session),
                _load_categories(session),
                load_calendar(session),
            )
            _copies[database] = copy
    return copy


def warm_reference(database: Database) -> None:
    """Load the copy now (a process's start), rather than on its first report; if the
    database cannot be read yet, the first report loads it."""
    try:
        with database.session(write=False) as session:
            current_reference(session)
    except Exception as error:
        logger.warning(
            "reference data not loaded at start",
            extra={"fields": {"error": f"{type(error).__name__}: {error}"}},
        )


def _load_categories(session: Session) -> dict[str, CategoryRules]:
    columns = [getattr(Category, name) for name in _RULES]
    return {row.code: CategoryRules(*row) for row in session.execute(select(*columns))}


def route_point(session: Session, *, lon: float, lat: float, snap_m: float) -> Route:
    """Route (lon, lat) on the areas as they stand in this session's database."""
    return current_reference(session).areas.route(lon=lon, lat=lat, snap_m=snap_m)
