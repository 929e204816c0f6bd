"""What is done to a ticket: one change, checked, applied, recorded.

``ACTIONS`` says which action may start from which status and where it leads; the status
graph (``TRANSITIONS``) is read from it, and the other paths take its edges (the clock's
auto-close is a close, a rider's "not fixed" a reopen). Every change goes through
:func:`change`: the transition checked, the version and ``updated_at``, one event, and
the consequences of a status change (``on_status_change``; for a merge, also
``_settle_merge``) — staff actions, the worker's sweeps and riders' verifications alike.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import riders
from app.config import Settings
from app.db import begin_writes, distance_m, point, wkt_point
from app.errors import (
    AlreadyVerified,
    Forbidden,
    InvalidTransition,
    NotEscalated,
    NotFound,
    PreconditionFailed,
    TicketNotResolved,
    TooFarToVerify,
    ValidationFailed,
)
from app.media import attach_photos, check_media_owner
from app.models import (
    CLOCKED_STATUSES,
    OPEN_STATUSES,
    WITH_UNIT_STATUSES,
    ActorKind,
    Area,
    AreaLevel,
    Priority,
    Report,
    ReportOutcome,
    Rider,
    Staff,
    StaffRole,
    Ticket,
    TicketAction,
    TicketEvent,
    TicketEventType,
    Verification,
)
from app.models import TicketStatus as S
from app.staff import ticket_scope_filter
from app.tickets import dispatching, exceptions, reference
from app.tickets.action_input import ActionInput
from app.tickets.deadlines import deadline_moved

A = TicketAction
OFFICE = frozenset({StaffRole.OFFICER, StaffRole.DISTRICT})
# action → (the statuses it may start from, the status it leads to; None: unchanged)
ACTIONS: dict[TicketAction, tuple[frozenset[S], S | None]] = {
    A.ACCEPT: (frozenset({S.NEW}), S.ACCEPTED),
    A.REJECT: (frozenset({S.NEW, S.ACCEPTED}), S.REJECTED),
    A.ASSIGN: (frozenset({S.ACCEPTED, S.IN_PROGRESS}), None),
    A.START: (frozenset({S.ACCEPTED, S.DISPATCHED}), S.IN_PROGRESS),
    A.RESOLVE: (frozenset({S.ACCEPTED, S.IN_PROGRESS, S.DISPATCHED}), S.RESOLVED),
    A.CLOSE: (frozenset({S.RESOLVED}), S.CLOSED),
    A.REOPEN: (frozenset({S.RESOLVED, S.CLOSED}), S.ACCEPTED),
    A.TRANSFER: (frozenset({S.NEW, S.ACCEPTED}), S.NEW),
    A.MERGE: (frozenset(OPEN_STATUSES), S.DUPLICATE),
    A.COMMENT: (frozenset(S), None),
    A.SET_PRIORITY: (frozenset(OPEN_STATUSES), None),
    A.SET_PUBLIC_SUMMARY: (frozenset(S), None),
    A.HIDE_REPORT: (frozenset(S), None),
    A.UNHIDE_REPORT: (frozenset(S), None),
    A.DISPATCH: (frozenset({S.ACCEPTED, S.IN_PROGRESS, S.DISPATCHED}), S.DISPATCHED),
    A.ACKNOWLEDGE: (frozenset({S.NEW, S.ACCEPTED, S.DISPATCHED}), None),
    A.REPORT_DONE: (frozenset({S.DISPATCHED, S.IN_PROGRESS}), S.AWAITING_CHECK),
    A.CHECK_PASS: (frozenset({S.AWAITING_CHECK}), S.RESOLVED),
    A.CHECK_FAIL: (frozenset({S.AWAITING_CHECK}), S.DISPATCHED),
    A.RETURN: (frozenset({S.DISPATCHED}), S.ACCEPTED),
    A.REQUEST_EXTENSION: (frozenset({S.ACCEPTED, S.DISPATCHED, S.IN_PROGRESS}), None),
    A.APPROVE_EXTENSION: (frozenset({S.ACCEPTED, S.DISPATCHED, S.IN_PROGRESS}), None),
    A.DENY_EXTENSION: (frozenset({S.ACCEPTED, S.DISPATCHED, S.IN_PROGRESS}), None),
    A.SHELVE: (frozenset({S.ACCEPTED, S.DISPATCHED, S.IN_PROGRESS}), S.SHELVED),
    A.UNSHELVE: (frozenset({S.SHELVED}), S.ACCEPTED),
    A.RECATEGORISE: (frozenset({S.NEW, S.ACCEPTED}), None),
    A.RELOCATE: (frozenset({S.NEW, S.ACCEPTED}), None),
    # Whatever the status: a rating escalates a resolved ticket, an ended one may be left
    # escalated.
    A.DEESCALATE: (frozenset(S), None),
}
# Where more time may be asked for and decided; a request still waiting when the ticket
# leaves them is dropped.
EXTENDABLE = frozenset({S.ACCEPTED, S.DISPATCHED, S.IN_PROGRESS})
# Who may take each action, and from which of its statuses (None: all of them). An
# action not named here is the offices' (officer and district) from all its statuses.
WHO: dict[TicketAction, dict[StaffRole, frozenset[S] | None]] = {
    A.START: {
        StaffRole.OFFICER: frozenset({S.ACCEPTED}),
        StaffRole.DISTRICT: frozenset({S.ACCEPTED}),
        StaffRole.CREW: frozenset({S.DISPATCHED}),
    },
    A.RESOLVE: {role: frozenset({S.ACCEPTED, S.IN_PROGRESS, S.DISPATCHED}) for role in OFFICE},
    A.ACKNOWLEDGE: {
        StaffRole.OFFICER: frozenset({S.NEW, S.ACCEPTED}),
        StaffRole.DISTRICT: frozenset({S.NEW, S.ACCEPTED}),
        StaffRole.CREW: frozenset({S.DISPATCHED}),
    },
    A.REPORT_DONE: {StaffRole.CREW: None},
    A.RETURN: {StaffRole.CREW: None},
    A.COMMENT: {StaffRole.OFFICER: None, StaffRole.DISTRICT: None, StaffRole.CREW: None},
    A.REQUEST_EXTENSION: {
        StaffRole.OFFICER: None,
        StaffRole.CREW: frozenset({S.DISPATCHED, S.IN_PROGRESS}),
    },
    A.APPROVE_EXTENSION: {StaffRole.DISTRICT: None},
    A.DENY_EXTENSION: {StaffRole.DISTRICT: None},
    A.SHELVE: {StaffRole.DISTRICT: None},
    A.UNSHELVE: {StaffRole.DISTRICT: None},
    A.DEESCALATE: {StaffRole.DISTRICT: None},
}
# The actions by which an officer or the district signs for a ticket (签收).
SIGNS_FOR_THE_OFFICE = frozenset({A.ACKNOWLEDGE, A.ACCEPT})
REJECT_REASONS = frozenset({"spam", "not_actionable", "not_our_responsibility", "other"})
# What an office decides about what the public sees of a ticket (not steps of its work).
PUBLIC_ACTIONS = frozenset({A.SET_PUBLIC_SUMMARY, A.HIDE_REPORT, A.UNHIDE_REPORT})
# Why a report is hidden from the public.
HIDE_REASONS = frozenset({"personal_information", "offensive", "not_relevant", "other"})
# Every status change a ticket may make: the edges of the actions.
TRANSITIONS: dict[S, frozenset[S]] = {
    status: frozenset(
        target
        for sources, target in ACTIONS.values()
        if target is not None and target is not status and status in sources
    )
    for status in S
}


def sources_for(action: TicketAction, role: StaffRole | str | None) -> frozenset[S]:
    """The statuses ``role`` may take ``action`` from (none if not its to take); without
    a role, every status the action starts from."""
    sources = ACTIONS[action][0]
    if role is None:
        return sources
    who = WHO.get(action, dict.fromkeys(OFFICE))
    if StaffRole(role) not in who:
        return frozenset()
    only = who[StaffRole(role)]
    return sources if only is None else sources & only


def allowed_actions(status: S, role: StaffRole | str | None = None) -> list[str]:
    return [action.value for action in ACTIONS if status in sources_for(action, role)]


def holds(staff: Staff, ticket: Ticket) -> bool:
    """Whether a unit's crew member may act on ``ticket``: its unit holds it now."""
    return ticket.unit_id == staff.unit_id and S(ticket.status) in WITH_UNIT_STATUSES


