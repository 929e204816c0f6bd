"""Throttled sign-in: failed attempts counted in the database (so every process sees them)
per account at one client address, per address whatever the account, and per account
from everywhere; a growing wait after a few, and at most a few password checks at once
(each argon2 check takes 64 MiB: a flood of sign-ins must not exhaust memory).

Usernames are easy to guess (``officer_<street code>``), so failures from one address
must not lock the account out of every other: the account and address together wait
first. The account alone waits only after far more failures, from many addresses at
once, and then says so in the log for the operator."""

import ipaddress
import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.db import DATABASE, Database, begin_writes, lock
from app.errors import SignInBusy, SignInThrottled
from app.models import SignInThrottle

logger = logging.getLogger("sentinel.auth")

# Failures allowed before the first wait: an account's at one address, an address's (many
# clerks of one office share one), and an account's from everywhere.
FREE_FAILURES = {"pair": 5, "ip": 30, "user": 100}
FIRST_WAIT = timedelta(seconds=1)
# The longest wait: a quarter of an hour at one address; a minute for the account from
# everywhere, which slows guessing down without keeping the clerk out for long.
LONGEST_WAIT = {
    "pair": timedelta(minutes=15),
    "ip": timedelta(minutes=15),
    "user": timedelta(minutes=1),
}
# What of a username and of an address a key holds: a pair's key fits the column's 200.
NAME_CHARS = 64
ADDRESS_CHARS = 128
# A failure this old no longer counts: the count starts again.
FORGOTTEN_AFTER = timedelta(hours=1)
# Password checks at once in a process, and how long one waits for its turn.
CHECKS_AT_ONCE = 2
TURN_WAIT_S = 5.0
_checks = threading.BoundedSemaphore(CHECKS_AT_ONCE)


def _account(username: str) -> str:
    return username.strip().lower()[:NAME_CHARS]


def _address(client: str | None) -> str:
    """Where a sign-in comes from, as counted: an IPv4 address, or the /64 network of an
    IPv6 one (a single host may hold every address of its /64)."""
    try:
        ip = ipaddress.ip_address(client or "")
    except ValueError:
        return (client or "")[:ADDRESS_CHARS]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def keys_of(username: str, client: str | None) -> list[str]:
    """The counts a sign-in of ``username`` from ``client`` is held to: the account's at
    that address (without an address, one for them all), the address's, the account's."""
    account, address = _account(username), _address(client)
    keys = [f"pair:{account}|{address}", f"user:{account}"]
    if address:
        keys.append(f"ip:{address}")
    return keys


def wait_after(kind: str, failures: int) -> timedelta:
    """The wait after the ``failures``-th failure in a row: none while few, then doubling
    from a second to a quarter of an hour."""
    beyond = failures - FREE_FAILURES[kind]
    if beyond <= 0:
        return timedelta(0)
    return min(FIRST_WAIT * 2 ** min(beyond - 1, 20), LONGEST_WAIT[kind])


def check(session: Session, keys: list[str], *, now: datetime) -> None:
    """Refuses (429) a sign-in that comes before its wait is over."""
    rows = session.scalars(select(SignInThrottle).where(SignInThrottle.key.in_(keys))).all()
    waits = [r.blocked_until - now for r in rows if r.blocked_until and r.blocked_until > now]
    if waits:
        seconds = math.ceil(max(waits).total_seconds())
        logger.warning(
            "sign-in throttled", extra={"fields": {"keys": keys, "retry_after": seconds}}
        )
        raise SignInThrottled(
            f"too many failed sign-ins; try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


def _database(session: Session) -> Database:
    database: Database = session.info[DATABASE]
    return database


def failed(session: Session, keys: list[str], *, now: datetime) -> None:
    """Counts a failure for each key, in a transaction of its own: the request's is
    rolled back with the refusal."""
    with _database(session).transaction() as own:
        begin_writes(own)
        for key in keys:
            lock(own, ("sign-in", key))
            row = own.get(SignInThrottle, key)
            if row is None or row.last_failed_at < now - FORGOTTEN_AFTER:
                row = row or SignInThrottle(key=key)
                row.failures = 0
            row.failures += 1
            row.last_failed_at = now
            kind, _, name = key.partition(":")
            wait = wait_after(kind, row.failures)
            row.blocked_until = now + wait if wait else None
            own.add(row)
            if kind == "user" and wait:
                _under_attack(name, failures=row.failures, wait=wait)
    logger.warning("sign-in failed", extra={"fields": {"keys": keys}})


def _under_attack(account: str, *, failures: int, wait: timedelta) -> None:
    """Failures from many addresses: the account now waits everywhere, its own clerk too."""
    logger.warning(
        "sign-in: account under attack",
        extra={
            "fields": {
                "account": account,
                "failures": failures,
                "retry_after": math.ceil(wait.total_seconds()),
            }
        },
    )


def succeeded(session: Session, keys: list[str]) -> None:
    """A success clears the account's count at the address it came from (``keys`` are
    the sign-in's, from :func:`keys_of`); not the address's own, nor the account's from
    everywhere: a clerk signing in does not end an attack."""
    pair = [key for key in keys if key.startswith("pair:")]
    with _database(session).transaction() as own:
        if own.scalar(select(SignInThrottle.key).where(SignInThrottle.key.in_(pair))):
            begin_writes(own)
            own.execute(delete(SignInThrottle).where(SignInThrottle.key.in_(pair)))


@contextmanager
def password_check() -> Iterator[None]:
    """A turn to check a password; 503 (try again) if none comes soon."""
    if not _checks.acquire(timeout=TURN_WAIT_S):
        logger.warning("sign-in refused: too many password checks at once")
        raise SignInBusy(
            "too many sign-ins at once; try again shortly", headers={"Retry-After": "2"}
        )
    try:
        yield
    finally:
        _checks.release()
