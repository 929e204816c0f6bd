"""The street-office console: server-rendered pages under ``/console/`` for officers,
district users, admins and units' crews, with htmx and Leaflet served from the package
itself."""

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from app.console import (
    admin,
    alerts,
    auth,
    channels,
    moderation,
    pages,
    photos,
    public_site,
    work,
)
from app.console.auth import sign_in_redirect
from app.console.gate import BodyTooLarge, SignInRequired, WrongRole
from app.console.i18n import translator
from app.console.web import CsrfRefused, Page, locale_of
from app.errors import AppError

STATIC = Path(__file__).parent / "static"
PREFIX = "/console"


def is_console(request: Request) -> bool:
    path = request.url.path
    return path == PREFIX or path.startswith(PREFIX + "/")


def error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    """An error as a console page (the API answers problem+json instead)."""
    _ = translator(locale_of(request))
    titles = {
        403: _("Not allowed"),
        404: _("Not found"),
        409: _("Not possible now"),
        413: _("Too large"),
        422: _("Not accepted"),
    }
    page = Page(request=request, settings=request.app.state.settings)
    return page.render(
        "error.html",
        status_code=status_code,
        title=titles.get(status_code, _("Something went wrong")),
        message=message,
    )


def app_error_page(request: Request, error: AppError) -> HTMLResponse:
    _ = translator(locale_of(request))
    messages = {404: _("There is nothing here in your scope.")}
    return error_page(request, error.status, messages.get(error.status, error.detail))


def install(app: FastAPI) -> None:
    for module in (auth, pages, work, photos, moderation, alerts, admin, channels, public_site):
        app.include_router(module.router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="console-static")

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, error: SignInRequired) -> Response:
        return sign_in_redirect(request, error)

    @app.exception_handler(WrongRole)
    async def wrong_role(request: Request, error: WrongRole) -> Response:
        _ = translator(locale_of(request))
        message = _(
            "This page is not for your role. Your pages start at %(home)s.", home=error.home
        )
        return error_page(request, 403, message)

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(request: Request, error: BodyTooLarge) -> Response:
        _ = translator(locale_of(request))
        message = _(
            "The form is too large: the console takes at most %(size)s KB.",
            size=error.limit // 1024,
        )
        return error_page(request, 413, message)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, _error: CsrfRefused) -> Response:
        _ = translator(locale_of(request))
        message = _("The request did not come from a console page. Reload the page and try again.")
        return error_page(request, 403, message)