def actions_for(ticket: Ticket, staff: Staff | None) -> list[str]:
    """What ``staff`` may do to ``ticket`` now (every action of its status, without):
    of those its role takes from the status, the ones that have something to act on —
    an escalation to lift, an extension to decide, a ticket not yet signed for."""
    if staff is None:
        return allowed_actions(S(ticket.status))
    if staff.role == StaffRole.CREW and not holds(staff, ticket):
        return []
    moot = set()
    if not ticket.escalated:
        moot.add(A.DEESCALATE)
    if ticket.extension_status != exceptions.PENDING:
        moot |= {A.APPROVE_EXTENSION, A.DENY_EXTENSION}
    if ticket.acknowledged_at is not None:  # signed for by whoever holds it now
        moot.add(A.ACKNOWLEDGE)
    return [a for a in allowed_actions(S(ticket.status), staff.role) if a not in moot]


# What an office must say a word about: how it fixed it, why it reopens, the comment.
NEEDS_A_NOTE = frozenset(
    {
        TicketAction.RESOLVE,
        TicketAction.REOPEN,
        TicketAction.COMMENT,
        TicketAction.REPORT_DONE,
        TicketAction.CHECK_FAIL,
        TicketAction.DEESCALATE,
    }
)


def apply_action(
    session: Session,
    *,
    ticket: Ticket,
    staff: Staff,
    data: ActionInput,
    expected_version: int | None,
    now: datetime,
    settings: Settings,
) -> Ticket:
    begin_writes(session)
    # The row lock (PostgreSQL) makes a concurrent action wait, then see this one's result.
    session.refresh(ticket, with_for_update=True)
    if expected_version is not None and ticket.version != expected_version:
        raise PreconditionFailed(
            f"the ticket is at version {ticket.version}, not {expected_version}",
            version=ticket.version,
        )
    target = ACTIONS[data.action][1]
    current = S(ticket.status)
    yours = sources_for(data.action, staff.role)
    if not yours:
        raise Forbidden(f"{data.action} is not for the role {staff.role}")
    if staff.role == StaffRole.CREW and not holds(staff, ticket):
        raise Forbidden("the ticket is not your unit's to act on now")
    if current not in yours:
        raise InvalidTransition(
            f"{data.action} is not possible on a {current} ticket",
            allowed_actions=allowed_actions(current, staff.role),
        )
    if data.action in NEEDS_A_NOTE and not data.note:
        raise ValidationFailed.of_field("note", f"{data.action} needs a note")
    event_data: dict[str, object] = {}
    note = data.note or data.reason
    merged: tuple[Ticket, list[uuid.UUID]] | None = None
    match data.action:
        case A.REJECT:
            if data.reason not in REJECT_REASONS:
                raise ValidationFailed.of_field(
                    "reason", f"one of {', '.join(sorted(REJECT_REASONS))}"
                )
            ticket.reject_reason = data.reason
        case A.ASSIGN:
            if not data.assignee:
                raise ValidationFailed.of_field(
                    "assignee", "who is to do it: a person or a department"
                )
            ticket.assignee = event_data["assignee"] = data.assignee
        case A.TRANSFER:
            street = _transfer_target(session, ticket, code=data.to_street)
            event_data["from_street"], event_data["to_street"] = ticket.street_id, street.id
            ticket.street_id, ticket.community_id = street.id, None
        case A.MERGE:
            into = _merge_target(session, ticket, staff=staff, into_id=data.into_ticket)
            event_data["into_ticket"] = str(into.id)
            merged = (into, _move_reports(session, ticket, into=into, now=now))
        case A.SET_PRIORITY:
            if data.priority not in frozenset(Priority):
                raise ValidationFailed.of_field("priority", "1 (high), 2 or 3 (low)")
            event_data["priority"] = ticket.priority = data.priority
        case A.SET_PUBLIC_SUMMARY:
            # Empty clears it: the public reads the first report's words, masked, again.
            summary = (data.public_summary or "").strip() or None
            ticket.public_summary = event_data["public_summary"] = summary
            note = note or summary
        case A.HIDE_REPORT | A.UNHIDE_REPORT:
            _hide_or_show(session, ticket, data=data, now=now)
            event_data["report_id"] = str(data.report_id)
        case A.RESOLVE:
            dispatching.let_go(session, ticket, now=now)
        case A.DEESCALATE:
            if not ticket.escalated:
                raise NotEscalated("the ticket is not escalated")
            ticket.escalated = False
        case _ if data.action in dispatching.DISPATCH_ACTIONS:
            event_data.update(dispatching.act(session, ticket, staff=staff, data=data, now=now))
        case _ if data.action in exceptions.EXCEPTION_ACTIONS:
            event_data.update(
                exceptions.act(session, ticket, data=data, now=now, settings=settings)
            )
            if data.action is A.RELOCATE and event_data.get("to_street") is not None:
                target = S.NEW  # in another street: transferred there, new again
    if data.action in SIGNS_FOR_THE_OFFICE and staff.role in OFFICE:
        # The office's first acknowledgement (签收), which an acceptance is too: kept once.
        ticket.office_acknowledged_at = ticket.office_acknowledged_at or now
    event = change(
        session,
        ticket,
        to=target,
        type=data.action,
        actor_kind=ActorKind.STAFF,
        actor_id=staff.id,
        note=note,
        data=event_data or None,
        now=now,
    )
    if data.media_ids:
        attach_photos(
            session, event=event, staff=staff, media_ids=data.media_ids, now=now, settings=settings
        )
    if merged is not None:
        into, moved = merged
        _settle_merge(
            session,
            ticket,
            into=into,
            moved=moved,
            previous=current,
            staff=staff,
            event=event,
            now=now,
        )
    session.flush()
    return ticket


