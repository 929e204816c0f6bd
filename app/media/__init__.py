"""Riders' photos: judged by their bytes, re-encoded without metadata, stored by content
in a directory or S3-compatible storage, shown only to who may see them.

Uses ``app.staff`` (a staff member's scope) and the bottom floor."""

from app.media.service import (
    CONTENT_TYPES,
    EXTENSIONS,
    blobs_in_use,
    check_media_owner,
    delete_media,
    digest_of,
    media_for_platform,
    media_for_rider,
    media_for_staff,
    not_the_riders,
    open_photo,
    remove_if_idle,
    store_image,
    store_media,
    sweep_orphans,
)
from app.media.store import Blob, MediaStore, blob_key, media_store

__all__ = [
    "CONTENT_TYPES",
    "EXTENSIONS",
    "Blob",
    "MediaStore",
    "blob_key",
    "blobs_in_use",
    "check_media_owner",
    "delete_media",
    "digest_of",
    "media_for_platform",
    "media_for_rider",
    "media_for_staff",
    "media_store",
    "not_the_riders",
    "open_photo",
    "remove_if_idle",
    "store_image",
    "store_media",
    "sweep_orphans",
]
