"""The street office's pages: the queue with its map, a ticket and its actions, bulk
actions, photos, the CSV and the dashboard. A client of the domains, like the API's
routers, never of the HTTP API; the scope rules are the domains' own."""

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import Annotated, Any

import orjson
from fastapi import Depends, Form, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from geoalchemy2.shape import to_shape
from shapely.geometry import mapping
from sqlalchemy import Select
from sqlalchemy.orm import Session

from app.categories import all_categories
from app.config import Settings
from app.console.auth import OfficeClerk, StaffPage
from app.console.i18n import TZ
from app.console.web import console_router, locale_of
from app.deps import (
    ClockDep,
    DatabaseDep,
    LaggingReadDatabase,
    LaggingReadSession,
    SessionDep,
    SettingsDep,
)
from app.errors import AppError, NotFound, PreconditionFailed
from app.geo import BadBox, CoordSys, from_wgs84, parse_bbox, to_wgs84
from app.models import (
    AreaLevel,
    Category,
    Staff,
    StaffRole,
    Ticket,
    TicketAction,
    TicketEventType,
    TicketStatus,
)
from app.open311 import forwarding_of
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageRequest
from app.public import public_words
from app.staff import district_streets, scope_area_names, scope_areas
from app.tickets import (
    HIDE_REASONS,
    NEEDS_A_NOTE,
    PUBLIC_ACTIONS,
    REJECT_REASONS,
    XLSX,
    ActionInput,
    Nearby,
    QueueFilter,
    QueueRow,
    QueueSort,
    TicketView,
    actions_for,
    apply_action,
    daily_trend,
    map_points,
    merge_candidates,
    office_stats,
    page_query,
    queue_csv,
    queue_page,
    status_counts,
    street_table,
    streets_xlsx,
    ticket_in_scope,
    ticket_view,
    unit_table,
)
from app.units import units_for_ticket

router = console_router()

MAP_LIMIT = 5000  # ticket points on the queue's map at most
NEARBY_M = 300  # merge candidates: open tickets of the category this close
BULK_ACTIONS = (
    TicketAction.ACCEPT,
    TicketAction.ASSIGN,
    TicketAction.SET_PRIORITY,
    TicketAction.TRANSFER,
)
STATUS_ORDER = list(TicketStatus)


# -- what the queue is asked for, from the URL


@dataclass(frozen=True)
class QueueQuery:
    where: QueueFilter
    sort: QueueSort
    cursor: str | None
    limit: int
    errors: list[str]


def _day(value: str | None) -> date | None:
    """A date from the URL, if it is one the service can have tickets on."""
    try:
        day = date.fromisoformat(value) if value else None
    except ValueError:
        return None
    return day if day is not None and date(2000, 1, 1) <= day <= date(2100, 1, 1) else None


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), TZ)


def _bbox(value: str | None, settings: Settings) -> tuple[float, float, float, float] | None:
    """The map's view (in the tiles' datum) as a WGS-84 box; None if it is not one."""
    try:
        west, south, east, north = parse_bbox(value or "")
    except BadBox:
        return None
    if settings.console_tiles_datum == "gcj02":
        west, south = to_wgs84(west, south, CoordSys.GCJ02)
        east, north = to_wgs84(east, north, CoordSys.GCJ02)
    return (west, south, east, north)


def queue_query(request: Request, settings: Settings) -> QueueQuery:
    """The queue's filter from the URL: what cannot be read is left out and said."""
    p = request.query_params
    errors = []
    statuses = [
        TicketStatus(s) for s in p.getlist("status") if s in TicketStatus._value2member_map_
    ]
    created_from, created_to = _day(p.get("from")), _day(p.get("to"))
    if (p.get("from") and created_from is None) or (p.get("to") and created_to is None):
        errors.append("dates are written YYYY-MM-DD")
    sort = p.get("sort") or QueueSort.NEWEST.value
    try:
        limit = min(max(int(p.get("limit") or DEFAULT_LIMIT), 1), MAX_LIMIT)
    except ValueError:
        limit = DEFAULT_LIMIT
    where = QueueFilter(
        statuses=statuses,
        category=p.get("category") or None,
        street=p.get("street") or None,
        community=p.get("community") or None,
        overdue=True if p.get("overdue") else None,
        unrouted=True if p.get("unrouted") else None,
        bbox=_bbox(p.get("bbox"), settings),
        created_from=_start_of(created_from) if created_from else None,
        created_to=_start_of(created_to + timedelta(days=1)) if created_to else None,
        text=(p.get("q") or "").strip()[:100] or None,
        unit=(p.get("unit") or "")[:64] or None,
        needs_review=True if p.get("needs_review") else None,
        escalated=True if p.get("escalated") else None,
    )
    return QueueQuery(
        where=where,
        sort=QueueSort(sort) if sort in QueueSort._value2member_map_ else QueueSort.NEWEST,
        cursor=p.get("cursor") or None,
        limit=limit,
        errors=errors,
    )


