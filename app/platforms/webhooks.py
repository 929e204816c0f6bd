"""Webhooks: where a platform wants its events, and the worker's delivery of them.

Events are written to the outbox (``app.platforms.outbox``) in the transaction of the
change that causes them. The worker claims the due ones in one short transaction (a
lease: ``next_attempt_at`` pushed forward, ``attempts`` counted), commits, POSTs them
with no transaction open, and records each outcome in another. A slow or dead receiver
costs the worker time, never the API or the database's write lock; a worker that dies
mid-delivery leaves events that come due again when their lease ends (at least once).

A webhook URL must be http(s) and resolve to public addresses only: the service must
not become a way into its own network (SSRF). The check runs when the URL is set and
again at every delivery, and the request goes to the very address that was checked (the
host name travels in ``Host`` and TLS's SNI), so a name whose answer changes in between
(DNS rebinding) cannot slip through.
"""

import contextlib
import functools
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import secrets
import socket
import ssl
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import Database, begin_writes, claim_due, lock
from app.errors import WebhookUrlRefused, found
from app.models import OutboxEvent, Platform, Webhook, WebhookDelivery
from app.pagination import Page, PageRequest, newest_first_page

logger = logging.getLogger("sentinel.webhooks")

SIGNATURE_HEADER = "X-Sentinel-Signature"
EVENT_ID_HEADER = "X-Sentinel-Event-Id"
USER_AGENT = "FlowingSentinel-Webhooks/1"
BATCH = 100  # events claimed per round
SENDERS = 8  # deliveries in flight at once
# A claimed event is not claimed again for this long: far more than a round can take
# (BATCH / SENDERS deliveries one after another, each bounded by the timeout), so only
# a worker that died mid-round lets another one send its events again.
RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(hours=24)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# --- the platform's webhook -----------------------------------------------------------


def set_webhook(
    session: Session, *, platform: Platform, url: str, settings: Settings
) -> tuple[Webhook, str]:
    """Point ``platform``'s events at ``url`` with a new secret; returns both."""
    parsed = parse_url(url)
    if not settings.allow_private_webhooks:
        checked_addresses(parsed, allow_private=False)  # before the write lock: DNS is slow
    secret = "whsec_" + secrets.token_urlsafe(32)
    begin_writes(session)
    lock(session, ("webhook", str(platform.id)))  # two first PUTs at once: one insert
    webhook = session.get(Webhook, platform.id)
    if webhook is None:
        webhook = Webhook(platform_id=platform.id, url=url, secret=secret)
        session.add(webhook)
    else:
        webhook.url, webhook.secret = url, secret
    session.flush()
    return webhook, secret


def get_webhook(session: Session, platform: Platform) -> Webhook:
    return found(session.get(Webhook, platform.id), "this platform has no webhook")


def delete_webhook(session: Session, platform: Platform) -> None:
    """Stop sending events; those still queued are dropped when their turn comes."""
    begin_writes(session)
    session.execute(delete(Webhook).where(Webhook.platform_id == platform.id))


def page_deliveries(
    session: Session, *, platform: Platform, page: PageRequest
) -> Page["DeliveryAttempt"]:
    """The platform's delivery attempts, newest first, each with its event's type."""
    own = select(WebhookDelivery).where(WebhookDelivery.platform_id == platform.id)
    attempts = newest_first_page(
        session, own, at=WebhookDelivery.attempted_at, id=WebhookDelivery.id, page=page
    )
    types = {
        row.id: row.type
        for row in session.execute(
            select(OutboxEvent.id, OutboxEvent.type).where(
                OutboxEvent.id.in_({d.event_id for d in attempts.items})
            )
        )
    }
    return Page(
        [DeliveryAttempt(d, types[d.event_id]) for d in attempts.items], attempts.next_cursor
    )


@dataclass(frozen=True)
class DeliveryAttempt:
    delivery: WebhookDelivery
    type: str  # its event's type


# --- which URLs may receive -----------------------------------------------------------


KEEP_HISTORY = timedelta(days=7)


