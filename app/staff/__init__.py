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
from app.staff.scope import area_in_scope, scope_areas, staff_area_ids, ticket_scope_filter

__all__ = [
    "Account",
    "allow_alerts",
    "area_in_scope",
    "authenticate",
    "change_password",
    "create_staff",
    "get_staff",
    "page_staff",
    "scope_areas",
    "set_active",
    "set_display_name",
    "sign_out",
    "staff_area_ids",
    "ticket_scope_filter",
    "units_to_join",
]
