"""Delivery platforms: their accounts and API keys, the outbox of events for them, and
the webhooks that deliver those events.

Uses the bottom floor only."""

from app.platforms.accounts import (
    create_platform,
    get_platform,
    page_platforms,
    platform_by_api_key,
    rotate_api_key,
    set_platform_active,
)
from app.platforms.outbox import EventType, emit, new_event
from app.platforms.webhooks import (
    call_checked,
    call_failure,
    checked_addresses,
    delete_webhook,
    deliver_due,
    get_webhook,
    outbound_client,
    page_deliveries,
    parse_url,
    purge_history,
    retry_delay,
    set_webhook,
)

__all__ = [
    "EventType",
    "call_checked",
    "call_failure",
    "checked_addresses",
    "create_platform",
    "delete_webhook",
    "deliver_due",
    "emit",
    "get_platform",
    "get_webhook",
    "new_event",
    "outbound_client",
    "page_deliveries",
    "page_platforms",
    "parse_url",
    "platform_by_api_key",
    "purge_history",
    "retry_delay",
    "rotate_api_key",
    "set_platform_active",
    "set_webhook",
]
