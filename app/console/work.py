"""A unit's crew at work, on a phone: the tickets its unit holds, the nearest deadline
first, each as a card with the spot (a link that opens Amap or Baidu Maps there), the
riders' photos and words (personal details masked), and its steps — 签收, 开始处置,
处置完毕 with photos from the camera, 回退, 申请延期. What the unit handled before stays
readable. Like the office's pages, a client of the domains; the scope is theirs."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response
from geoalchemy2.shape import to_shape
from sqlalchemy.orm import Session

from app.areas import areas_by_ids
from app.categories import all_categories
from app.console.auth import StaffPage
from app.console.gate import crew_only, crew_uploader
from app.console.pages import Names, sla_state
from app.console.web import console_router, locale_of
from app.deps import ClockDep, DatabaseDep, SessionDep, SettingsDep
from app.errors import PROBLEM_JSON, AppError, NotFound, PreconditionFailed, ValidationFailed
from app.geo import MapLink, map_links
from app.masking import mask_personal_details
from app.media import media_store, receive_staff_photo
from app.models import Staff, StaffPhoto, Ticket, TicketAction, Unit
from app.tickets import (
    RETURN_REASONS,
    ActionInput,
    FirstSight,
    TicketView,
    actions_for,
    apply_action,
    first_sights,
    handled_by_unit,
    queue_rows,
    ticket_in_scope,
    ticket_view,
    work_list,
)

router = console_router()

# The steps a crew takes on its phone, in the order it takes them.
CREW_STEPS = (
    TicketAction.ACKNOWLEDGE,
    TicketAction.START,
    TicketAction.REPORT_DONE,
    TicketAction.REQUEST_EXTENSION,
    TicketAction.RETURN,
)
MAX_PHOTOS = 6  # photos with one step at most


@dataclass(frozen=True, kw_only=True)
class Crew(StaffPage):
    """A crew member at work: who, the request's session, and the time it is."""

    now: datetime


