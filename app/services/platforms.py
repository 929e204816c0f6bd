"""Delivery platforms, their API keys, and the riders they vouch for."""

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import begin_writes, lock
from app.errors import AlreadyExists, NotFound, ValidationFailed, found
from app.models import Platform, Rider, RiderTotals, utcnow
from app.services.pagination import Page, PageRequest, keyset_page
from app.services.security import (
    IssuedToken,
    TokenKind,
    hash_api_key,
    issue_token,
    new_api_key,
)

PLATFORM_CODE = re.compile(r"^[a-z][a-z0-9_-]{1,63}$")
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class NewPlatform:
    platform: Platform
    api_key: str  # shown once; only its hash is stored


def create_platform(session: Session, *, code: str, name: str) -> NewPlatform:
    # The API's schema checks these too, but the CLI comes straight here.
    if not PLATFORM_CODE.fullmatch(code):
        raise ValidationFailed.of_field(
            "code", "2–64 lower-case letters, digits, '_' or '-', from a letter"
        )
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise ValidationFailed.of_field("name", f"1–{MAX_NAME_LENGTH} characters")
    begin_writes(session)
    lock(session, ("platform", code))  # two creations of one code: the second sees the first
    if session.scalar(select(Platform.id).where(Platform.code == code)) is not None:
        raise AlreadyExists(f"platform {code} exists already")
    api_key = new_api_key()
    platform = Platform(
        code=code,
        name=name,
        api_key_hash=hash_api_key(api_key),
        api_key_prefix=api_key[:12],
        active=True,
    )
    session.add(platform)
    session.flush()
    return NewPlatform(platform, api_key)


MAX_GRACE = timedelta(days=30)


def rotate_api_key(
    session: Session,
    platform: Platform,
    *,
    grace: timedelta = timedelta(0),
    now: datetime | None = None,
) -> str:
    """A new key for ``platform``; the old one keeps working for ``grace`` (at most 30
    days), so that the platform can switch without a gap. A key in its grace period is
    dropped by the next rotation."""
    if not timedelta(0) <= grace <= MAX_GRACE:
        raise ValidationFailed.of_field("grace_h", "0 to 720 hours")
    begin_writes(session)
    now = now or utcnow()
    api_key = new_api_key()
    previous = platform.api_key_hash
    platform.api_key_hash, platform.api_key_prefix = hash_api_key(api_key), api_key[:12]
    platform.previous_key_hash = previous if grace else None
    platform.previous_key_expires_at = now + grace if grace else None
    session.flush()
    return api_key


def set_platform_active(session: Session, platform: Platform, active: bool) -> Platform:
    """A platform switched off loses its key and its riders' tokens at once."""
    begin_writes(session)
    platform.active = active
    session.flush()
    return platform


def platform_by_api_key(session: Session, api_key: str) -> Platform | None:
    """The active platform whose key this is (or was, within the grace of a rotation)."""
    digest = hash_api_key(api_key)
    found = session.scalar(
        select(Platform).where(Platform.api_key_hash == digest, Platform.active.is_(True))
    )
    if found is not None:
        return found
    return session.scalar(
        select(Platform).where(
            Platform.previous_key_hash == digest,
            Platform.previous_key_expires_at > utcnow(),
            Platform.active.is_(True),
        )
    )


def page_platforms(session: Session, page: PageRequest) -> Page[Platform]:
    return keyset_page(session, select(Platform), key=Platform.code, page=page)


def get_platform(session: Session, code: str) -> Platform:
    platform = session.scalar(select(Platform).where(Platform.code == code))
    return found(platform, f"no platform {code}")


@dataclass(frozen=True)
class RiderToken:
    rider: Rider
    issued: IssuedToken


def issue_rider_token(
    session: Session,
    *,
    platform: Platform,
    rider_id: str,
    display_name: str | None,
    settings: Settings,
) -> RiderToken:
    """A signed token for the platform's rider, registering the rider on first use."""
    if rider_id.startswith(TOMBSTONE_PREFIX):
        raise ValidationFailed.of_field(
            "rider_id", f"ids beginning {TOMBSTONE_PREFIX!r} are reserved for erased riders"
        )
    begin_writes(session)
    rider = find_rider(session, platform=platform, rider_id=rider_id) or _register_rider(
        session, platform=platform, rider_id=rider_id
    )
    if display_name is not None:
        rider.display_name = display_name
    rider.last_token_at = utcnow()
    session.flush()
    issued = issue_token(
        kind=TokenKind.RIDER,
        subject=rider.id,
        ttl=timedelta(hours=settings.rider_token_ttl_h),
        settings=settings,
    )
    return RiderToken(rider, issued)


def _register_rider(session: Session, *, platform: Platform, rider_id: str) -> Rider:
    rider = Rider(
        id=uuid.uuid4(),
        platform_id=platform.id,
        external_id=rider_id,
        pseudonym=f"R-{secrets.token_hex(4).upper()}",
    )
    try:
        with session.begin_nested():
            session.add(rider)
            session.flush()
            session.add(RiderTotals(rider_id=rider.id, platform_id=platform.id))
    except IntegrityError:
        # A concurrent first request (an app retrying, two devices) registered this rider
        # between our look-up and our insert; its row is committed now, so use it.
        existing = find_rider(session, platform=platform, rider_id=rider_id)
        if existing is None:
            raise
        return existing
    return rider


def rider_of(session: Session, *, platform: Platform, rider_id: str) -> Rider:
    """The platform's rider ``rider_id``, registered on first use (as a token would)."""
    found = find_rider(session, platform=platform, rider_id=rider_id)
    if found is not None:
        return found
    begin_writes(session)
    return find_rider(session, platform=platform, rider_id=rider_id) or _register_rider(
        session, platform=platform, rider_id=rider_id
    )


# An erased rider's platform id is replaced by this and a random suffix: the tombstone
# that holds their anonymous sums, which no platform can ask for.
TOMBSTONE_PREFIX = "erased-"


def find_rider(session: Session, *, platform: Platform, rider_id: str) -> Rider | None:
    if rider_id.startswith(TOMBSTONE_PREFIX):
        return None
    return session.scalar(
        select(Rider).where(Rider.platform_id == platform.id, Rider.external_id == rider_id)
    )


def get_rider(session: Session, *, platform: Platform, rider_id: str) -> Rider:
    """The platform's own rider; another platform's rider is as unknown as a missing one."""
    rider = find_rider(session, platform=platform, rider_id=rider_id)
    if rider is None:
        raise NotFound(f"no rider {rider_id} on this platform")
    return rider