def _hide_or_show(session: Session, ticket: Ticket, *, data: ActionInput, now: datetime) -> None:
    report = _report_of(session, ticket, report_id=data.report_id)
    hide = data.action is A.HIDE_REPORT
    if hide and data.reason not in HIDE_REASONS:
        raise ValidationFailed.of_field("reason", f"one of {', '.join(sorted(HIDE_REASONS))}")
    if (report.hidden_at is not None) == hide:
        raise ValidationFailed.of_field(
            "report_id",
            "the report is hidden already" if hide else "the report is not hidden",
        )
    report.hidden_at, report.hidden_reason = (now, data.reason) if hide else (None, None)
    ticket.hidden_report_count += 1 if hide else -1
    # Every report hidden hides the ticket, until one is shown again.
    if not hide:
        ticket.hidden_at = None
    elif ticket.hidden_report_count >= ticket.report_count:
        ticket.hidden_at = now


def change(
    session: Session,
    ticket: Ticket,
    *,
    to: S | None,
    type: TicketAction | TicketEventType,
    actor_kind: ActorKind,
    now: datetime,
    actor_id: uuid.UUID | None = None,
    note: str | None = None,
    data: dict[str, object] | None = None,
    counts_as_version: bool = True,
    notes_status: bool = True,
    verified: tuple[Verification, Rider] | None = None,
) -> TicketEvent:
    """Change ``ticket`` (to status ``to``, or None: the status stays) and record it: the
    one way a ticket changes. Refuses a status the graph does not lead to (409
    ``invalid_transition``). A new version unless ``counts_as_version`` is false (a
    confirmation or a breach noted: nothing a clerk's copy of the ticket would miss). The
    event names the status before and after unless ``notes_status`` is false (the
    system's notes about a ticket, such as a breach, carry none)."""
    previous = S(ticket.status)
    if to is not None and to is not previous:
        if to not in TRANSITIONS[previous]:
            raise InvalidTransition(
                f"a {previous} ticket cannot become {to}", allowed_actions=allowed_actions(previous)
            )
        ticket.status = to
    if counts_as_version:
        ticket.version += 1
        ticket.updated_at = now
    event = TicketEvent(
        id=uuid.uuid4(),
        ticket_id=ticket.id,
        type=type,
        actor_kind=actor_kind,
        actor_id=actor_id,
        from_status=previous if notes_status else None,
        to_status=S(ticket.status) if notes_status else None,
        note=note,
        data=data,
        created_at=now,
    )
    session.add(event)
    on_status_change(session, ticket, previous=previous, event=event, now=now, verified=verified)
    return event


