"""Open311 GeoReport v2 both ways: the server (services, service requests, reports posted
by Open311 clients) and the forwarding of tickets to departments' own Open311 servers.

Uses ``app.intake``, ``app.public``, ``app.tickets``, ``app.categories``,
``app.platforms``, ``app.riders`` and the bottom floor."""

from app.open311.forwarding import (
    Forwarding,
    ForwardInput,
    add_forward,
    forward_due,
    forwarding_of,
    list_forwards,
    stop_forward,
)
from app.open311.server import (
    MAX_REQUESTS,
    Open311BadRequest,
    RequestQuery,
    Service,
    ServiceRequest,
    as_open311,
    district_of,
    find_requests,
    get_request,
    get_service,
    media_query,
    post_request,
    public_media,
    services,
)

__all__ = [
    "MAX_REQUESTS",
    "ForwardInput",
    "Forwarding",
    "Open311BadRequest",
    "RequestQuery",
    "Service",
    "ServiceRequest",
    "add_forward",
    "as_open311",
    "district_of",
    "find_requests",
    "forward_due",
    "forwarding_of",
    "get_request",
    "get_service",
    "list_forwards",
    "media_query",
    "post_request",
    "public_media",
    "services",
    "stop_forward",
]
