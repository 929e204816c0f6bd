"""Delivery platforms and their API keys."""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import begin_writes, lock
from app.errors import AlreadyExists, ValidationFailed, found
from app.models import Platform, utcnow
from app.pagination import Page, PageRequest, keyset_page
from app.security import (
    hash_api_key,
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


def set_platform_active(session: Session, platform: Platform, *, active: bool) -> Platform:
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