def on_status_change(
    session: Session,
    ticket: Ticket,
    *,
    previous: S,
    event: TicketEvent,
    now: datetime,
    verified: tuple[Verification, Rider] | None = None,
) -> None:
    """The one place where a status change has consequences beyond the status: the
    ticket's milestones, what its reports (and ``verified``, the verification that caused
    the event, if any) earn, and the riders' platforms told."""
    current = S(ticket.status)
    if previous is current:
        if verified is not None:
            riders.settle(session, ticket, event=event, now=now, verified=verified)
        return
    if current is S.ACCEPTED and ticket.accepted_at is None:
        ticket.accepted_at = now
        ticket.response_working_h = _working_hours(session, ticket.created_at, end=now)
    elif current is S.RESOLVED:
        ticket.resolved_at = now
        ticket.resolution_working_h = _working_hours(session, ticket.created_at, end=now)
    elif current is S.CLOSED:
        ticket.closed_at = now
    if previous is S.SHELVED:
        exceptions.resume_clock(session, ticket, now=now)
    if (
        previous is S.NEW
        or current is S.NEW
        or (previous not in CLOCKED_STATUSES and current in CLOCKED_STATUSES)
    ):
        deadline_moved(ticket)  # the deadline that matters is another, or back on the clock
    if previous in (S.RESOLVED, S.CLOSED) and current is S.ACCEPTED:  # reopened
        ticket.resolved_at = ticket.closed_at = ticket.purged_at = None
        ticket.resolution_working_h = None
        ticket.reopen_count = (ticket.reopen_count or 0) + 1
        ticket.acknowledged_at = None  # the office holds it again, and signs for it again
        if ticket.reopen_count >= REOPENINGS_TO_ESCALATE:
            escalate(session, ticket, why="reopened", now=now)
    if previous in WITH_UNIT_STATUSES and current not in WITH_UNIT_STATUSES:
        # The unit's part ends, however the ticket left it (checked, resolved by the
        # office, returned, shelved, merged, closed by a department's own server).
        dispatching.let_go(session, ticket, now=now)
        ticket.unit_id = None
    if current is S.NEW:  # in another street's office now
        ticket.acknowledged_at = None
    if ticket.extension_status == exceptions.PENDING and current not in EXTENDABLE:
        ticket.extension_status = ticket.extension_hours = ticket.extension_reason = None
    riders.settle(session, ticket, event=event, now=now, verified=verified)
    riders.announce_status(session, ticket, event=event, previous=previous, now=now)


