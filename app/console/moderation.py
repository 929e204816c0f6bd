"""The console's photo moderation: a photo of a ticket with the boxes where faces and
plates seem to be, and those of the copy published before, which the clerk keeps,
removes or adds to, then publishes as a blurred copy — or withdraws."""

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Form
from fastapi.responses import RedirectResponse, Response

from app import public
from app.console.pages import AtDesk
from app.console.web import console_router
from app.errors import AppError, ValidationFailed
from app.media import Box, media_store

router = console_router()

# One box as the form carries it: "x,y,w,h" in the stored photo's pixels.
BoxField = Annotated[list[str], Form(max_length=public.MAX_BOXES + 1)]


@dataclass(frozen=True)
class Entry:
    """A box on the page: where, what it is (face, plate, or drawn by a clerk), how sure
    the detector is (None: a person drew it), and whether it is checked."""

    box: Box
    kind: str
    score: float | None
    checked: bool

    @property
    def value(self) -> str:
        return f"{self.box.x},{self.box.y},{self.box.w},{self.box.h}"


def _boxes(fields: list[str]) -> list[Box]:
    boxes = []
    for i, field in enumerate(fields):
        parts = field.split(",")
        if len(parts) != 4 or not all(p.strip().isascii() and p.strip().isdigit() for p in parts):
            raise ValidationFailed.of_field(f"box[{i}]", "x,y,w,h: four whole numbers of pixels")
        x, y, w, h = (int(p) for p in parts)
        boxes.append(Box(x=x, y=y, w=w, h=h))
    return boxes


def _page(
    desk: AtDesk,
    media_id: uuid.UUID,
    *,
    posted: list[Box] | None = None,
    refused: AppError | None = None,
) -> Response:
    found = public.photo_on_ticket(desk.session, desk.staff, media_id=media_id)
    published = public.published_copy(desk.session, media_id)
    suggestions = public.suggest(
        desk.session, desk.staff, media_id=media_id, store=media_store(desk.settings)
    )
    entries = [
        Entry(s.box, s.kind, s.score, checked=posted is None or s.box in posted)
        for s in suggestions
    ]
    seen = {e.box for e in entries}
    earlier = [Box(**b) for b in published.boxes] if published else []
    # What the clerk drew before (or just posted) comes back, checked: a face the detector
    # missed is not forgotten by the next publication.
    for box in [*earlier, *(posted or [])]:
        if box not in seen:
            seen.add(box)
            entries.append(Entry(box, "drawn", None, checked=True))
    return desk.render(
        "moderation.html",
        status_code=refused.status if refused else 200,
        photo=found.media,
        ticket=found.ticket,
        entries=entries,
        published=published,
        refused=refused,
    )


@router.get("/media/{media_id}/public")
def moderation_page(media_id: uuid.UUID, desk: AtDesk) -> Response:
    return _page(desk, media_id)


@router.post("/media/{media_id}/public")
def publish(media_id: uuid.UUID, desk: AtDesk, box: BoxField = []) -> Response:  # noqa: B006
    boxes: list[Box] = []
    try:
        boxes = _boxes(box)
        copy = public.publish(
            desk.session,
            desk.staff,
            media_id=media_id,
            boxes=boxes,
            store=media_store(desk.settings),
            now=desk.now,
        )
    except AppError as refused:
        desk.session.rollback()
        return _page(desk, media_id, posted=boxes, refused=refused)
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
