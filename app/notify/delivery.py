"""Sending what the channels are due, as the platforms' webhooks are sent: the worker
claims due notifications in one short transaction (a lease), sends with no transaction
open, and records each outcome in another; a failed message is tried again later
(doubling waits, up to a day), so a receiver that was down gets everything once it is
back, each once.

The robots throttle (WeCom takes 20 messages a minute): each channel has a bucket of
``BURST`` messages, refilled one per ``SENTINEL_CHANNEL_MIN_INTERVAL_S``. When more are
due than it may send, the last message it may send carries all the rest as one summary;
with none left, they wait for the bucket. A channel whose every attempt has failed for
``DEAD_AFTER`` is dead: the admin's page and ``/readyz`` say so."""

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import Database, begin_writes, claim_due
from app.errors import WebhookUrlRefused
from app.models import Channel, ChannelDelivery, ChannelKind, Notification
from app.notify.channels import mail_recipients
from app.notify.mail import MailNotConfigured, send_mail
from app.notify.messages import Message, render, summary
from app.notify.payloads import accepted, outgoing
from app.pagination import Page, PageRequest, newest_first_page
from app.platforms import call_checked, call_failure, outbound_client, retry_delay

logger = logging.getLogger("sentinel.notify")

BATCH = 500  # notifications claimed per round
SENDERS = 8
BURST = 5  # messages a channel may get at once
GIVE_UP_AFTER = timedelta(hours=24)
DEAD_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class Addressee:
    """What sending to a channel needs, read in the claim's transaction."""

    id: int
    code: str
    kind: ChannelKind
    url: str
    secret: str | None
    lang: str


@dataclass
class Send:
    """One message to one channel: one notification's, or a summary of several."""

    to: Addressee
    notifications: list[uuid.UUID]
    events: list[str]
    facts: list[dict[str, Any]]
    attempts: dict[uuid.UUID, int] = field(default_factory=dict)
    first_tried: dict[uuid.UUID, datetime] = field(default_factory=dict)

    def message(self, base_url: str) -> Message:
        messages = [
            render(event, facts, lang=self.to.lang, base_url=base_url)
            for event, facts in zip(self.events, self.facts, strict=True)
        ]
        return messages[0] if len(messages) == 1 else summary(messages, lang=self.to.lang)


@dataclass(frozen=True)
class Outcome:
    duration_ms: int
    status_code: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.error is None


def addressee(channel: Channel) -> Addressee:
    """What sending to ``channel`` needs, as read now."""
    return Addressee(
        channel.id,
        channel.code,
        ChannelKind(channel.kind),
        channel.url,
        channel.secret,
        channel.lang,
    )


def _allowance(channel: Channel, *, now: datetime, interval_s: float) -> float:
    """The messages ``channel`` may get now: its bucket, refilled since it was last used."""
    if channel.allowance_at is None:
        return float(BURST)
    refilled = (now - channel.allowance_at).total_seconds() / max(interval_s, 0.001)
    return min(float(BURST), channel.allowance + refilled)


def deliver_notifications(database: Database, *, settings: Settings, now: datetime) -> int:
    """One round: claim what is due, send it, record it. Returns messages sent."""
    sends = _claim(database, settings=settings, now=now)
    if not sends:
        return 0
    base_url = (settings.public_url or "").rstrip("/")
    with outbound_client(settings) as client, ThreadPoolExecutor(min(SENDERS, len(sends))) as pool:
        outcomes = list(
            pool.map(
                lambda s: send(client, s, settings=settings, base_url=base_url, now=now), sends
            )
        )
    _record(database, list(zip(sends, outcomes, strict=True)), now=now)
    return len(sends)