def purge_history(session: Session, now: datetime) -> int:
    """Forget events delivered or given up on more than ``KEEP_HISTORY`` ago, with their
    attempts; returns how many events went."""
    begin_writes(session)
    done = select(OutboxEvent.id).where(
        OutboxEvent.state.in_(("delivered", "failed")), OutboxEvent.created_at < now - KEEP_HISTORY
    )
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.event_id.in_(done)))
    result = session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(done)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def parse_url(url: str) -> httpx.URL:
    """``url`` if it is an absolute http(s) URL with a host and no credentials."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise WebhookUrlRefused("not a valid URL") from None
    if parsed.scheme not in ("http", "https"):
        raise WebhookUrlRefused("only http and https URLs can receive webhooks")
    if not parsed.host or any(c.isspace() for c in url):
        raise WebhookUrlRefused("the URL has no valid host")
    if parsed.userinfo:
        raise WebhookUrlRefused("the URL must not carry a user name or password")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise WebhookUrlRefused("the URL's port is out of range")
    return parsed


def is_public(address: IPAddress) -> bool:
    """Routed on the Internet and meant to be called: in no block of :data:`NOT_PUBLIC`,
    and ``is_global`` (not multicast nor reserved) as well. ``is_global`` alone is not
    enough: Python's table of special ranges lags IANA's (3.11 calls 192.0.0.8, the AS112
    anycast networks and 3fff::/20 global)."""
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 carried inside IPv6 (mapped, NAT64's well-known prefix, 6to4) is judged as
        # the IPv4 it reaches.
        embedded = (
            address.ipv4_mapped
            or (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in NAT64 else None)
            or address.sixtofour
        )
        if embedded is not None:
            return is_public(embedded)
        if address not in GLOBAL_UNICAST_V6:
            return False
    if any(address in block for block in NOT_PUBLIC[address.version]):
        return False
    return address.is_global and not (address.is_multicast or address.is_reserved)


NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are the IPv4
# IANA's IPv6 address space: only 2000::/3 is given out for global unicast; the rest is
# reserved, unique-local, link-local, multicast … (IPv4 inside IPv6 is judged above).
GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")

# Refused whatever ``is_global`` says: every block of IANA's special-purpose address
# registries (iana-ipv4-special-registry, iana-ipv6-special-registry), also those it calls
# globally reachable (anycast services, AS112, AMT …: nothing a webhook or an Open311
# server lives at), with multicast and the deprecated site-local block.
NOT_PUBLIC: dict[int, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]] = {
    4: tuple(
        ipaddress.IPv4Network(block)
        for block in (
            "0.0.0.0/8",  # "this network" RFC 791; 0.0.0.0/32 "this host" RFC 1122
            "10.0.0.0/8",  # private use, RFC 1918
            "100.64.0.0/10",  # shared address space (carrier-grade NAT), RFC 6598
            "127.0.0.0/8",  # loopback, RFC 1122
            "169.254.0.0/16",  # link local, RFC 3927
            "172.16.0.0/12",  # private use, RFC 1918
            # IETF protocol assignments, RFC 6890, all of it: 192.0.0.0/29 IPv4 service
            # continuity RFC 7335, 192.0.0.8 dummy address RFC 7600, 192.0.0.9 PCP anycast
            # RFC 7723, 192.0.0.10 TURN anycast RFC 8155, 192.0.0.170-171 NAT64/DNS64
            # discovery RFC 7050 / RFC 8880.
            "192.0.0.0/24",
            "192.0.2.0/24",  # documentation (TEST-NET-1), RFC 5737
            "192.31.196.0/24",  # AS112-v4, RFC 7535
            "192.52.193.0/24",  # AMT, RFC 7450
            "192.88.99.0/24",  # deprecated 6to4 relay anycast, RFC 7526
            "192.168.0.0/16",  # private use, RFC 1918
            "192.175.48.0/24",  # direct delegation AS112 service, RFC 7534
            "198.18.0.0/15",  # benchmarking, RFC 2544
            "198.51.100.0/24",  # documentation (TEST-NET-2), RFC 5737
            "203.0.113.0/24",  # documentation (TEST-NET-3), RFC 5737
            "224.0.0.0/4",  # multicast, RFC 5771
            "240.0.0.0/4",  # reserved, RFC 1112
            "255.255.255.255/32",  # limited broadcast, RFC 919 / RFC 8190
        )
    ),
    6: tuple(
        ipaddress.IPv6Network(block)
        for block in (
            "::/128",  # unspecified, RFC 4291
            "::1/128",  # loopback, RFC 4291
            "::ffff:0:0/96",  # IPv4-mapped, RFC 4291 (judged by its IPv4 above)
            "64:ff9b::/96",  # IPv4/IPv6 translation, RFC 6052 (judged by its IPv4 above)
            "64:ff9b:1::/48",  # local-use IPv4/IPv6 translation, RFC 8215
            "100::/64",  # discard-only, RFC 6666
            "100:0:0:1::/64",  # dummy IPv6 prefix, RFC 9780
            # IETF protocol assignments, RFC 2928, all of it: Teredo 2001::/32 RFC 4380,
            # PCP / TURN / DNS-SD SRP anycast 2001:1::1-3 RFC 7723 / 8155 / 9665,
            # benchmarking 2001:2::/48 RFC 5180, AMT 2001:3::/32 RFC 7450, AS112-v6
            # 2001:4:112::/48 RFC 7535, ORCHID 2001:10::/28 RFC 4843, ORCHIDv2
            # 2001:20::/28 RFC 7343, drone remote ID 2001:30::/28 RFC 9374.
            "2001::/23",
            "2001:db8::/32",  # documentation, RFC 3849
            "2002::/16",  # 6to4, RFC 3056 (judged by its IPv4 above)
            "2620:4f:8000::/48",  # direct delegation AS112 service, RFC 7534
            "3fff::/20",  # documentation, RFC 9637
            "5f00::/16",  # segment routing (SRv6) SIDs, RFC 9602
            "fc00::/7",  # unique local, RFC 4193
            "fe80::/10",  # link-local unicast, RFC 4291
            "fec0::/10",  # site-local (deprecated), RFC 3879
            "ff00::/8",  # multicast, RFC 4291
        )
    ),
}


def checked_addresses(url: httpx.URL, *, allow_private: bool) -> list[IPAddress]:
    """What ``url``'s host resolves to (IP literals included); refused if it resolves to
    nothing, or to anything that is not public unless ``allow_private``."""
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(url.raw_host.decode("ascii"), port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):  # socket.gaierror is an OSError
        infos = []
    # An IPv6 address may carry its zone ("fe80::1%eth0").
    addresses = list(
        dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
    )
    if not addresses:
        raise WebhookUrlRefused(f"{url.host} does not resolve")
    for address in addresses:
        if not allow_private and not is_public(address):
            raise WebhookUrlRefused(
                f"{url.host} resolves to {address}, which is not a public address"
            )
    return addresses


# --- delivery -------------------------------------------------------------------------


def envelope(event: OutboxEvent) -> bytes:
    """The body POSTed for ``event``, serialised once: exactly these bytes are signed."""
    return json.dumps(
        {
            "id": str(event.id),
            "type": event.type,
            "created_at": event.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "data": event.data,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


def signature(secret: str, body: bytes, *, timestamp: int) -> str:
    """``X-Sentinel-Signature``: HMAC-SHA256 of ``"<t>.<body>"`` keyed with the secret."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def retry_delay(attempt: int) -> timedelta:
    """The wait after the ``attempt``-th failure: doubling from RETRY_BASE up to RETRY_CAP,
    with equal jitter (at least half of it, at most all), so that the events queued for a
    receiver that was down do not all come back at the same second."""
    ceiling = min(RETRY_BASE * 2 ** min(attempt - 1, 16), RETRY_CAP)
    return ceiling * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class _Claim:
    event_id: uuid.UUID
    platform_id: uuid.UUID
    created_at: datetime
    attempt: int
    url: str
    secret: str
    body: bytes