# -- names the pages show


@dataclass(frozen=True)
class Names:
    """Category and area names for a clerk's pages, in the clerk's language."""

    categories: dict[str, Category]
    areas: dict[str, Any]  # code → an area of the scope (its names and level)
    locale: str

    def category(self, code: str) -> str:
        c = self.categories.get(code)
        if c is None:
            return code
        return c.name_en if self.locale == "en" and c.name_en else c.name_zh

    def area(self, code: str | None) -> str:
        if code is None:
            return ""
        a = self.areas.get(code)
        return code if a is None else self.of(a)

    def of(self, area: Any) -> str:
        """An area's name in the clerk's language (any area, in scope or not)."""
        return str(area.name_en if self.locale == "en" and area.name_en else area.name)

    def streets(self) -> list[tuple[str, str]]:
        """(code, name) of the scope's streets, by code: a filter's choices."""
        return self._choices(AreaLevel.STREET)

    def communities(self) -> list[tuple[str, str]]:
        """(code, name) of the scope's communities, by code (a district's 1,400)."""
        return self._choices(AreaLevel.COMMUNITY)

    def _choices(self, level: AreaLevel) -> list[tuple[str, str]]:
        return [(code, self.of(a)) for code, a in self.areas.items() if a.level == level]

    def row(self, ticket: Ticket) -> QueueRow:
        """``ticket`` as a row of the queue, the codes of its category and areas found
        among these names (every category, and the scope's areas, where the scope's
        tickets are): no query."""
        areas = self._area_codes
        return QueueRow(
            ticket,
            self._category_codes[ticket.category_id],
            areas.get(ticket.street_id),
            areas.get(ticket.community_id),
        )

    @cached_property
    def _category_codes(self) -> dict[int, str]:
        return {c.id: code for code, c in self.categories.items()}

    @cached_property
    def _area_codes(self) -> dict[int | None, str]:
        return {a.id: code for code, a in self.areas.items()}


def names_for(session: Session, areas: Iterable[Any], locale: str) -> Names:
    """The categories' names and those of ``areas`` (each with its code, names and
    level)."""
    return Names(
        categories={c.code: c for c in all_categories(session)},
        areas={a.code: a for a in areas},
        locale=locale,
    )


def sla_state(ticket: Ticket, now: datetime) -> tuple[str, datetime | None]:
    """How close the ticket's next deadline is: ``late``, ``soon`` (within a quarter of
    its time, or two hours), ``ok``, or ``done`` for a ticket that has none left."""
    if not ticket.is_open:
        return "done", None
    due = ticket.due_at
    if ticket.is_overdue(now):
        return "late", due
    left, whole = due - now, due - ticket.created_at
    if left <= max(whole / 4, timedelta(0)) or left <= timedelta(hours=2):
        return "soon", due
    return "ok", due


# -- a clerk's request


@dataclass(frozen=True, kw_only=True)
class Desk(StaffPage):
    """A clerk at work: the request, who makes it, their session, the settings, and the
    time it is."""

    now: datetime

    @property
    def names(self) -> Names:
        """The names of the clerk's scope."""
        areas = scope_area_names(self.session, self.staff)
        return names_for(self.session, areas, locale_of(self.request))

    def tickets(self, asked: QueueQuery, *, limit: int | None) -> Select[Ticket]:
        """The statement of the queue's first ``limit`` tickets (all, without one)."""
        return page_query(
            self.session,
            staff=self.staff,
            where=asked.where,
            sort=asked.sort,
            limit=limit,
            cursor=None,
            now=self.now,
        )


