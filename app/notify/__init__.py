"""Telling people: the channels of streets, districts and units (WeCom, DingTalk and
Feishu robots, e-mail, webhooks), the notifications the worker writes from what happens
to tickets, the morning digest, and their delivery under each robot's throttle and the
offices' quiet hours.

Uses ``app.platforms`` (the checked calls out), ``app.tickets`` and the bottom floor."""

from app.notify.channels import (
    ChannelInput,
    Owner,
    create_channel,
    delete_channel,
    get_channel,
    list_channels,
    owner_of,
    shown_url,
    update_channel,
)
from app.notify.delivery import (
    DEAD_AFTER,
    Addressee,
    Outcome,
    Send,
    addressee,
    dead_channels,
    deliver_notifications,
    is_dead,
    page_deliveries,
    purge_history,
    record_attempt,
    send,
    test_message,
)
from app.notify.digest import send_digests
from app.notify.outbox import notify_events, notify_sightings

__all__ = [
    "DEAD_AFTER",
    "Addressee",
    "ChannelInput",
    "Outcome",
    "Owner",
    "Send",
    "addressee",
    "create_channel",
    "dead_channels",
    "delete_channel",
    "deliver_notifications",
    "get_channel",
    "is_dead",
    "list_channels",
    "notify_events",
    "notify_sightings",
    "owner_of",
    "page_deliveries",
    "purge_history",
    "record_attempt",
    "send",
    "send_digests",
    "shown_url",
    "test_message",
    "update_channel",
]
