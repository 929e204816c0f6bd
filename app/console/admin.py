"""The admin's pages: categories (SLA hours, dedup, points, active), staff accounts,
platforms (a new key shown once) and the area import with its report. Input is checked
by the API's own schemas and stored by the same domain functions."""

import json
import re
from typing import Annotated, Any

from fastapi import File, Form, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from app import areas as area_service
from app import categories as category_service
from app import platforms as platform_service
from app import staff
from app import units as unit_service
from app.console.auth import AdminPage, StaffPage
from app.console.web import console_router
from app.errors import AppError, InvalidGeoJSON, PayloadTooLarge, ValidationFailed
from app.geo import CoordSys
from app.models import AreaLevel, StaffRole
from app.pagination import MAX_LIMIT, Page, PageRequest
from app.schemas.categories import CategoryPut, category_fields
from app.schemas.common import CATEGORY_CODE
from app.schemas.platforms import PlatformCreate
from app.schemas.staff import StaffCreate

router = console_router("/console/admin")
IMPORT_LIMIT = 64 * 1024 * 1024

# The forms' fields as typed, bounded here and read by the API's schemas.
Code = Annotated[str, Form(max_length=64)]
Name = Annotated[str, Form(max_length=400)]
Number = Annotated[str, Form(max_length=10)]
Choice = Annotated[str, Form(max_length=20)]  # one of an enum's values


def _problems(error: ValidationError | AppError) -> list[dict[str, str]]:
    refused = (
        ValidationFailed.of_pydantic(error.errors())
        if isinstance(error, ValidationError)
        else error
    )
    return refused.errors or [{"field": "", "message": refused.detail}]


def _show(page: StaffPage, template: str, **context: Any) -> HTMLResponse:
    """An admin page with what its last form did: ``problems`` make it a 422 unless
    ``status_code`` says otherwise."""
    status_code = context.pop("status_code", 422 if context.get("problems") else 200)
    return page.render(template, status_code=status_code, **context)


def _listing(page: StaffPage, template: str, found: Page[Any], **context: Any) -> HTMLResponse:
    """A page of accounts or platforms."""
    return _show(page, template, items=found.items, next_cursor=found.next_cursor, **context)


def _asked(page: StaffPage) -> PageRequest:
    return PageRequest(MAX_LIMIT, page.request.query_params.get("cursor") or None)


# -- categories


def _categories_page(page: StaffPage, **context: Any) -> HTMLResponse:
    categories = category_service.all_categories(page.session)
    return _show(page, "admin/categories.html", categories=categories, **context)


@router.get("/categories")
def categories(page: AdminPage) -> Response:
    return _categories_page(page, saved=page.request.query_params.get("saved"))


@router.post("/categories")
def save_category(
    page: AdminPage,
    code: Code,
    name_zh: Name,
    name_en: Name,
    priority: Number,
    respond_within_h: Number,
    resolve_within_h: Number,
    dedup_radius_m: Number,
    dedup_window_h: Number,
    points_open: Number,
    points_confirm: Number,
    points_resolve: Number,
    points_verify: Number,
    department: Name = "",
    description: Annotated[str, Form(max_length=4000)] = "",
    active: Annotated[str, Form(max_length=10)] = "",
    sla_clock: Choice = "hours",
    standard_kind: Choice = "",
    standard_class_code: Annotated[str, Form(max_length=10)] = "",
    standard_class_name: Name = "",
    standard_subclass_code: Annotated[str, Form(max_length=10)] = "",
    standard_subclass_name: Name = "",
) -> Response:
    """Create or replace one category, as ``PUT /v1/admin/categories/{code}`` does."""
    standard = (
        {
            "kind": standard_kind,
            "class_code": standard_class_code.strip(),
            "class_name": standard_class_name.strip(),
            "subclass_code": standard_subclass_code.strip(),
            "subclass_name": standard_subclass_name.strip(),
        }
        if standard_kind
        else None
    )
    try:
        if not re.match(CATEGORY_CODE, code):
            raise ValidationFailed.of_field("code", "2–64 lower-case letters, digits or '_'")
        body = CategoryPut.model_validate(
            {
                "name": {"zh": name_zh.strip(), "en": name_en.strip()},
                "description": description.strip(),
                "department": department.strip(),
                "priority": priority,
                "respond_within_h": respond_within_h,
                "resolve_within_h": resolve_within_h,
                "dedup_radius_m": dedup_radius_m,
                "dedup_window_h": dedup_window_h,
                "points": {
                    "open": points_open,
                    "confirm": points_confirm,
                    "resolve": points_resolve,
                    "verify": points_verify,
                },
                "active": bool(active),
                "sla_clock": sla_clock,
                "standard": standard,
            }
        )
        category_service.put_category(page.session, code, fields=category_fields(body))
    except (ValidationError, AppError) as refused:
        return _categories_page(page, problems=_problems(refused), editing=code)
    return RedirectResponse(f"/console/admin/categories?saved={code}", status_code=303)