def _desk(
    request: Request,
    staff: OfficeClerk,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Desk:
    return Desk(request=request, settings=settings, staff=staff, session=session, now=clock())


AtDesk = Annotated[Desk, Depends(_desk)]


async def _lagging_desk(desk: AtDesk, session: LaggingReadSession) -> Desk:
    return replace(desk, session=session)


# A clerk's desk for the figures and exports, which may lag by seconds: read on the read
# replica when there is one (who the clerk is was checked on the database).
LaggingDesk = Annotated[Desk, Depends(_lagging_desk)]


# -- the queue


@router.get("/queue")
def queue(desk: AtDesk) -> Response:
    request, session, staff, now = desk.request, desk.session, desk.staff, desk.now
    names = desk.names
    asked = queue_query(request, desk.settings)
    rows: list[QueueRow] = []
    next_cursor = None
    counts: dict[TicketStatus, int] = {}
    errors = list(asked.errors)
    try:
        page = queue_page(
            session,
            staff=staff,
            where=asked.where,
            sort=asked.sort,
            page=PageRequest(asked.limit, asked.cursor),
            now=now,
        )
        rows, next_cursor = [names.row(t) for t in page.items], page.next_cursor
        counts = status_counts(session, staff=staff, where=asked.where, now=now)
    except AppError as refused:
        errors.append(refused.detail)
    partial = request.headers.get("hx-target") == "results"
    return desk.render(
        "_results.html" if partial else "queue.html",
        asked=asked,
        rows=rows,
        next_cursor=next_cursor,
        counts=counts,
        statuses=STATUS_ORDER,
        names=names,
        errors=errors,
        sla_state=sla_state,
        sorts=list(QueueSort),
        bulk_actions=BULK_ACTIONS,
        transfer_streets=district_streets(session, staff),
        tiles=_tiles(desk.settings),
        is_district=staff.role == StaffRole.DISTRICT,
        done=_done(request),
    )


# What a page may say was just done: an action, or a photo published or withdrawn.
DONE = frozenset(
    {*TicketAction, TicketEventType.PHOTO_PUBLISHED, TicketEventType.PHOTO_UNPUBLISHED}
)


def _done(request: Request) -> str | None:
    done = request.query_params.get("done")
    return done if done in DONE else None


def _tiles(settings: Settings) -> dict[str, str]:
    if not settings.console_tiles_url:
        return {}
    return {
        "url": settings.console_tiles_url,
        "attribution": settings.console_tiles_attribution,
        "subdomains": settings.console_tiles_subdomains,
        "datum": settings.console_tiles_datum,
    }


def _on_tiles(settings: Settings, lon: float, lat: float) -> list[float]:
    """[lon, lat] of a WGS-84 point where the configured tiles draw it."""
    if settings.console_tiles_datum == "gcj02":
        lon, lat = from_wgs84(lon, lat, CoordSys.GCJ02)
    return [round(lon, 7), round(lat, 7)]


def _shift(settings: Settings, coordinates: Any) -> Any:
    if isinstance(coordinates[0], float | int):
        return _on_tiles(settings, coordinates[0], coordinates[1])
    return [_shift(settings, c) for c in coordinates]


@router.get("/map/tickets")
def map_tickets(desk: AtDesk) -> Response:
    """The queue's tickets (its filter, at most ``MAP_LIMIT``) as GeoJSON points in the
    tiles' datum."""
    settings, asked = desk.settings, queue_query(desk.request, desk.settings)
    names = names_for(desk.session, (), locale_of(desk.request))
    category_names = {c.id: names.category(code) for code, c in names.categories.items()}
    points = map_points(
        desk.session,
        staff=desk.staff,
        where=asked.where,
        sort=asked.sort,
        limit=MAP_LIMIT - 1,
        now=desk.now,
    )
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": _on_tiles(settings, p.lon, p.lat)},
            "properties": {
                "id": ticket_id,
                "ref": p.ref,
                "status": p.status,
                "overdue": p.overdue,
                "category": category_names.get(p.category_id, ""),
                "url": f"/console/tickets/{ticket_id}",
            },
        }
        for p in points
        for ticket_id in (str(p.id),)
    ]
    # orjson: the standard library's encoder took 20 ms of a district's 5,000 points.
    return Response(
        orjson.dumps({"type": "FeatureCollection", "features": features}),
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


@router.get("/map/areas")
def map_areas(desk: AtDesk) -> JSONResponse:
    """The scope's streets and communities, with their names, in the tiles' datum."""
    settings, locale = desk.settings, locale_of(desk.request)
    features = [
        {
            "type": "Feature",
            "geometry": {
                "type": "MultiPolygon",
                "coordinates": _shift(settings, mapping(to_shape(a.boundary))["coordinates"]),
            },
            "properties": {
                "code": a.code,
                "name": a.name_en if locale == "en" and a.name_en else a.name,
                "level": a.level,
            },
        }
        for a in scope_areas(desk.session, desk.staff)
        if a.level != AreaLevel.DISTRICT
    ]
    return JSONResponse(
        {"type": "FeatureCollection", "features": features},
        headers={"Cache-Control": "private, max-age=300"},
    )


@router.get("/queue.csv")
def queue_export(desk: LaggingDesk, database: LaggingReadDatabase) -> StreamingResponse:
    query = desk.tickets(queue_query(desk.request, desk.settings), limit=None)
    stamp = desk.now.astimezone(TZ).strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        queue_csv(database, query, now=desk.now),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="tickets-{stamp}.csv"'},
    )


