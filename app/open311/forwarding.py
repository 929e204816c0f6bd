"""Tickets forwarded to departments that run their own Open311 server.

An admin says where a category's tickets go (``Forward``). The worker queues each
ticket that qualifies (when the office accepts it, or as soon as it is opened, or when an
office corrects its category), POSTs it to the external server as a service request
(retried with backoff), keeps the id the server gave it, then polls that request and
mirrors its closing as a resolution of the ticket, once. A ticket whose category changed
before it was sent goes where its new category's tickets go, or nowhere; one sent
already stays with the system it was sent to. Every call is made outside any
transaction, from the worker: a dead external system never slows intake or triage.
"""

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from geoalchemy2.shape import to_shape
from sqlalchemy import ColumnElement, delete, exists, or_, select, update
from sqlalchemy.orm import Session

from app import platforms
from app.config import Settings
from app.db import Database, begin_writes, claim_due
from app.errors import NotFound, ValidationFailed, WebhookUrlRefused
from app.models import (
    ActorKind,
    Area,
    AreaLevel,
    Category,
    Forward,
    ForwardAttempt,
    ForwardedTicket,
    Ticket,
    TicketAction,
    TicketStatus,
)
from app.public import public_words
from app.tickets import change

logger = logging.getLogger("sentinel.forwarding")

TRIGGERS = ("accepted", "created")
BATCH = 20  # calls claimed per round
# A round stops making calls after a third of its lease (settings.worker_lease_s): what
# it claimed and did not call is claimed again once the lease has run out (nothing was
# sent for it).
ROUND_SHARE_OF_LEASE = 1 / 3
POLL_EVERY = timedelta(minutes=5)
GIVE_UP_AFTER = timedelta(hours=24)
USER_AGENT = "FlowingSentinel-Open311/1"
MAX_EXTERNAL_ID = 200
# Answers after which a POST is tried again: the server is busy or down, not refusing.
RETRIED = frozenset({408, 425, 429, 500, 502, 503, 504})
# Once forwarded, our status follows theirs only while the ticket is still being worked.
MIRRORED_FROM = (TicketStatus.NEW, TicketStatus.ACCEPTED, TicketStatus.IN_PROGRESS)


# -- configuration


@dataclass(frozen=True)
class ForwardInput:
    category: str
    name: str
    endpoint: str
    api_key: str
    service_code: str
    street: str | None = None
    jurisdiction_id: str | None = None
    trigger: str = "accepted"


def add_forward(session: Session, data: ForwardInput, *, now: datetime) -> Forward:
    """A new forwarding rule; it applies to the tickets opened from now on."""
    category = session.scalar(select(Category).where(Category.code == data.category))
    if category is None:
        raise ValidationFailed.of_field("category", f"no category {data.category}")
    street_id = None
    if data.street:
        street = session.scalar(select(Area).where(Area.code == data.street))
        if street is None or street.level != AreaLevel.STREET:
            raise ValidationFailed.of_field("street", f"{data.street} is not a street")
        street_id = street.id
    if data.trigger not in TRIGGERS:
        raise ValidationFailed.of_field("trigger", "accepted or created")
    try:
        platforms.parse_url(data.endpoint)
    except WebhookUrlRefused as refused:
        raise ValidationFailed.of_field("endpoint", refused.detail) from None
    begin_writes(session)
    forward = Forward(
        category_id=category.id,
        street_id=street_id,
        name=data.name,
        endpoint=data.endpoint.rstrip("/"),
        api_key=data.api_key,
        jurisdiction_id=data.jurisdiction_id or None,
        service_code=data.service_code,
        trigger=data.trigger,
        active=True,
        created_at=now,
        scanned_until=now,
    )
    session.add(forward)
    session.flush()
    return forward


def list_forwards(session: Session) -> list[Forward]:
    return list(session.scalars(select(Forward).order_by(Forward.id)))


def stop_forward(session: Session, forward_id: int) -> Forward:
    """No more tickets are queued for it; what was sent is still polled."""
    begin_writes(session)
    forward = session.get(Forward, forward_id)
    if forward is None:
        raise NotFound(f"no forwarding rule {forward_id}")
    forward.active = False
    session.flush()
    return forward


@dataclass(frozen=True)
class Forwarding:
    """What staff see of a ticket's forwarding: the rule, the row, the calls."""

    forward: Forward
    forwarded: ForwardedTicket
    attempts: list[ForwardAttempt]