@dataclass(frozen=True)
class _Outcome:
    duration_ms: int
    status_code: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def deliver_due(database: Database, *, settings: Settings, now: datetime) -> int:
    """One round of the worker: claim the due events, POST them, record what happened.
    Returns how many were sent."""
    claims = _claim(database, now, lease=timedelta(seconds=settings.worker_lease_s))
    if not claims:
        return 0
    with (
        outbound_client(settings) as client,
        ThreadPoolExecutor(min(SENDERS, len(claims))) as pool,
    ):
        outcomes = list(pool.map(lambda claim: _send(client, claim, settings=settings), claims))
    _record(database, list(zip(claims, outcomes, strict=True)), now=now)
    return len(claims)


def _claim(database: Database, now: datetime, *, lease: timedelta) -> list[_Claim]:
    with database.transaction(write=False) as session:
        events = claim_due(
            session,
            OutboxEvent,
            OutboxEvent.state == "pending",
            OutboxEvent.next_attempt_at <= now,
            order_by=OutboxEvent.next_attempt_at,
            limit=BATCH,
        )
        if not events:
            return []
        hooks = {
            w.platform_id: w
            for w in session.scalars(
                select(Webhook).where(Webhook.platform_id.in_({e.platform_id for e in events}))
            )
        }
        claims = []
        for event in events:
            hook = hooks.get(event.platform_id)
            if hook is None:  # the platform removed its webhook: nowhere to send it
                event.state = "failed"
                continue
            event.attempts += 1
            event.next_attempt_at = now + lease
            claims.append(
                _Claim(
                    event.id,
                    event.platform_id,
                    event.created_at,
                    event.attempts,
                    hook.url,
                    hook.secret,
                    envelope(event),
                )
            )
        return claims