# -- one ticket


# The actions the ticket page has a form for (a unit's own steps are its crew's, on its
# work list).
CONSOLE_FORMS = frozenset(
    {
        TicketAction.ACCEPT,
        TicketAction.REJECT,
        TicketAction.ASSIGN,
        TicketAction.START,
        TicketAction.RESOLVE,
        TicketAction.CLOSE,
        TicketAction.REOPEN,
        TicketAction.TRANSFER,
        TicketAction.MERGE,
        TicketAction.COMMENT,
        TicketAction.SET_PRIORITY,
        TicketAction.DISPATCH,
        TicketAction.ACKNOWLEDGE,
        TicketAction.CHECK_PASS,
        TicketAction.CHECK_FAIL,
        TicketAction.REQUEST_EXTENSION,
        TicketAction.APPROVE_EXTENSION,
        TicketAction.DENY_EXTENSION,
        TicketAction.SHELVE,
        TicketAction.UNSHELVE,
        TicketAction.RECATEGORISE,
        TicketAction.RELOCATE,
        TicketAction.DEESCALATE,
    }
)


def _ticket_page(
    desk: Desk,
    view: TicketView,
    *,
    template: str = "ticket.html",
    **context: Any,
) -> HTMLResponse:
    """The ticket's page; ``context`` (a ``status_code`` too) goes on to ``render``.
    What only a form needs (the streets to transfer to, the units to dispatch to) is
    looked up only when that action is offered."""
    ticket, settings, session, staff = view.ticket, desk.settings, desk.session, desk.staff
    point = to_shape(ticket.location)
    candidates = merge_candidates(session, ticket, staff=staff, within_m=NEARBY_M, now=desk.now)
    actions = [
        a for a in actions_for(ticket, staff) if a not in PUBLIC_ACTIONS and a in CONSOLE_FORMS
    ]
    streets = district_streets(session, staff) if TicketAction.TRANSFER in actions else []
    return desk.render(
        template,
        view=view,
        ticket=ticket,
        lat=point.y,
        lon=point.x,
        spot=_on_tiles(settings, point.x, point.y),
        # The ticket's own areas (in the clerk's scope, as the ticket is), not the scope's.
        names=names_for(session, view.areas.values(), locale_of(desk.request)),
        actions=actions,
        public_words=public_words(session, [ticket])[ticket.id],
        hide_reasons=sorted(HIDE_REASONS),
        reject_reasons=sorted(REJECT_REASONS),
        needs_a_note=NEEDS_A_NOTE,
        candidates=candidates,
        candidates_json=json.dumps([_candidate(settings, c) for c in candidates]),
        transfer_streets=[s for s in streets if s.id != ticket.street_id],
        units=units_for_ticket(session, ticket) if TicketAction.DISPATCH in actions else [],
        sla_state=sla_state,
        tiles=_tiles(settings),
        forwarded=forwarding_of(desk.session, ticket),
        **context,
    )


def _candidate(settings: Settings, nearby: Nearby) -> dict[str, Any]:
    lon, lat = _on_tiles(settings, nearby.lon, nearby.lat)
    return {
        "ref": nearby.ref,
        "status": nearby.status,
        "lat": lat,
        "lon": lon,
        "url": f"/console/tickets/{nearby.id}",
    }


def _load(session: Session, staff: Staff, ticket_id: str) -> Ticket:
    try:
        return ticket_in_scope(session, staff, ticket_id=uuid.UUID(ticket_id))
    except ValueError:
        raise NotFound("no such ticket in your scope") from None


