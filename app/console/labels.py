"""What the console calls the domain's values: every member of an enum that a page shows
has its words here, once, in English, and its translations in the message catalogs.
``_`` only marks the words for the catalogs; a page translates them as it renders."""

from app.models import (
    ActorKind,
    AlertKind,
    AlertOutcome,
    AlertStatus,
    ChannelKind,
    NotifyEvent,
    TicketAction,
    TicketEventType,
)


def _(message: str) -> str:
    return message


# A ticket event's type: an office's action, or what else happened.
EVENTS: dict[str, str] = {
    TicketEventType.CREATED: _("Reported"),
    TicketEventType.REPORT_JOINED: _("Confirmed by another report"),
    TicketAction.ACCEPT: _("Accepted"),
    TicketAction.REJECT: _("Rejected"),
    TicketAction.ASSIGN: _("Assigned"),
    TicketAction.START: _("Work started"),
    TicketAction.RESOLVE: _("Resolved"),
    TicketAction.CLOSE: _("Closed"),
    TicketAction.REOPEN: _("Reopened"),
    TicketAction.TRANSFER: _("Transferred"),
    TicketAction.MERGE: _("Merged"),
    TicketEventType.MERGED_IN: _("Another ticket merged into this one"),
    TicketAction.COMMENT: _("Note"),
    TicketAction.SET_PRIORITY: _("Priority set"),
    TicketAction.SET_PUBLIC_SUMMARY: _("Public summary set"),
    TicketAction.HIDE_REPORT: _("Report hidden from the public"),
    TicketAction.UNHIDE_REPORT: _("Report shown to the public again"),
    TicketEventType.PHOTO_PUBLISHED: _("Photo published (blurred)"),
    TicketEventType.PHOTO_UNPUBLISHED: _("Photo withdrawn from the public"),
    TicketEventType.VERIFIED: _("Verified by a rider"),
    TicketEventType.REOPENED: _("Not fixed, a rider found"),
    TicketEventType.SLA_BREACHED: _("SLA missed"),
    TicketEventType.AUTO_CLOSED: _("Closed automatically"),
    TicketAction.DISPATCH: _("Dispatched to a unit"),
    TicketAction.ACKNOWLEDGE: _("Signed for"),
    TicketAction.REPORT_DONE: _("Work reported done"),
    TicketAction.CHECK_PASS: _("Check passed"),
    TicketAction.CHECK_FAIL: _("Check failed: work to redo"),
    TicketAction.RETURN: _("Returned by the unit"),
    TicketAction.REQUEST_EXTENSION: _("Extension requested"),
    TicketAction.APPROVE_EXTENSION: _("Extension approved"),
    TicketAction.DENY_EXTENSION: _("Extension denied"),
    TicketAction.SHELVE: _("Shelved until a review date"),
    TicketAction.UNSHELVE: _("Back in the queue"),
    TicketAction.RECATEGORISE: _("Category changed"),
    TicketAction.RELOCATE: _("Place corrected"),
    TicketEventType.SLA_WARNING: _("Deadline near: three quarters of its time gone"),
    TicketEventType.ESCALATED: _("Escalated (提级督办)"),
    TicketAction.DEESCALATE: _("Escalation lifted"),
    TicketEventType.RATED: _("Rated by a reporter"),
}

ACTORS: dict[str, str] = {
    ActorKind.RIDER: _("rider"),
    ActorKind.STAFF: _("staff"),
    ActorKind.SYSTEM: _("system"),
}

ALERT_KINDS: dict[str, str] = {
    AlertKind.MISSING_PERSON: _("Missing person"),
    AlertKind.HAZARD: _("Hazard"),
    AlertKind.CLOSURE: _("Closure"),
}

ALERT_STATUSES: dict[str, str] = {
    AlertStatus.ACTIVE: _("In force"),
    AlertStatus.CLOSED: _("Ended"),
}

ALERT_OUTCOMES: dict[str, str] = {
    AlertOutcome.FOUND: _("Found"),
    AlertOutcome.RESOLVED: _("Dealt with"),
    AlertOutcome.CANCELLED: _("Called off"),
    AlertOutcome.EXPIRED: _("Expired"),
}

# Why a report is hidden from the public (tickets' HIDE_REASONS).
HIDE_REASONS: dict[str, str] = {
    "personal_information": _("Personal information"),
    "offensive": _("Offensive"),
    "not_relevant": _("Not relevant"),
    "other": _("Other"),
}

# Where a channel's messages go.
CHANNEL_KINDS: dict[str, str] = {
    ChannelKind.WECOM: _("WeCom group robot"),
    ChannelKind.DINGTALK: _("DingTalk group robot"),
    ChannelKind.FEISHU: _("Feishu group bot"),
    ChannelKind.EMAIL: _("E-mail"),
    ChannelKind.WEBHOOK: _("Webhook (signed JSON)"),
}

# What a channel may ask to be told; "test" is the test message in a channel's log.
NOTIFY_EVENTS: dict[str, str] = {
    NotifyEvent.TICKET_NEW: _("A new ticket"),
    NotifyEvent.TICKET_DISPATCHED: _("A ticket dispatched to a unit"),
    NotifyEvent.SLA_WARNING: _("Deadline near (three quarters of the time gone)"),
    NotifyEvent.SLA_BREACHED: _("Deadline missed"),
    NotifyEvent.TICKET_ESCALATED: _("A ticket escalated (提级督办)"),
    NotifyEvent.TICKET_REOPENED: _("A ticket reopened"),
    NotifyEvent.EXTENSION_REQUESTED: _("A unit asks for more time"),
    NotifyEvent.FEEDBACK_NEGATIVE: _("A reporter's bad rating"),
    NotifyEvent.ALERT_SIGHTING: _("A sighting for an alert"),
    NotifyEvent.SURGE_DETECTED: _("A surge of reports"),
    NotifyEvent.DIGEST_DAILY: _("Daily digest (08:30 on working days)"),
    NotifyEvent.DIGEST_WEEKLY: _("Weekly digest (Mondays 09:00)"),
}
TEST_MESSAGE = _("Test message")
