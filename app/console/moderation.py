"""The console's photo moderation: a photo of a ticket with the boxes where faces and
plates seem to be, which the clerk keeps, removes or adds to, then publishes as a
blurred copy — or withdraws."""

import uuid
from typing import Annotated

from fastapi import Form
from fastapi.responses import RedirectResponse, Response

from app import public
from app.console.pages import AtDesk
from app.console.web import console_router
from app.errors import AppError
from app.media import Box, media_store
from app.models import PublicPhoto

router = console_router()

# One box as the form carries it: "x,y,w,h" in the stored photo's pixels.
BoxField = Annotated[list[str], Form(max_length=public.MAX_BOXES)]


def _boxes(fields: list[str]) -> list[Box]:
    boxes = []
    for field in fields:
        try:
            x, y, w, h = (int(float(v)) for v in field.split(","))
        except ValueError:
            continue
        boxes.append(Box(x=x, y=y, w=w, h=h))
    return boxes


def _page(
    desk: AtDesk, media_id: uuid.UUID, *, status_code: int = 200, refused: AppError | None = None
) -> Response:
    found = public.photo_on_ticket(desk.session, desk.staff, media_id=media_id)
    published = desk.session.get(PublicPhoto, media_id)
    suggestions = public.suggest(
        desk.session, desk.staff, media_id=media_id, store=media_store(desk.settings)
    )
    return desk.render(
        "moderation.html",
        status_code=status_code,
        photo=found.media,
        ticket=found.ticket,
        suggestions=suggestions,
        published=published,
        refused=refused,
    )


@router.get("/media/{media_id}/public")
def moderation_page(media_id: uuid.UUID, desk: AtDesk) -> Response:
    return _page(desk, media_id)


@router.post("/media/{media_id}/public")
def publish(media_id: uuid.UUID, desk: AtDesk, box: BoxField = []) -> Response:  # noqa: B006
    try:
        copy = public.publish(
            desk.session,
            desk.staff,
            media_id=media_id,
            boxes=_boxes(box),
            store=media_store(desk.settings),
            now=desk.now,
        )
    except AppError as refused:
        desk.session.rollback()
        return _page(desk, media_id, status_code=refused.status, refused=refused)
    ticket = public.photo_on_ticket(desk.session, desk.staff, media_id=copy.media_id).ticket
    return RedirectResponse(
        f"/console/tickets/{ticket.id}?done=photo_published#public-title", status_code=303
    )


@router.post("/media/{media_id}/unpublish")
def unpublish(media_id: uuid.UUID, desk: AtDesk) -> Response:
    ticket = public.photo_on_ticket(desk.session, desk.staff, media_id=media_id).ticket
    public.unpublish(
        desk.session, desk.staff, media_id=media_id, store=media_store(desk.settings), now=desk.now
    )
    return RedirectResponse(
        f"/console/tickets/{ticket.id}?done=photo_unpublished#public-title", status_code=303
    )