# A ticket reopened this often is escalated (提级督办).
REOPENINGS_TO_ESCALATE = 2


def escalate(session: Session, ticket: Ticket, *, why: str, now: datetime) -> bool:
    """Marks ``ticket`` escalated for the district (an event, which its channels hear);
    False if it is escalated already."""
    if ticket.escalated:
        return False
    ticket.escalated = True
    ticket.escalated_at = now
    change(
        session,
        ticket,
        to=None,
        type=TicketEventType.ESCALATED,
        actor_kind=ActorKind.SYSTEM,
        now=now,
        data={"why": why},
        counts_as_version=False,
        notes_status=False,
    )
    return True


def _working_hours(session: Session, start: datetime, *, end: datetime) -> float:
    """Working hours from ``start`` to ``end`` on the working calendar (for the KPIs'
    medians, whatever clock the category's own time limits run on)."""
    return round(reference.current_reference(session).calendar.between(start, end), 4)


def _report_of(session: Session, ticket: Ticket, *, report_id: uuid.UUID | None) -> Report:
    if report_id is None:
        raise ValidationFailed.of_field("report_id", "the id of one of the ticket's reports")
    report = session.scalar(
        select(Report).where(Report.id == report_id, Report.ticket_id == ticket.id)
    )
    if report is None:
        raise ValidationFailed.of_field("report_id", "not a report of this ticket")
    return report


def _transfer_target(session: Session, ticket: Ticket, *, code: str | None) -> Area:
    if not code:
        raise ValidationFailed.of_field("to_street", "the code of a street in the same district")
    street = session.scalar(select(Area).where(Area.code == code))
    if street is None or street.level != AreaLevel.STREET or street.parent_id != ticket.district_id:
        raise ValidationFailed.of_field(
            "to_street", f"{code} is not a street of this ticket's district"
        )
    if street.id == ticket.street_id:
        raise ValidationFailed.of_field("to_street", "the ticket is in that street already")
    return street


def _merge_target(
    session: Session, ticket: Ticket, *, staff: Staff, into_id: uuid.UUID | None
) -> Ticket:
    if into_id is None:
        raise ValidationFailed.of_field("into_ticket", "the id of the ticket this one duplicates")
    into = session.scalar(
        select(Ticket).where(Ticket.id == into_id, ticket_scope_filter(staff)).with_for_update()
    )
    if into is None:
        raise NotFound("no such ticket in your scope")
    if into.id == ticket.id or not into.is_open:
        raise ValidationFailed.of_field("into_ticket", "an open ticket other than this one")
    return into