def _send(client: httpx.Client, claim: _Claim, *, settings: Settings) -> _Outcome:
    started = time.monotonic()
    try:
        status_code = _post(client, claim, settings=settings)
        return _Outcome(_ms_since(started), status_code=status_code)
    except (WebhookUrlRefused, httpx.HTTPError) as exc:
        error = call_failure(exc, settings)
    except Exception:  # one bad event must not lose the round's other outcomes
        logger.exception(
            "webhook delivery failed", extra={"fields": {"event_id": str(claim.event_id)}}
        )
        error = "internal error"
    return _Outcome(_ms_since(started), error=error)


def _post(client: httpx.Client, claim: _Claim, *, settings: Settings) -> int:
    """POST the event; returns the status (the response body is not read)."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_ID_HEADER: str(claim.event_id),
        SIGNATURE_HEADER: signature(claim.secret, claim.body, timestamp=int(time.time())),
    }
    status, _ = call_checked(
        client,
        "POST",
        url=claim.url,
        allow_private=settings.allow_private_webhooks,
        headers=headers,
        content=claim.body,
    )
    return status


@functools.cache
def _tls() -> ssl.SSLContext:
    """The TLS of every call out, as httpx sets it up; made once, since loading the CA
    bundle costs more than a round of deliveries (an SSLContext serves any thread)."""
    return httpx.create_ssl_context(trust_env=False)


def outbound_client(settings: Settings) -> httpx.Client:
    """The client for calls out of the service (webhooks, forwarding), sent only through
    :func:`call_checked`."""
    # Sent to the address that was checked: no proxy from the environment, and no
    # connection reused (pinned to addresses, two hosts could share one).
    return httpx.Client(
        verify=_tls(),
        timeout=settings.webhook_timeout_s,
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


def call_failure(exc: WebhookUrlRefused | httpx.HTTPError, settings: Settings) -> str:
    """How a call that :func:`call_checked` refused or that failed is written in its log."""
    if isinstance(exc, WebhookUrlRefused):
        return f"refused: {exc.detail}"
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout after {settings.webhook_timeout_s:g} s"
    return f"{type(exc).__name__}: {exc}"[:500]


MAX_ANSWER = 1024 * 1024  # what is read of an answer at most


class AnswerTooLarge(httpx.HTTPError):
    def __init__(self) -> None:
        super().__init__(f"the answer is larger than {MAX_ANSWER} bytes")


def call_checked(
    client: httpx.Client,
    method: str,
    *,
    url: str,
    allow_private: bool,
    headers: dict[str, str],
    read_body: bool = False,
    **request: Any,
) -> tuple[int, bytes]:
    """A request to an address ``url``'s host resolves to now (checked against the SSRF
    rules), trying each in turn while connecting fails: its status, and its body (at
    most ``MAX_ANSWER`` bytes) if ``read_body``."""
    parsed = parse_url(url)
    addresses = checked_addresses(parsed, allow_private=allow_private)
    headers = {"Host": parsed.netloc.decode("ascii"), **headers}

    def call(address: IPAddress) -> tuple[int, bytes]:
        with client.stream(
            method,
            parsed.copy_with(host=str(address)),
            headers=headers,
            extensions={"sni_hostname": parsed.raw_host.decode("ascii")},
            **request,
        ) as response:
            body = bytearray()
            if read_body:
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER:
                        raise AnswerTooLarge()
            return response.status_code, bytes(body)

    for address in addresses[:-1]:
        with contextlib.suppress(httpx.ConnectError):
            return call(address)
    return call(addresses[-1])


def _record(database: Database, results: list[tuple[_Claim, _Outcome]], *, now: datetime) -> None:
    with database.transaction() as session:
        for claim, outcome in results:
            session.add(
                WebhookDelivery(
                    event_id=claim.event_id,
                    platform_id=claim.platform_id,
                    url=claim.url,
                    attempt=claim.attempt,
                    attempted_at=now,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                )
            )
            event = update(OutboxEvent).where(
                OutboxEvent.id == claim.event_id, OutboxEvent.state == "pending"
            )
            if outcome.delivered:
                session.execute(event.values(state="delivered", delivered_at=now))
                continue
            # Only the latest claim decides when to try again (after a lease ran out,
            # another worker may have claimed the event since).
            event = event.where(OutboxEvent.attempts == claim.attempt)
            retry_at = now + retry_delay(claim.attempt)
            if retry_at <= claim.created_at + GIVE_UP_AFTER:
                session.execute(event.values(next_attempt_at=retry_at))
            else:
                session.execute(event.values(state="failed"))
                logger.warning(
                    "webhook event given up",
                    extra={"fields": {"event_id": str(claim.event_id), "attempts": claim.attempt}},
                )


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
