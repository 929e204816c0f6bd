"""Area alerts, the reverse direction: the district tells riders in an area through their
platforms, and riders who see something send sightings back.

Uses ``app.areas``, ``app.media``, ``app.platforms`` (the outbox) and the bottom floor."""

from app.alerts.service import (
    NOT_A_PUBLISHER,
    AlertInput,
    AreaInput,
    active_at,
    alert_in_scope,
    alerts_of,
    close,
    grow_and_expire,
    may_publish,
    photo_for,
    photo_ids,
    photo_key,
    photos_of,
    publish,
    purge_closed,
    sight,
    sightings_of,
    store_photo,
)

__all__ = [
    "NOT_A_PUBLISHER",
    "AlertInput",
    "AreaInput",
    "active_at",
    "alert_in_scope",
    "alerts_of",
    "close",
    "grow_and_expire",
    "may_publish",
    "photo_for",
    "photo_ids",
    "photo_key",
    "photos_of",
    "publish",
    "purge_closed",
    "sight",
    "sightings_of",
    "store_photo",
]