def _move_reports(
    session: Session, ticket: Ticket, *, into: Ticket, now: datetime
) -> list[uuid.UUID]:
    """The duplicate's reports become confirmations of ``into``; returns their ids."""
    moved = list(session.scalars(select(Report.id).where(Report.ticket_id == ticket.id)))
    session.execute(
        update(Report)
        .where(Report.id.in_(moved))
        .values(ticket_id=into.id, outcome=ReportOutcome.JOINED_TICKET)
    )
    into.report_count += ticket.report_count
    into.hidden_report_count += ticket.hidden_report_count
    into.version += 1
    into.updated_at = now
    ticket.duplicate_of_id = into.id
    return moved


def _settle_merge(
    session: Session,
    ticket: Ticket,
    *,
    into: Ticket,
    moved: list[uuid.UUID],
    previous: S,
    staff: Staff,
    event: TicketEvent,
    now: datetime,
) -> None:
    """The target records what came in; the moved reports are settled as confirmations
    of it, and their riders' platforms hear that their report now follows it."""
    merged_in = TicketEvent(
        id=uuid.uuid4(),
        ticket_id=into.id,
        type=TicketEventType.MERGED_IN,
        actor_kind=ActorKind.STAFF,
        actor_id=staff.id,
        created_at=now,
        data={"from_ticket": str(ticket.id), "reports": ticket.report_count},
    )
    session.add(merged_in)
    riders.settle(session, into, event=merged_in, now=now)
    riders.announce_status(session, into, event=event, previous=previous, now=now, reports=moved)


VERIFY_WITHIN_M = 200.0


@dataclass(frozen=True)
class VerificationInput:
    fixed: bool
    lon: float  # WGS-84
    lat: float
    note: str | None
    media_ids: tuple[uuid.UUID, ...]


def verify_resolution(
    session: Session,
    *,
    ticket_id: uuid.UUID,
    rider: Rider,
    data: VerificationInput,
    now: datetime,
    settings: Settings,
) -> tuple[Verification, Ticket]:
    """A rider passing by says whether a resolved ticket is really fixed; ``fixed: false``
    reopens it. Only on a resolved ticket, only from within 200 m, once per rider."""
    check_media_owner(session, rider, media_ids=data.media_ids, now=now, settings=settings)
    begin_writes(session)
    found = session.execute(
        select(Ticket, distance_m(Ticket.location, point(data.lon, data.lat)))
        .where(Ticket.id == ticket_id)
        .with_for_update(of=Ticket)
    ).first()
    if found is None:
        raise NotFound("no such ticket")
    ticket, metres = found
    if ticket.status != S.RESOLVED:
        raise TicketNotResolved(
            f"the ticket is {ticket.status}; only a resolved one can be verified"
        )
    if metres > VERIFY_WITHIN_M:
        raise TooFarToVerify(
            f"you are {metres:.0f} m from the ticket; come within {VERIFY_WITHIN_M:.0f} m"
        )
    if session.scalar(
        select(Verification.id).where(
            Verification.ticket_id == ticket.id, Verification.rider_id == rider.id
        )
    ):
        raise AlreadyVerified("you have verified this ticket already")
    verification = Verification(
        id=uuid.uuid4(),
        ticket_id=ticket.id,
        rider_id=rider.id,
        platform_id=rider.platform_id,
        category_id=ticket.category_id,
        street_id=ticket.street_id,
        fixed=data.fixed,
        location=wkt_point(data.lon, data.lat),
        distance_m=round(metres, 1),
        note=data.note,
        media_ids=[str(m) for m in data.media_ids] or None,
        created_at=now,
    )
    session.add(verification)
    change(
        session,
        ticket,
        to=None if data.fixed else S.ACCEPTED,
        type=TicketEventType.VERIFIED if data.fixed else TicketEventType.REOPENED,
        actor_kind=ActorKind.RIDER,
        actor_id=rider.id,
        note=data.note,
        now=now,
        data={"fixed": data.fixed, "distance_m": round(metres, 1)},
        counts_as_version=not data.fixed,
        verified=(verification, rider),
    )
    session.flush()
    return verification, ticket