@router.get("/tickets/{ticket_id}")
@router.get("/tickets/{ticket_id}/print", name="work_order")
def ticket_page(ticket_id: str, desk: AtDesk) -> Response:
    """A ticket; at ``…/print``, the same as a work order for a crew."""
    ticket = _load(desk.session, desk.staff, ticket_id)
    printable = desk.request.url.path.endswith("/print")
    return _ticket_page(
        desk,
        ticket_view(desk.session, ticket),
        template="print.html" if printable else "ticket.html",
        done=_done(desk.request),
    )


def _action_input(
    action: str,
    note: str,
    reason: str,
    assignee: str,
    to_street: str,
    into_ticket: str,
    priority: str,
    public_summary: str = "",
    report_id: str = "",
    unit: str = "",
    hours: str = "",
    review_on: str = "",
    category: str = "",
    point: tuple[str, str, str] = ("", "", ""),
) -> ActionInput:
    def uuid_or_none(value: str) -> uuid.UUID | None:
        try:
            return uuid.UUID(value) if value else None
        except ValueError:
            return None

    def number_or_none(value: str) -> float | None:
        try:
            return float(value) if value else None
        except ValueError:
            return None

    def date_or_none(value: str) -> date | None:
        try:
            return date.fromisoformat(value) if value else None
        except ValueError:
            return None

    lat, lon = _wgs84(*point)
    return ActionInput(
        action=TicketAction(action),
        lat=lat,
        lon=lon,
        note=note.strip() or None,
        reason=reason or None,
        assignee=assignee.strip() or None,
        to_street=to_street or None,
        into_ticket=uuid_or_none(into_ticket),
        priority=int(priority) if priority.isascii() and priority.isdigit() else None,
        public_summary=public_summary,
        report_id=uuid_or_none(report_id),
        unit=unit or None,
        hours=number_or_none(hours),
        review_on=date_or_none(review_on),
        category=category or None,
    )


def _wgs84(lat: str, lon: str, coord_sys: str) -> tuple[float | None, float | None]:
    """A point typed in a datum, in WGS-84; (None, None) unless it is one."""
    try:
        x, y = float(lon), float(lat)
        system = CoordSys(coord_sys or CoordSys.WGS84)
    except ValueError:
        return None, None
    if not (-180 <= x <= 180 and -90 <= y <= 90):
        return None, None
    x, y = to_wgs84(x, y, system)
    return y, x


ActionName = Annotated[str, Form(pattern="^(" + "|".join(a.value for a in TicketAction) + ")$")]
Text = Annotated[str, Form(max_length=2000)]
Code = Annotated[str, Form(max_length=64)]


@router.post("/tickets/{ticket_id}/actions")
def act(
    ticket_id: str,
    desk: AtDesk,
    action: ActionName,
    version: Annotated[int, Form(ge=1)],
    note: Text = "",
    reason: Code = "",
    assignee: Annotated[str, Form(max_length=200)] = "",
    to_street: Code = "",
    into_ticket: Code = "",
    priority: Code = "",
    public_summary: Text = "",
    report_id: Code = "",
    unit: Code = "",
    hours: Code = "",
    review_on: Code = "",
    category: Code = "",
    lat: Code = "",
    lon: Code = "",
    coord_sys: Code = "",
) -> Response:
    """One action on the version of the ticket the clerk saw: if it has changed since,
    nothing is done and the page says who changed it and when."""
    session, staff, now = desk.session, desk.staff, desk.now
    ticket = _load(session, staff, ticket_id)
    data = _action_input(
        action,
        note,
        reason,
        assignee,
        to_street,
        into_ticket,
        priority,
        public_summary=public_summary,
        report_id=report_id,
        unit=unit,
        hours=hours,
        review_on=review_on,
        category=category,
        point=(lat, lon, coord_sys),
    )
    try:
        apply_action(
            session,
            ticket=ticket,
            staff=staff,
            data=data,
            expected_version=version,
            now=now,
            settings=desk.settings,
        )
    except AppError as refused:
        session.rollback()
        ticket = _load(session, staff, ticket_id)
        view = ticket_view(session, ticket)
        stale = isinstance(refused, PreconditionFailed)
        return _ticket_page(
            desk,
            view,
            status_code=409 if stale else refused.status,
            refused=refused,
            stale=view.events[-1] if stale and view.events else None,
            tried=data,
        )
    try:
        ticket_in_scope(session, staff, ticket_id=ticket.id)
    except NotFound:  # transferred to another street: no longer this clerk's
        return RedirectResponse(f"/console/queue?done={action}", status_code=303)
    return RedirectResponse(f"/console/tickets/{ticket.id}?done={action}", status_code=303)