def _claim(database: Database, *, settings: Settings, now: datetime) -> list[Send]:
    lease = timedelta(seconds=settings.worker_lease_s)
    with database.transaction(write=False) as session:
        due = claim_due(
            session,
            Notification,
            Notification.state == "pending",
            Notification.next_attempt_at <= now,
            order_by=Notification.next_attempt_at,
            limit=BATCH,
        )
        if not due:
            return []
        by_channel: defaultdict[int, list[Notification]] = defaultdict(list)
        for notification in due:
            by_channel[notification.channel_id].append(notification)
        # The channels' rows locked too (PostgreSQL): two workers spending one
        # channel's bucket at once would each spend it whole.
        channels = {
            c.id: c
            for c in session.scalars(
                select(Channel)
                .where(Channel.id.in_(by_channel))
                .order_by(Channel.id)
                .with_for_update()
            )
        }
        sends: list[Send] = []
        for channel_id, waiting in by_channel.items():
            channel = channels[channel_id]
            if not channel.active:
                for notification in waiting:
                    notification.state = "failed"
                continue
            allowance = _allowance(channel, now=now, interval_s=settings.channel_min_interval_s)
            may_send = int(allowance)
            if may_send < 1:
                continue  # they wait for the bucket
            to = addressee(channel)
            singles = waiting if len(waiting) <= may_send else waiting[: may_send - 1]
            groups = [[n] for n in singles]
            if len(waiting) > may_send:
                groups.append(waiting[may_send - 1 :])
            for group in groups:
                for notification in group:
                    notification.attempts += 1
                    notification.next_attempt_at = now + lease
                    notification.first_attempt_at = notification.first_attempt_at or now
                sends.append(
                    Send(
                        to,
                        [n.id for n in group],
                        [n.event for n in group],
                        [n.data for n in group],
                        {n.id: n.attempts for n in group},
                        {n.id: n.first_attempt_at or now for n in group},
                    )
                )
            channel.allowance, channel.allowance_at = allowance - len(groups), now
        return sends


def send(
    client: httpx.Client, message: Send, *, settings: Settings, base_url: str, now: datetime
) -> Outcome:
    """Sends one message; what happened (never raises)."""
    started = time.monotonic()
    to = message.to
    try:
        rendered = message.message(base_url)
        if to.kind == ChannelKind.EMAIL:
            send_mail(
                settings.smtp_url,
                rendered,
                recipients=mail_recipients(to.url),
                timeout=settings.webhook_timeout_s,
            )
            return Outcome(_ms_since(started), status_code=250)
        request = outgoing(
            to.kind,
            url=to.url,
            secret=to.secret,
            message=rendered,
            lang=to.lang,
            event=message.events[0] if len(message.events) == 1 else "summary",
            facts=message.facts[0] if len(message.facts) == 1 else {"count": len(message.facts)},
            now=now,
            # A notification's own id; a summary's, one of its own (a receiver that skips
            # ids it has seen must not skip the summary for one of its notifications').
            delivery_id=message.notifications[0]
            if len(message.notifications) == 1
            else uuid.uuid4(),
        )
        status, body = call_checked(
            client,
            "POST",
            url=request.url,
            allow_private=settings.allow_private_webhooks,
            headers=request.headers,
            content=request.body,
            read_body=True,
        )
        return Outcome(
            _ms_since(started),
            status_code=status,
            error=accepted(to.kind, status=status, body=body),
        )
    except (WebhookUrlRefused, httpx.HTTPError) as exc:
        return Outcome(_ms_since(started), error=call_failure(exc, settings))
    except MailNotConfigured as exc:
        return Outcome(_ms_since(started), error=str(exc))
    except OSError as exc:  # smtplib's errors among them
        return Outcome(_ms_since(started), error=f"{type(exc).__name__}: {exc}"[:500])
    except Exception:  # one bad message must not lose the round's other outcomes
        logger.exception("notification failed", extra={"fields": {"channel": to.code}})
        return Outcome(_ms_since(started), error="internal error")


