"""What the public may see: the one rule for every public output (Open311's reads, the
public pages), personal details masked in words, photos published only as blurred copies
that staff approved, and the figures residents read per street.

Uses ``app.media``, ``app.tickets``, ``app.staff`` and the bottom floor."""

from app.masking import MASK, mask_personal_details
from app.public.photos import (
    MAX_BOXES,
    photo_on_ticket,
    photos_of,
    publish,
    published_copy,
    suggest,
    unpublish,
)
from app.public.views import (
    MAX_MAP_POINTS,
    PUBLIC_DECIMALS,
    PUBLIC_STATUS_GROUPS,
    WINDOW,
    PublicQuery,
    PublicReply,
    PublicWords,
    PublishedPhotoRef,
    StreetFigures,
    copy_version,
    list_public_tickets,
    public_map,
    public_photo,
    public_place,
    public_point,
    public_points,
    public_ticket_by_ref,
    public_words,
    street_figures,
    streets,
)

__all__ = [
    "MASK",
    "MAX_BOXES",
    "MAX_MAP_POINTS",
    "PUBLIC_DECIMALS",
    "PUBLIC_STATUS_GROUPS",
    "WINDOW",
    "PublicQuery",
    "PublicReply",
    "PublicWords",
    "PublishedPhotoRef",
    "StreetFigures",
    "copy_version",
    "list_public_tickets",
    "mask_personal_details",
    "photo_on_ticket",
    "photos_of",
    "public_map",
    "public_photo",
    "public_place",
    "public_point",
    "public_points",
    "public_ticket_by_ref",
    "public_words",
    "publish",
    "published_copy",
    "street_figures",
    "streets",
    "suggest",
    "unpublish",
]
