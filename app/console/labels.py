"""What the console calls the domain's values: every member of an enum that a page shows
has its words here, once, in English, and its translations in the message catalogs.
``_`` only marks the words for the catalogs; a page translates them as it renders."""

from app.models import ActorKind, AlertKind, AlertStatus, TicketEventType


def _(message: str) -> str:
    return message


EVENTS: dict[str, str] = {
    TicketEventType.CREATED: _("Reported"),
    TicketEventType.REPORT_JOINED: _("Confirmed by another report"),
    TicketEventType.ACCEPT: _("Accepted"),
    TicketEventType.REJECT: _("Rejected"),
    TicketEventType.ASSIGN: _("Assigned"),
    TicketEventType.START: _("Work started"),
    TicketEventType.RESOLVE: _("Resolved"),
    TicketEventType.CLOSE: _("Closed"),
    TicketEventType.REOPEN: _("Reopened"),
    TicketEventType.TRANSFER: _("Transferred"),
    TicketEventType.MERGE: _("Merged"),
    TicketEventType.MERGED_IN: _("Another ticket merged into this one"),
    TicketEventType.COMMENT: _("Note"),
    TicketEventType.SET_PRIORITY: _("Priority set"),
    TicketEventType.VERIFIED: _("Verified by a rider"),
    TicketEventType.REOPENED: _("Not fixed, a rider found"),
    TicketEventType.SLA_BREACHED: _("SLA missed"),
    TicketEventType.AUTO_CLOSED: _("Closed automatically"),
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

# How an alert ended: chosen by the district (all but "expired"), or by its clock.
ALERT_OUTCOMES: dict[str, str] = {
    "found": _("Found"),
    "resolved": _("Dealt with"),
    "cancelled": _("Called off"),
    "expired": _("Expired"),
}