def _record(database: Database, results: Sequence[tuple[Send, Outcome]], *, now: datetime) -> None:
    """Each outcome in a transaction of its own: one that cannot be recorded (its channel
    deleted meanwhile, the database busy) does not lose the others, whose messages would
    otherwise be sent again when their lease ends."""
    for message, outcome in results:
        try:
            with database.transaction() as session:
                record_attempt(session, message, outcome=outcome, now=now)
        except Exception:
            logger.exception(
                "a notification's outcome was not recorded",
                extra={"fields": {"channel": message.to.code, "delivered": outcome.delivered}},
            )


def record_attempt(session: Session, message: Send, *, outcome: Outcome, now: datetime) -> None:
    """The attempt in the channel's log, and what becomes of its notifications."""
    channel = session.get(Channel, message.to.id)
    if channel is None:  # deleted meanwhile, with its queue and log
        return
    session.add(
        ChannelDelivery(
            channel_id=message.to.id,
            attempted_at=now,
            events=sorted(set(message.events)),
            notifications=len(message.notifications),
            status_code=outcome.status_code,
            error=outcome.error,
            duration_ms=outcome.duration_ms,
        )
    )
    if outcome.delivered:
        channel.failing_since, channel.last_error, channel.last_sent_at = None, None, now
        state = "sent" if len(message.notifications) == 1 else "merged"
        session.execute(
            update(Notification)
            .where(Notification.id.in_(message.notifications), Notification.state == "pending")
            .values(state=state, sent_at=now)
        )
        return
    channel.failing_since = channel.failing_since or now
    channel.last_error = outcome.error
    for notification_id, attempt in message.attempts.items():
        # Only the latest claim decides (after a lease ran out, another may hold it).
        mine = update(Notification).where(
            Notification.id == notification_id,
            Notification.state == "pending",
            Notification.attempts == attempt,
        )
        retry_at = now + retry_delay(attempt)
        if retry_at <= message.first_tried[notification_id] + GIVE_UP_AFTER:
            session.execute(mine.values(next_attempt_at=retry_at))
        else:
            session.execute(mine.values(state="failed"))


def page_deliveries(
    session: Session, channel: Channel, *, page: PageRequest
) -> Page[ChannelDelivery]:
    """The channel's attempts, newest first."""
    own = select(ChannelDelivery).where(ChannelDelivery.channel_id == channel.id)
    return newest_first_page(
        session, own, at=ChannelDelivery.attempted_at, id=ChannelDelivery.id, page=page
    )


def test_message(to: Addressee) -> Send:
    """A message that says the channel is connected (sent at once, logged as any)."""
    return Send(to, [], ["test"], [{}])


KEEP_HISTORY = timedelta(days=7)


def purge_history(session: Session, now: datetime) -> int:
    """Notifications done with (sent, merged, given up) and attempts older than a week go
    (the facts they kept — masked words of reports, places — with them): by their
    indexes, a channel at a time."""
    begin_writes(session)
    cutoff = now - KEEP_HISTORY
    removed = session.execute(
        delete(Notification).where(
            Notification.state.in_(("sent", "merged", "failed")),
            Notification.next_attempt_at < cutoff,
        )
    ).rowcount  # type: ignore[attr-defined]
    for channel_id in session.scalars(select(Channel.id)):
        removed += session.execute(
            delete(ChannelDelivery).where(
                ChannelDelivery.channel_id == channel_id, ChannelDelivery.attempted_at < cutoff
            )
        ).rowcount  # type: ignore[attr-defined]
    return int(removed or 0)


def is_dead(channel: Channel, *, now: datetime) -> bool:
    """Dead: active, and every attempt has failed for ``DEAD_AFTER`` or more (the one
    rule: the API's read, the console, ``/readyz``)."""
    failing = channel.failing_since
    return channel.active and failing is not None and now - failing >= DEAD_AFTER


def dead_channels(session: Session, *, now: datetime) -> list[Channel]:
    """The dead channels (``is_dead``), by their code."""
    return list(
        session.scalars(
            select(Channel)
            .where(Channel.active, Channel.failing_since <= now - DEAD_AFTER)
            .order_by(Channel.code)
        )
    )


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