def forwarding_of(session: Session, ticket: Ticket) -> Forwarding | None:
    forwarded = session.scalar(
        select(ForwardedTicket).where(ForwardedTicket.ticket_id == ticket.id)
    )
    if forwarded is None:
        return None
    forward = session.get(Forward, forwarded.forward_id)
    assert forward is not None
    attempts = list(
        session.scalars(
            select(ForwardAttempt)
            .where(ForwardAttempt.forwarded_id == forwarded.id)
            .order_by(ForwardAttempt.attempted_at.desc())
            .limit(100)
        )
    )
    return Forwarding(forward, forwarded, attempts)


# -- the worker: queueing


# A sweep looks this far back before where the last one stopped: a ticket opened (or
# accepted) just before a sweep may commit just after it.
OVERLAP = timedelta(minutes=2)


def _sent_by(rule: Forward) -> list[ColumnElement[bool]]:
    """The tickets ``rule`` sends: of its category (and street), opened since it was
    made, not turned down or merged away, and accepted if it waits for that."""
    sent = [
        Ticket.created_at >= rule.created_at,
        Ticket.category_id == rule.category_id,
        Ticket.status.not_in((TicketStatus.REJECTED, TicketStatus.DUPLICATE)),
    ]
    if rule.street_id is not None:
        sent.append(Ticket.street_id == rule.street_id)
    if rule.trigger == "accepted":
        sent.append(Ticket.accepted_at.is_not(None))
    return sent


def _active_rules(session: Session, *where: ColumnElement[bool]) -> list[Forward]:
    """The active rules, those of one street first: they win over their category's."""
    return list(
        session.scalars(
            select(Forward)
            .where(Forward.active.is_(True), *where)
            .order_by(Forward.street_id.is_(None), Forward.id)
        )
    )


def _rule_for(session: Session, ticket: Ticket) -> Forward | None:
    """The rule that sends ``ticket`` now, if any (the sweep's choice, for one ticket)."""
    for rule in _active_rules(session, Forward.category_id == ticket.category_id):
        if session.scalar(select(exists().where(Ticket.id == ticket.id, *_sent_by(rule)))):
            return rule
    return None


