"""Staff accounts (officers, district users, admins, members of a unit's crew) and their
login."""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import begin_writes, lock
from app.errors import AlreadyExists, InvalidCredentials, ValidationFailed, found
from app.models import Area, AreaLevel, Staff, StaffRole, Unit, utcnow
from app.pagination import Page, PageRequest, keyset_page
from app.security import (
    IssuedToken,
    TokenKind,
    burn_password_check,
    hash_password,
    issue_token,
    new_password,
    verify_password,
)
from app.staff import sign_in
from app.units import find_unit

USERNAME = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")
MIN_PASSWORD_LENGTH = 10
# The area each role is scoped to.
ROLE_AREA_LEVEL = {StaffRole.OFFICER: AreaLevel.STREET, StaffRole.DISTRICT: AreaLevel.DISTRICT}


@dataclass(frozen=True)
class NewStaff:
    staff: Staff
    password: str


@dataclass(frozen=True)
class Account:
    """A staff account to create: who, in which role, over which area or in which unit."""

    username: str
    role: StaffRole
    area_code: str | None = None  # the street (officer) or district; none for the others
    display_name: str | None = None
    password: str | None = None  # None: one is generated, and returned once
    unit_code: str | None = None  # the unit of a crew member; none for the others


def create_staff(session: Session, account: Account, *, settings: Settings) -> NewStaff:
    username, role, password = account.username, account.role, account.password
    if not USERNAME.fullmatch(username):
        raise ValidationFailed.of_field("username", "3–64 letters, digits, '_', '.' or '-'")
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed.of_field("password", f"at least {MIN_PASSWORD_LENGTH} characters")
    password = password or new_password()
    password_hash = hash_password(password, settings)  # slow on purpose: before the writes
    begin_writes(session)
    lock(session, ("staff", username))  # two creations of one name: the second sees the first
    area = _role_area(session, role, area_code=account.area_code)
    unit = _crew_unit(session, role, unit_code=account.unit_code)
    if session.scalar(select(Staff.id).where(Staff.username == username)) is not None:
        raise AlreadyExists(f"user {username} exists already")
    staff = Staff(
        username=username,
        role=role,
        area_id=area.id if area else None,
        unit_id=unit.id if unit else None,
        password_hash=password_hash,
        active=True,
        display_name=account.display_name,
    )
    session.add(staff)
    session.flush()
    staff.area = area
    return NewStaff(staff, password)


def _role_area(session: Session, role: StaffRole, *, area_code: str | None) -> Area | None:
    level = ROLE_AREA_LEVEL.get(role)
    if level is None:
        if area_code is not None:
            raise ValidationFailed.of_field("area", f"a user with the role {role} has no area")
        return None
    if area_code is None:
        raise ValidationFailed.of_field(
            "area", f"a user with the role {role} needs the code of a {level}"
        )
    area = session.scalar(select(Area).where(Area.code == area_code))
    if area is None or area.level != level:
        raise ValidationFailed.of_field("area", f"{area_code} is not a {level}")
    return area


def _crew_unit(session: Session, role: StaffRole, *, unit_code: str | None) -> Unit | None:
    """The unit of a crew member; no other role belongs to one."""
    if role != StaffRole.CREW:
        if unit_code is not None:
            raise ValidationFailed.of_field("unit", f"a user with the role {role} has no unit")
        return None
    if unit_code is None:
        raise ValidationFailed.of_field("unit", "a crew member needs the code of its unit")
    unit = find_unit(session, unit_code)
    if unit is None:
        raise ValidationFailed.of_field("unit", f"no unit with code {unit_code}")
    return unit


def authenticate(
    session: Session,
    *,
    username: str,
    password: str,
    settings: Settings,
    client: str | None = None,
    now: datetime | None = None,
) -> tuple[Staff, IssuedToken]:
    """The account and a new token, if the password is right and the account and the
    client address have not failed too often lately (429 until their wait is over)."""
    now = now or utcnow()
    keys = sign_in.keys_of(username, client)
    sign_in.check(session, keys, now=now)
    staff = session.scalar(select(Staff).where(Staff.username == username))
    with sign_in.password_check():
        if staff is None or not staff.active:
            burn_password_check(password, settings)
            right = False
        else:
            right = verify_password(staff.password_hash, password)
    if staff is None or not right:
        sign_in.failed(session, keys, now=now)
        raise InvalidCredentials()
    sign_in.succeeded(session, keys)
    token = issue_token(
        kind=TokenKind.STAFF,
        subject=staff.id,
        ttl=timedelta(hours=settings.staff_token_ttl_h),
        settings=settings,
    )
    return staff, token


def units_to_join(session: Session) -> list[Unit]:
    """The units a new crew account is offered: the active ones, by code."""
    return list(session.scalars(select(Unit).where(Unit.active.is_(True)).order_by(Unit.code)))


def page_staff(session: Session, page: PageRequest) -> Page[Staff]:
    return keyset_page(session, select(Staff), key=Staff.username, page=page)


def get_staff(session: Session, username: str) -> Staff:
    staff = session.scalar(select(Staff).where(Staff.username == username))
    return found(staff, f"no staff account {username}")


# Revocations are stamped with the real time, as the tokens they compare with are.


def set_active(session: Session, staff: Staff, *, active: bool) -> Staff:
    """A disabled account's tokens stop working at once (and stay revoked if it is
    enabled again: it signs in anew)."""
    begin_writes(session)
    staff.active = active
    if not active:
        staff.tokens_valid_after = utcnow()
    session.flush()
    return staff


def set_display_name(session: Session, staff: Staff, *, display_name: str | None) -> Staff:
    """The name the account is shown by (None: its username)."""
    begin_writes(session)
    staff.display_name = display_name
    session.flush()
    return staff


def allow_alerts(session: Session, staff: Staff, *, allowed: bool) -> Staff:
    """Let an account that is not district staff publish area alerts (or stop it)."""
    begin_writes(session)
    staff.may_publish_alerts = allowed
    session.flush()
    return staff


def sign_out(session: Session, staff: Staff) -> None:
    """Every token this account holds stops working: its sessions everywhere end."""
    begin_writes(session)
    staff.tokens_valid_after = utcnow()
    session.flush()


def change_password(
    session: Session,
    staff: Staff,
    *,
    current: str,
    new: str,
    settings: Settings,
    client: str | None,
    now: datetime,
) -> IssuedToken:
    """A new password, if the current one is given right (throttled as a sign-in);
    every token issued before stops working, and a new one is returned."""
    if len(new) < MIN_PASSWORD_LENGTH or new == current:
        raise ValidationFailed.of_field(
            "new_password", f"at least {MIN_PASSWORD_LENGTH} characters, not the current one"
        )
    keys = sign_in.keys_of(staff.username, client)
    sign_in.check(session, keys, now=now)
    with sign_in.password_check():
        right = verify_password(staff.password_hash, current)
    if not right:
        sign_in.failed(session, keys, now=now)
        raise InvalidCredentials("the current password is wrong")
    begin_writes(session)
    staff.password_hash = hash_password(new, settings)
    staff.tokens_valid_after = utcnow()
    session.flush()
    return issue_token(
        kind=TokenKind.STAFF,
        subject=staff.id,
        ttl=timedelta(hours=settings.staff_token_ttl_h),
        settings=settings,
    )