# -- staff


def _staff_page(page: StaffPage, **context: Any) -> HTMLResponse:
    found = staff.page_staff(page.session, _asked(page))
    unit_codes = unit_service.unit_codes(
        page.session, (s.unit_id for s in found.items if s.unit_id)
    )
    return _listing(
        page,
        "admin/staff.html",
        found,
        roles=list(StaffRole),
        units=staff.units_to_join(page.session),
        unit_codes=unit_codes,
        **context,
    )


@router.get("/staff")
def staff_accounts(page: AdminPage) -> Response:
    return _staff_page(page)


@router.post("/staff")
def create_staff(
    page: AdminPage,
    username: Annotated[str, Form(max_length=200)],
    role: Choice,
    area: Code = "",
    unit: Code = "",
    display_name: Name = "",
) -> Response:
    try:
        body = StaffCreate.model_validate(
            {
                "username": username.strip(),
                "role": role,
                "area": area.strip() or None,
                "unit": unit.strip() or None,
                "display_name": display_name.strip() or None,
            }
        )
        new = staff.create_staff(page.session, body.account(), settings=page.settings)
    except (ValidationError, AppError) as refused:
        page.session.rollback()
        return _staff_page(page, problems=_problems(refused))
    return _staff_page(page, created=(new.staff.username, new.password))


# -- platforms


def _platforms_page(page: StaffPage, **context: Any) -> HTMLResponse:
    found = platform_service.page_platforms(page.session, _asked(page))
    return _listing(page, "admin/platforms.html", found, **context)


@router.get("/platforms")
def platforms(page: AdminPage) -> Response:
    return _platforms_page(page)


@router.post("/platforms")
def create_platform(
    page: AdminPage,
    code: Annotated[str, Form(max_length=200)],
    name: Name,
) -> Response:
    try:
        body = PlatformCreate.model_validate({"code": code.strip(), "name": name.strip()})
        new = platform_service.create_platform(page.session, code=body.code, name=body.name)
    except (ValidationError, AppError) as refused:
        page.session.rollback()
        return _platforms_page(page, problems=_problems(refused))
    return _platforms_page(page, key=(new.platform.code, new.api_key))


@router.post("/platforms/{code}/api-key")
def rotate_key(code: str, page: AdminPage) -> Response:
    platform = platform_service.get_platform(page.session, code)
    api_key = platform_service.rotate_api_key(page.session, platform)
    return _platforms_page(page, key=(platform.code, api_key))


# -- areas


def _areas_page(page: StaffPage, **context: Any) -> HTMLResponse:
    return _show(
        page, "admin/areas.html", coord_systems=list(CoordSys), levels=list(AreaLevel), **context
    )


@router.get("/areas")
def areas(page: AdminPage) -> Response:
    return _areas_page(page)


@router.post("/areas")
def import_areas(
    page: AdminPage,
    file: Annotated[UploadFile, File()],
    coord_sys: Annotated[CoordSys, Form()] = CoordSys.WGS84,
    level: Choice = "",
    parent: Code = "",
) -> Response:
    """The same all-or-nothing import as ``POST /v1/admin/areas:import``."""
    try:
        data = file.file.read(IMPORT_LIMIT + 1)
        if len(data) > IMPORT_LIMIT:
            raise PayloadTooLarge("an import may be at most 64 MB")
        try:
            collection = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise InvalidGeoJSON("the file is not JSON") from None
        imported = area_service.import_areas(
            page.session,
            collection,
            coord_sys=coord_sys,
            default_level=AreaLevel(level) if level in AreaLevel._value2member_map_ else None,
            default_parent=parent.strip() or None,
        )
    except AppError as refused:
        page.session.rollback()
        return _areas_page(page, status_code=refused.status, problems=_problems(refused))
    return _areas_page(page, imported=imported)
