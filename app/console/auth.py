"""Signing in to the console: the staff accounts' passwords, a session cookie holding
the staff token (HttpOnly, SameSite, Secure behind https; it expires with the token),
and the dependencies that give a page its member of staff (on the gate's guards,
``app.console.gate``)."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from app.console.gate import (
    SESSION_COOKIE,
    SignInRequired,
    admin_only,
    home_of,
    office_only,
    signed_in,
)
from app.console.i18n import LOCALES
from app.console.web import LANG_COOKIE, Page, console_router, is_https, renew_csrf
from app.deps import ClientAddress, ClockDep, SessionDep, SettingsDep, caller_for_token
from app.errors import InvalidCredentials, SignInBusy, SignInThrottled, Unauthenticated
from app.models import Staff
from app.staff import authenticate
from app.staff import sign_out as staff_sign_out

router = console_router()


SignedIn = Annotated[Staff, Depends(signed_in)]
OfficeClerk = Annotated[Staff, Depends(office_only)]
ConsoleAdmin = Annotated[Staff, Depends(admin_only)]


@dataclass(frozen=True, kw_only=True)
class StaffPage(Page):
    """A page behind the sign-in: who is signed in, and the request's database session."""

    staff: Staff
    session: Session


def _admin_page(
    request: Request, staff: ConsoleAdmin, session: SessionDep, settings: SettingsDep
) -> StaffPage:
    return StaffPage(request=request, settings=settings, staff=staff, session=session)


def _sign_in_page(request: Request, settings: SettingsDep) -> Page:
    return Page(request=request, settings=settings)


AdminPage = Annotated[StaffPage, Depends(_admin_page)]
SignInPage = Annotated[Page, Depends(_sign_in_page)]


def _safe_next(next_url: str | None) -> str | None:
    """Only a path of the console: never another site."""
    if next_url and next_url.startswith("/console/") and not next_url.startswith("//"):
        return next_url
    return None


@router.get("")
@router.get("/")
def console_home(request: Request, staff: SignedIn) -> RedirectResponse:
    return RedirectResponse(home_of(staff), status_code=303)


@router.get("/login")
def login_page(page: SignInPage, next: str | None = None) -> Response:
    return page.render("login.html", next=_safe_next(next) or "")


@router.post("/login")
def login(
    page: SignInPage,
    client: ClientAddress,
    session: SessionDep,
    clock: ClockDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    try:
        staff, token = authenticate(
            session,
            username=username.strip(),
            password=password,
            settings=page.settings,
            client=client,
            now=clock(),
        )
    except (SignInThrottled, SignInBusy) as wait:
        return page.render(
            "login.html",
            status_code=wait.status,
            next=_safe_next(next) or "",
            username=username,
            wait=wait.headers.get("Retry-After", "2"),
        )
    except InvalidCredentials:
        return page.render(
            "login.html",
            status_code=401,
            next=_safe_next(next) or "",
            username=username,
            failed=True,
        )
    response = RedirectResponse(_safe_next(next) or home_of(staff), status_code=303)
    renew_csrf(page.request, response, page.settings)
    response.set_cookie(
        SESSION_COOKIE,
        token.token,
        max_age=max(0, int((token.expires_at - datetime.now(UTC)).total_seconds())),
        httponly=True,
        samesite="lax",
        secure=is_https(page.request),
        path="/console",
    )
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep, settings: SettingsDep) -> RedirectResponse:
    """Signs out everywhere: the token in the cookie, and every other this account
    holds, stop working now."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        try:
            caller = caller_for_token(session, settings, token)
        except Unauthenticated:
            caller = None
        if caller is not None and caller.staff is not None:
            staff_sign_out(session, caller.staff)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/console", secure=is_https(request))
    return response


@router.post("/language")
def choose_language(
    request: Request,
    locale: Annotated[str, Form(pattern="^(zh_CN|en)$")],
    next: Annotated[str, Form(max_length=2000)] = "",
) -> RedirectResponse:
    assert locale in LOCALES
    response = RedirectResponse(_safe_next(next) or "/console/", status_code=303)
    response.set_cookie(
        LANG_COOKIE,
        locale,
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
        path="/console",
    )
    return response


def sign_in_redirect(request: Request, error: SignInRequired) -> Response:
    target = "/console/login?next=" + quote(error.next_url, safe="")
    if request.headers.get("hx-request"):
        return Response(status_code=200, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)