@dataclass(frozen=True)
class BulkOutcome:
    ref: str
    ticket_id: str
    done: bool
    reason: str | None


@router.post("/bulk")
def bulk(
    desk: AtDesk,
    database: DatabaseDep,
    action: ActionName,
    ticket: Annotated[list[str], Form(max_length=MAX_LIMIT)],
    assignee: Annotated[str, Form(max_length=200)] = "",
    priority: Code = "",
    to_street: Code = "",
    back: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """Each checked ticket gets its own action, event and transaction: one refused
    leaves the others done."""
    staff, now = desk.staff, desk.now
    outcomes = []
    data = _action_input(action, "", "", assignee, to_street, "", priority)
    for ticket_id in dict.fromkeys(ticket):
        ref = ticket_id
        try:
            with database.transaction() as session:
                own = session.get(Staff, staff.id)
                assert own is not None
                target = _load(session, own, ticket_id)
                ref = target.ref
                apply_action(
                    session,
                    ticket=target,
                    staff=own,
                    data=data,
                    expected_version=None,
                    now=now,
                    settings=desk.settings,
                )
            outcomes.append(BulkOutcome(ref, ticket_id, True, None))
        except AppError as refused:
            outcomes.append(BulkOutcome(ref, ticket_id, False, refused.detail))
    return desk.render(
        "bulk.html",
        action=data.action,
        outcomes=outcomes,
        back=back if back.startswith("/console/") else "/console/queue",
    )


# -- the dashboard


@router.get("/dashboard")
def dashboard(desk: LaggingDesk) -> Response:
    """The office's numbers for a window of days (the last 30 unless ``from``/``to``)."""
    session, staff, now = desk.session, desk.staff, desk.now
    first, last, start, end = _dashboard_window(desk)

    sort = _street_sort(desk.request.query_params.get("sort"))
    streets = (
        street_table(session, staff=staff, created_from=start, created_to=end, now=now, sort=sort)
        if staff.role == StaffRole.DISTRICT
        else []
    )
    return desk.render(
        "dashboard.html",
        numbers=office_stats(session, staff=staff, created_from=start, created_to=end, now=now),
        trend=daily_trend(session, staff=staff, created_from=start, created_to=end, tz=TZ),
        streets=streets,
        units=unit_table(session, staff=staff, dispatched_from=start, dispatched_to=end, now=now),
        street_columns=list(STREET_LABELS.items()),
        sort=sort,
        first=first,
        last=last,
        names=desk.names,
        statuses=STATUS_ORDER,
    )


# The table of streets' columns, as the dashboard heads them.
STREET_LABELS = {
    "total": "Tickets",
    "open": "Open",
    "overdue": "Overdue",
    "closure_rate": "Closure rate",
    "on_time_response_rate": "On-time response",
    "on_time_resolution_rate": "On-time resolution",
    "reopen_rate": "Reopen rate",
    "median_working_hours_to_respond": "Median working hours to respond",
    "median_working_hours_to_resolve": "Median working hours to resolve",
    "median_minutes_to_acknowledge": "Median minutes to sign for (签收)",
    "acknowledged_within_1h_rate": "Signed for within an hour",
}


def _street_sort(value: str | None) -> str:
    return value if value and value.lstrip("-") in STREET_LABELS else "-total"


def _dashboard_window(desk: "Desk") -> tuple[date, date, datetime, datetime]:
    today = desk.now.astimezone(TZ).date()
    first = _day(desk.request.query_params.get("from")) or today - timedelta(days=29)
    last = _day(desk.request.query_params.get("to")) or today
    if last < first:
        first, last = last, first
    last = min(last, first + timedelta(days=365))
    return first, last, _start_of(first), _start_of(last + timedelta(days=1))


@router.get("/dashboard/streets.xlsx")
def streets_workbook(desk: LaggingDesk) -> Response:
    """The dashboard's table of streets as an Excel workbook, for the district's report."""
    _first, _last, start, end = _dashboard_window(desk)
    rows = street_table(
        desk.session,
        staff=desk.staff,
        created_from=start,
        created_to=end,
        now=desk.now,
        sort=_street_sort(desk.request.query_params.get("sort")),
    )
    return Response(
        streets_xlsx(rows, created_from=start, created_to=end),
        media_type=XLSX,
        headers={"Content-Disposition": 'attachment; filename="streets.xlsx"'},
    )
