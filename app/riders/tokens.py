"""The riders a platform vouches for, and their bearer tokens."""

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import begin_writes
from app.errors import NotFound, ValidationFailed
from app.models import Platform, Rider, RiderTotals, utcnow
from app.security import (
    IssuedToken,
    TokenKind,
    issue_token,
)


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
