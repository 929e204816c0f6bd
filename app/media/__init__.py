"""Riders' photos, and those staff show with an action on a ticket: judged by their
bytes, re-encoded without metadata, stored by content in a directory or S3-compatible
storage, shown only to who may see them; where faces and plates seem to be on riders',
and copies with those places blurred.

Uses ``app.staff`` (a staff member's scope) and the bottom floor."""

from app.media.decoding import configure as configure_decoding
from app.media.detect import Box, BoxKind, Suggestion, blur_boxes, suggest_boxes
from app.media.service import (
    CONTENT_TYPES,
    EXTENSIONS,
    UNUSED_GRACE,
    blobs_in_use,
    check_media_owner,
    delete_media,
    digest_of,
    forget_uploads,
    media_for_platform,
    media_for_rider,
    media_for_staff,
    not_the_riders,
    not_uploaded_by,
    open_photo,
    receive_photo,
    receive_staff_photo,
    release_blobs,
    remove_if_idle,
    store_image,
    store_media,
    sweep_orphans,
    usable_since,
)
from app.media.staff_photos import (
    after_photo_for_rider,
    after_photos,
    attach_photos,
    delete_staff_photos,
    photos_of_events,
    staff_photo_for,
)
from app.media.store import Blob, MediaStore, blob_key, media_store

__all__ = [
    "CONTENT_TYPES",
    "EXTENSIONS",
    "UNUSED_GRACE",
    "Blob",
    "Box",
    "BoxKind",
    "MediaStore",
    "Suggestion",
    "after_photo_for_rider",
    "after_photos",
    "attach_photos",
    "blob_key",
    "blobs_in_use",
    "blur_boxes",
    "check_media_owner",
    "configure_decoding",
    "delete_media",
    "delete_staff_photos",
    "digest_of",
    "forget_uploads",
    "media_for_platform",
    "media_for_rider",
    "media_for_staff",
    "media_store",
    "not_the_riders",
    "not_uploaded_by",
    "open_photo",
    "photos_of_events",
    "receive_photo",
    "receive_staff_photo",
    "release_blobs",
    "remove_if_idle",
    "staff_photo_for",
    "store_image",
    "store_media",
    "suggest_boxes",
    "sweep_orphans",
    "usable_since",
]