def _crew(
    request: Request,
    staff: Annotated[Staff, Depends(crew_only)],
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Crew:
    return Crew(request=request, settings=settings, staff=staff, session=session, now=clock())


AtWork = Annotated[Crew, Depends(_crew)]


def _names(session: Session, tickets: list[Ticket], locale: str) -> Names:
    """Category names, and the names of the tickets' streets and communities."""
    ids = {i for t in tickets for i in (t.street_id, t.community_id) if i}
    areas = areas_by_ids(session, ids)
    return Names(
        categories={c.code: c for c in all_categories(session)},
        areas={a.code: a for a in areas},
        locale=locale,
    )


@dataclass(frozen=True)
class Card:
    """A ticket on the work list."""

    ticket: Ticket
    category: str  # its category's code
    street: str | None
    community: str | None
    sight: FirstSight
    links: list[MapLink]


def _links(ticket: Ticket, title: str) -> list[MapLink]:
    point = to_shape(ticket.location)
    return map_links(point.x, point.y, title=title)


@router.get("/work")
def work(crew: AtWork, show: str = "held") -> Response:
    """The unit's work list; ``?show=handled``, what it handled before."""
    session, staff = crew.session, crew.staff
    handled = show == "handled"
    tickets = handled_by_unit(session, staff) if handled else work_list(session, staff)
    names = _names(session, tickets, locale_of(crew.request))
    sights = first_sights(session, tickets)
    cards = [
        Card(
            row.ticket,
            row.category,
            row.street,
            row.community,
            _masked(sights.get(row.ticket.id, FirstSight(None, None))),
            _links(row.ticket, f"{row.ticket.ref} {names.category(row.category)}"),
        )
        for row in queue_rows(session, tickets)
    ]
    return crew.render(
        "work.html",
        unit=session.get(Unit, staff.unit_id),
        cards=cards,
        handled=handled,
        names=names,
        sla_state=sla_state,
        done=_done(crew.request),
    )


def _masked(sight: FirstSight) -> FirstSight:
    """What the reports first said of the place, as a crew reads it (personal details
    masked: an address hint may carry a name and a number)."""
    return FirstSight(mask_personal_details(sight.address), sight.photo_id)


def _done(request: Request) -> str | None:
    done = request.query_params.get("done")
    return done if done in CREW_STEPS else None


def _load(crew: Crew, ticket_id: str) -> Ticket:
    try:
        return ticket_in_scope(crew.session, crew.staff, ticket_id=uuid.UUID(ticket_id))
    except ValueError:
        raise NotFound("no such ticket in your scope") from None


def _card_page(crew: Crew, view: TicketView, **context: Any) -> Response:
    """One ticket as the crew works on it; ``context`` (a ``status_code`` too) goes on
    to ``render``."""
    ticket = view.ticket
    names = _names(crew.session, [ticket], locale_of(crew.request))
    point = to_shape(ticket.location)
    return crew.render(
        "work_ticket.html",
        view=view,
        ticket=ticket,
        names=names,
        lat=point.y,
        lon=point.x,
        links=_links(ticket, f"{ticket.ref} {names.category(view.category)}"),
        photo_required=names.categories[view.category].after_photo_required,
        words=[r.description for r in view.reports],
        steps=[a for a in CREW_STEPS if a in actions_for(ticket, crew.staff)],
        return_reasons=sorted(RETURN_REASONS),
        max_photos=MAX_PHOTOS,
        sla_state=sla_state,
        done=_done(crew.request),
        **context,
    )


@router.get("/work/{ticket_id}")
def work_ticket(ticket_id: str, crew: AtWork) -> Response:
    return _card_page(crew, ticket_view(crew.session, _load(crew, ticket_id), for_crew=True))


Text = Annotated[str, Form(max_length=2000)]
Code = Annotated[str, Form(max_length=64)]
Step = Annotated[str, Form(pattern="^(" + "|".join(a.value for a in CREW_STEPS) + ")$")]


def _photo_ids(values: list[str]) -> tuple[uuid.UUID, ...] | None:
    try:
        return tuple(dict.fromkeys(uuid.UUID(v) for v in values))
    except ValueError:
        return None


@router.post("/work/{ticket_id}/actions")
def work_step(
    ticket_id: str,
    crew: AtWork,
    action: Step,
    version: Annotated[int, Form(ge=1)],
    note: Text = "",
    reason: Annotated[str, Form(max_length=32)] = "",
    hours: Code = "",
    media_id: Annotated[list[str], Form(max_length=MAX_PHOTOS)] = [],  # noqa: B006
) -> Response:
    """One step on the version of the ticket the crew member saw (photos uploaded
    beforehand, as they were taken); if the ticket changed since, nothing is done."""
    session, staff = crew.session, crew.staff
    ticket = _load(crew, ticket_id)
    try:
        hours_more = float(hours) if hours else None
    except ValueError:
        hours_more = None
    photos = _photo_ids(media_id)
    data = ActionInput(
        action=TicketAction(action),
        note=note.strip() or None,
        reason=reason.strip() or None,
        hours=hours_more,
        media_ids=photos or (),
    )
    try:
        if photos is None:  # a photo's id that is none: said, not dropped with the others
            raise ValidationFailed.of_field("media_ids", "a photo was not sent whole; add it again")
        apply_action(
            session,
            ticket=ticket,
            staff=staff,
            data=data,
            expected_version=version,
            now=crew.now,
            settings=crew.settings,
        )
    except AppError as refused:
        session.rollback()
        view = ticket_view(session, _load(crew, ticket_id), for_crew=True)
        stale = isinstance(refused, PreconditionFailed)
        return _card_page(
            crew,
            view,
            status_code=409 if stale else refused.status,
            refused=refused,
            stale=stale,
            tried=data,
        )
    if ticket.unit_id != staff.unit_id:  # handed back: off the list
        return RedirectResponse(f"/console/work?done={action}", status_code=303)
    return RedirectResponse(f"/console/work/{ticket.id}?done={action}", status_code=303)


@router.post("/work/photos")
async def work_photo(
    database: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
    staff_id: Annotated[uuid.UUID, Depends(crew_uploader)],
    photo: Annotated[UploadFile, File()],
) -> Response:
    """A photo from the crew member's camera, stored as it is taken (before the step
    that shows it is sent), as ``POST /v1/office/media`` stores it: answers its id and
    thumbnail, or why not, as JSON for the page's script."""
    try:
        stored = await receive_staff_photo(
            database,
            media_store(settings),
            settings=settings,
            staff_id=staff_id,
            data=await photo.read(),
            now=clock(),
        )
    except AppError as refused:
        return JSONResponse(
            refused.to_problem(),
            status_code=refused.status,
            headers=refused.headers,
            media_type=PROBLEM_JSON,
        )
    kept: StaffPhoto = stored.media
    return JSONResponse(
        {"id": str(kept.id), "thumbnail": f"/console/staff-photos/{kept.id}/thumbnail"},
        status_code=201 if stored.created else 200,
    )
