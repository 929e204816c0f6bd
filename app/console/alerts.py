"""The console's alerts: the district's list, and an alert with its sightings, refreshed
every few seconds so that the owner sees a sighting as it arrives; closing it."""

import uuid
from typing import Annotated, Any

from fastapi import Form
from fastapi.responses import RedirectResponse, Response

from app import alerts
from app.console.pages import AtDesk
from app.console.web import console_router
from app.errors import AppError
from app.media import Blob, media_store
from app.photos import blob_response

router = console_router()


@router.get("/alerts")
def alert_list(desk: AtDesk) -> Response:
    return desk.render("alerts.html", alerts=alerts.alerts_of(desk.session, desk.staff))


def _detail(desk: AtDesk, alert_id: uuid.UUID, template: str, **more: Any) -> Response:
    alert = alerts.alert_in_scope(desk.session, desk.staff, alert_id=alert_id)
    return desk.render(
        template,
        alert=alert,
        photos=alerts.photo_ids(desk.session, alert),
        sightings=alerts.sightings_of(desk.session, alert),
        may_close=alerts.may_publish(desk.staff),
        **more,
    )


@router.get("/alerts/{alert_id}")
def alert_page(alert_id: uuid.UUID, desk: AtDesk) -> Response:
    return _detail(desk, alert_id, "alert.html")


@router.get("/alerts/{alert_id}/sightings")
def sightings(alert_id: uuid.UUID, desk: AtDesk) -> Response:
    """The sightings part of the page, which htmx fetches again every few seconds."""
    return _detail(desk, alert_id, "_sightings.html")


@router.post("/alerts/{alert_id}/close")
def close(
    alert_id: uuid.UUID,
    desk: AtDesk,
    outcome: Annotated[str, Form(max_length=32)],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    alert = alerts.alert_in_scope(desk.session, desk.staff, alert_id=alert_id)
    try:
        alerts.close(
            desk.session,
            desk.staff,
            alert=alert,
            outcome=outcome,
            note=note.strip() or None,
            now=desk.now,
        )
    except AppError as refused:
        desk.session.rollback()
        return _detail(desk, alert_id, "alert.html", refused=refused.detail or refused.title)
    return RedirectResponse(f"/console/alerts/{alert_id}", status_code=303)


@router.get("/alerts/{alert_id}/photos/{photo_id}")
def alert_photo(alert_id: uuid.UUID, photo_id: uuid.UUID, desk: AtDesk) -> Response:
    photo = alerts.photo_for(
        desk.session, alert_id, photo_id=photo_id, staff=desk.staff, now=desk.now
    )
    key, content_type = alerts.photo_key(photo, thumbnail=True)
    blob: Blob | None = media_store(desk.settings).open(key)
    if blob is None:
        return Response(status_code=404)
    return blob_response(blob, content_type)