def queue_due(session: Session, now: datetime) -> int:
    """Queue every ticket an active rule applies to and that is not queued yet, looking
    only at the tickets opened (or accepted), or recategorised, since the rule's last
    sweep: the rules of one street first, so that they win over their category's rule."""
    begin_writes(session)
    queued = 0
    for rule in _active_rules(session):
        moment = Ticket.accepted_at if rule.trigger == "accepted" else Ticket.created_at
        since = max(rule.scanned_until - OVERLAP, rule.created_at)
        tickets = select(Ticket.id).where(
            or_(moment >= since, Ticket.recategorised_at >= since),
            *_sent_by(rule),
            ~exists().where(ForwardedTicket.ticket_id == Ticket.id),
        )
        found = list(session.scalars(tickets.order_by(moment).limit(BATCH + 1)))
        if len(found) <= BATCH:  # all seen: the next sweep starts from here
            rule.scanned_until = now
        for ticket_id in found[:BATCH]:
            session.add(
                ForwardedTicket(
                    ticket_id=ticket_id,
                    forward_id=rule.id,
                    state="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            queued += 1
        session.flush()
    return queued


# -- the worker: posting and polling


@dataclass(frozen=True)
class _Call:
    forwarded_id: uuid.UUID
    ticket_id: uuid.UUID
    kind: str  # post | poll
    attempt: int
    url: str
    form: dict[str, str] | None  # a POST's form
    params: dict[str, str] | None  # a poll's query
    forward_name: str
    created_at: datetime
    external_status: str | None


@dataclass(frozen=True)
class _Answer:
    duration_ms: int
    status_code: int | None = None
    body: Any = None
    error: str | None = None


def _form(session: Session, ticket: Ticket, *, rule: Forward) -> dict[str, str]:
    # A department's Open311 server may well publish what it is sent: it gets the words
    # the public would read (the office's summary, or the first shown report's, masked),
    # never a hidden report's. The ticket's ref brings its clerk the rest.
    point = to_shape(ticket.location)
    words = public_words(session, [ticket])[ticket.id]
    description = f"[{ticket.ref}] " + (words.description or "")
    form = {
        "api_key": rule.api_key,
        "service_code": rule.service_code,
        "lat": f"{point.y:.7f}",
        "long": f"{point.x:.7f}",
        "description": description.strip()[:4000],
        "account_id": "flowing-sentinel",
    }
    if rule.jurisdiction_id:
        form["jurisdiction_id"] = rule.jurisdiction_id
    if words.address:
        form["address_string"] = words.address
    return form


def _claim(database: Database, now: datetime, *, lease: timedelta) -> list[_Call]:
    with database.transaction(write=False) as session:
        rows = claim_due(
            session,
            ForwardedTicket,
            ForwardedTicket.state.in_(("pending", "posted")),
            ForwardedTicket.next_attempt_at <= now,
            order_by=ForwardedTicket.next_attempt_at,
            limit=BATCH,
        )
        calls = []
        for row in rows:
            rule = session.get(Forward, row.forward_id)
            ticket = session.get(Ticket, row.ticket_id)
            assert rule is not None and ticket is not None
            if row.state == "pending" and rule.category_id != ticket.category_id:
                moved_to = _requeue(session, row, ticket=ticket, now=now)
                if moved_to is None:
                    continue
                rule = moved_to
            if row.state == "pending" and not rule.active:  # stopped before it was sent
                row.state = "failed"
                continue
            row.next_attempt_at = now + lease
            if row.state == "pending":
                row.attempts += 1
                calls.append(
                    _Call(
                        row.id,
                        ticket.id,
                        "post",
                        row.attempts,
                        f"{rule.endpoint}/requests.json",
                        _form(session, ticket, rule=rule),
                        None,
                        rule.name,
                        row.created_at,
                        None,
                    )
                )
            else:
                params = {"service_request_id": row.external_id or ""}
                if rule.jurisdiction_id:
                    params["jurisdiction_id"] = rule.jurisdiction_id
                calls.append(
                    _Call(
                        row.id,
                        ticket.id,
                        "poll",
                        row.attempts,
                        f"{rule.endpoint}/requests.json",
                        None,
                        params,
                        rule.name,
                        row.created_at,
                        row.external_status,
                    )
                )
        return calls


def _requeue(
    session: Session, row: ForwardedTicket, *, ticket: Ticket, now: datetime
) -> Forward | None:
    """A ticket recategorised before it was sent: queued afresh for the rule of its new
    category (returned), or, with none, not forwarded at all (the row goes, so that a
    later change of category may queue it again). The tries made for the old rule's
    system go too: it refused them or never answered."""
    session.execute(delete(ForwardAttempt).where(ForwardAttempt.forwarded_id == row.id))
    rule = _rule_for(session, ticket)
    if rule is None:
        session.delete(row)
        return None
    row.forward_id, row.attempts, row.created_at = rule.id, 0, now
    return rule


def _call(client: httpx.Client, call: _Call, *, settings: Settings) -> _Answer:
    started = time.monotonic()
    try:
        status, body = platforms.call_checked(
            client,
            "POST" if call.kind == "post" else "GET",
            url=call.url,
            allow_private=settings.allow_private_webhooks,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            read_body=True,
            **{"data": call.form} if call.form is not None else {"params": call.params},
        )
        parsed = json.loads(body) if body else None
        return _Answer(_ms_since(started), status_code=status, body=parsed)
    except (WebhookUrlRefused, httpx.HTTPError) as exc:
        error = platforms.call_failure(exc, settings)
    except ValueError:
        error = "the answer is not JSON"
    except Exception:  # one bad call must not lose the round's other outcomes
        logger.exception(
            "forwarding call failed", extra={"fields": {"ticket_id": str(call.ticket_id)}}
        )
        error = "internal error"
    return _Answer(_ms_since(started), error=error)


def forward_due(database: Database, *, settings: Settings, now: datetime) -> int:
    """One round of the worker: queue what qualifies, then post what is pending and poll
    what was posted; returns how many calls were made."""
    with database.transaction() as session:
        queue_due(session, now)
    lease = timedelta(seconds=settings.worker_lease_s)
    calls = _claim(database, now, lease=lease)
    if not calls:
        return 0
    with platforms.outbound_client(settings) as client:
        started = time.monotonic()
        answers = []
        for call in calls:
            if time.monotonic() - started > lease.total_seconds() * ROUND_SHARE_OF_LEASE:
                break
            answers.append(_call(client, call, settings=settings))
    for call, answer in zip(calls, answers, strict=False):
        try:
            with database.transaction() as session:
                if call.kind == "post":
                    _record_post(session, call, answer=answer, now=now)
                else:
                    _record_poll(session, call, answer=answer, now=now)
        except Exception:  # one outcome that cannot be stored must not lose the others
            logger.exception(
                "forwarding outcome not recorded", extra={"fields": {"ticket": str(call.ticket_id)}}
            )
    return len(answers)


def _attempt(
    session: Session, call: _Call, *, answer: _Answer, now: datetime, **fields: Any
) -> None:
    session.add(
        ForwardAttempt(
            forwarded_id=call.forwarded_id,
            kind=call.kind,
            attempted_at=now,
            status_code=answer.status_code,
            error=fields.pop("error", answer.error),
            duration_ms=answer.duration_ms,
            **fields,
        )
    )


def _matching(body: Any, external_id: str | None) -> dict[str, Any] | None:
    """The request ``external_id`` in a list of requests (a server may ignore the filter
    and answer others)."""
    if not isinstance(body, list):
        return None
    return next(
        (
            r
            for r in body
            if isinstance(r, dict) and str(r.get("service_request_id")) == str(external_id)
        ),
        None,
    )


def _first(body: Any) -> dict[str, Any] | None:
    return body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else None


def _record_post(session: Session, call: _Call, *, answer: _Answer, now: datetime) -> None:
    row = update(ForwardedTicket).where(
        ForwardedTicket.id == call.forwarded_id,
        ForwardedTicket.state == "pending",
        ForwardedTicket.attempts == call.attempt,
    )
    succeeded = answer.status_code is not None and 200 <= answer.status_code < 300
    created = _first(answer.body) if succeeded else None
    external_id = str(created.get("service_request_id") or "") if created else ""
    if succeeded and external_id and len(external_id) <= MAX_EXTERNAL_ID:
        _attempt(session, call, answer=answer, now=now)
        done = session.execute(
            row.values(
                state="posted",
                external_id=external_id,
                posted_at=now,
                next_attempt_at=now + POLL_EVERY,
            )
        )
        if not done.rowcount:  # type: ignore[attr-defined]
            logger.warning(
                "forwarded twice after a lease ran out",
                extra={"fields": {"ticket_id": str(call.ticket_id), "external_id": external_id}},
            )
        return
    if succeeded:
        # Taken, but not answered as this service can follow: sending it again would
        # file it twice.
        error = (
            "the server answered a token, not an id: not supported"
            if created and created.get("token")
            else f"the server took it but answered no usable id: {str(answer.body)[:300]}"
        )
        _attempt(session, call, answer=answer, now=now, error=error)
        session.execute(row.values(state="failed"))
        return
    error = answer.error or f"the server answered {answer.status_code}: {str(answer.body)[:300]}"
    _attempt(session, call, answer=answer, now=now, error=error)
    retry_at = now + platforms.retry_delay(call.attempt)
    may_succeed_later = answer.status_code is None or answer.status_code in RETRIED
    if may_succeed_later and retry_at <= call.created_at + GIVE_UP_AFTER:
        session.execute(row.values(next_attempt_at=retry_at))
    else:
        session.execute(row.values(state="failed"))
        logger.warning("forwarding given up", extra={"fields": {"ticket_id": str(call.ticket_id)}})


def _record_poll(session: Session, call: _Call, *, answer: _Answer, now: datetime) -> None:
    row = session.get(ForwardedTicket, call.forwarded_id)
    if row is None or row.state != "posted":
        return
    request = _matching(answer.body, row.external_id) if answer.status_code == 200 else None
    status = str(request.get("status")) if request else None
    if status not in ("open", "closed"):
        _attempt(
            session,
            call,
            answer=answer,
            now=now,
            error=answer.error or f"no status in the answer ({answer.status_code})",
        )
        row.next_attempt_at = now + POLL_EVERY
        return
    if status != call.external_status:
        _attempt(session, call, answer=answer, now=now, external_status=status)
    row.external_status = status
    row.next_attempt_at = now + POLL_EVERY
    if status == "closed":
        row.state, row.closed_at = "closed", now
        _mirror_closing(session, call, request=request or {}, now=now)


def _mirror_closing(
    session: Session, call: _Call, *, request: dict[str, Any], now: datetime
) -> None:
    """The external request closed: the ticket is resolved, by the system, naming it."""
    ticket = session.get(Ticket, call.ticket_id, with_for_update=True)
    if ticket is None or ticket.status not in MIRRORED_FROM:
        return
    notes = str(request.get("status_notes") or "").strip()
    note = f"closed in {call.forward_name} (request {request.get('service_request_id')})"
    if notes:
        note += f": {notes}"
    if ticket.status == TicketStatus.NEW:
        # The acceptance the closing implies comes first: a microsecond earlier, so that a
        # timeline (in the order of time) never shows the two the other way round.
        change(
            session,
            ticket,
            to=TicketStatus.ACCEPTED,
            type=TicketAction.ACCEPT,
            actor_kind=ActorKind.SYSTEM,
            actor_id=None,
            note=f"accepted in {call.forward_name}",
            data=None,
            now=now - timedelta(microseconds=1),
        )
    change(
        session,
        ticket,
        to=TicketStatus.RESOLVED,
        type=TicketAction.RESOLVE,
        actor_kind=ActorKind.SYSTEM,
        actor_id=None,
        note=note[:2000],
        data={"forwarded_to": call.forward_name},
        now=now,
    )


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
