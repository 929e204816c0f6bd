"""Staff — street offices, the district, admins and the crews of responsible units:
accounts, throttled sign-in, and the part of the area tree each member may see.

Uses ``app.areas``, ``app.units`` and the bottom floor."""

from app.staff.accounts import (
    Account,
    allow_alerts,
    authenticate,
    change_password,
    create_staff,
    get_staff,
    page_staff,
    set_active,
    set_display_name,
    sign_out,
    units_to_join,
)
from app.staff.scope import (
    AreaName,
    area_in_scope,
    district_streets,
    scope_area_names,
    scope_areas,
    staff_area_ids,
    ticket_scope_filter,
)

__all__ = [
    "Account",
    "AreaName",
    "allow_alerts",
    "area_in_scope",
    "authenticate",
    "change_password",
    "create_staff",
    "district_streets",
    "get_staff",
    "page_staff",
    "scope_area_names",
    "scope_areas",
    "set_active",
    "set_display_name",
    "sign_out",
    "staff_area_ids",
    "ticket_scope_filter",
    "units_to_join",
]
