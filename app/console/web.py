"""What every console page shares: the router its route is on (whose routes pass the
gate, ``app.console.gate``), the templates, CSRF tokens, the language of the request,
and ``Page``, which draws it."""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.config import Settings
from app.console.gate import SAFE_METHODS, SESSION_COOKIE, ConsoleRoute
from app.console.i18n import Formats, negotiate, translator
from app.console.labels import (
    ACTORS,
    ALERT_KINDS,
    ALERT_OUTCOMES,
    ALERT_STATUSES,
    EVENTS,
    HIDE_REASONS,
)
from app.deps import SettingsDep
from app.models import CLOSING_OUTCOMES, Priority, Staff

HERE = Path(__file__).parent
CSRF_COOKIE = "sentinel_csrf"
LANG_COOKIE = "sentinel_lang"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.globals.update(
    priorities=[p.value for p in Priority],
    event_labels=EVENTS,
    actor_labels=ACTORS,
    alert_kinds=ALERT_KINDS,
    alert_statuses=ALERT_STATUSES,
    alert_outcomes=ALERT_OUTCOMES,
    closing_outcomes=[o.value for o in CLOSING_OUTCOMES],
    hide_reason_labels=HIDE_REASONS,
)


class CsrfRefused(Exception):
    """A request that changes something did not prove it came from a console page."""


def locale_of(request: Request) -> str:
    return negotiate(request.headers.get("accept-language"), request.cookies.get(LANG_COOKIE))


def is_https(request: Request) -> bool:
    """Whether the console's cookies are Secure: as the setting says, else whether the
    request came over https (behind a proxy, as uvicorn's proxy headers tell it)."""
    forced = request.app.state.settings.console_secure_cookies
    return bool(forced) if forced is not None else request.url.scheme == "https"


# -- CSRF: a random nonce in a cookie of its own (signed, so that only the service makes
# one), and a token made of that nonce and the session cookie, repeated in every form and
# htmx header. A token works only beside the cookies it was made for: one made without a
# session does not work with one, one made for a session not with another, and signing
# in sets a new nonce, so no token of before it works after.


def _sign(purpose: str, value: str, secret: str) -> str:
    message = f"csrf-{purpose}:{value}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def _nonce(cookie: str | None, secret: str) -> str | None:
    """The nonce of a CSRF cookie the service set; None for any other."""
    if not cookie or "." not in cookie:
        return None
    nonce, _, signature = cookie.partition(".")
    valid = hmac.compare_digest(signature.encode(), _sign("cookie", nonce, secret).encode())
    return nonce if valid else None


def _token(request: Request, nonce: str, secret: str) -> str:
    session = request.cookies.get(SESSION_COOKIE, "")
    return _sign("token", f"{nonce}|{session}", secret)


def _new_nonce(request: Request, secret: str) -> str:
    """A new nonce, whose cookie ``Page.render`` (or the sign-in) sets."""
    nonce = secrets.token_urlsafe(16)
    request.state.new_csrf = f"{nonce}.{_sign('cookie', nonce, secret)}"
    return nonce


def csrf_token(request: Request, settings: Settings) -> str:
    """The token of the request's pages: of its CSRF cookie's nonce (of a new one, which
    ``Page.render`` sets, if it has none) and of its session cookie."""
    secret = settings.secret_key
    nonce = _nonce(
        getattr(request.state, "new_csrf", None) or request.cookies.get(CSRF_COOKIE), secret
    )
    return _token(request, nonce or _new_nonce(request, secret), secret)


def set_csrf_cookie(request: Request, response: Response) -> None:
    """Sets the CSRF cookie this request made, if it made one."""
    new = getattr(request.state, "new_csrf", None)
    if new is not None:
        response.set_cookie(
            CSRF_COOKIE,
            new,
            httponly=True,
            samesite="strict",
            secure=is_https(request),
            path="/console",
        )


def renew_csrf(request: Request, response: Response, settings: Settings) -> None:
    """A new nonce on ``response``: at sign-in, so that no token of before works after."""
    _new_nonce(request, settings.secret_key)
    set_csrf_cookie(request, response)


async def check_csrf(request: Request, settings: Settings) -> None:
    """Refuses a request that changes something unless it comes from this site with the
    token of its cookies (in the form or the X-CSRF-Token header)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise CsrfRefused
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.url.netloc:
        raise CsrfRefused
    nonce = _nonce(request.cookies.get(CSRF_COOKIE), settings.secret_key)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if (
        nonce is None
        or not sent
        or not hmac.compare_digest(
            _token(request, nonce, settings.secret_key).encode(), sent.encode()
        )
    ):
        raise CsrfRefused


# On the router rather than on each route: no form the console adds can go unchecked.
async def _csrf_checked(request: Request, settings: SettingsDep) -> None:
    if request.method not in SAFE_METHODS:
        await check_csrf(request, settings)


def console_router(prefix: str = "/console") -> APIRouter:
    """A router of console pages: HTML unless a route answers otherwise, none of them in
    the API's schema, every request that changes something let in by the gate before its
    body is read, and then checked for CSRF."""
    return APIRouter(
        prefix=prefix,
        include_in_schema=False,
        default_response_class=HTMLResponse,
        dependencies=[Depends(_csrf_checked)],
        route_class=ConsoleRoute,
    )


# -- pages


def query_with(request: Request, **changes: Any) -> str:
    """The request's query string with ``changes`` (None: removed); lists repeat."""
    params: list[tuple[str, str]] = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k not in changes and k != "done"  # a notice is said once, not carried along
    ]
    for key, value in changes.items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        params += [(key, str(v)) for v in values]
    return urlencode(params)


@dataclass(frozen=True, kw_only=True)
class Page:
    """What a console page is drawn with: the request, the settings and, on the pages
    behind the sign-in, who is signed in and the time it is."""

    request: Request
    settings: Settings
    staff: Staff | None = None
    now: datetime | None = None

    def render(self, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
        request, settings = self.request, self.settings
        locale = locale_of(request)
        html = templates.get_template(template).render(
            request=request,
            staff=self.staff,
            locale=locale,
            lang="zh-CN" if locale == "zh_CN" else "en",
            _=translator(locale),
            fmt=Formats(locale),
            now=self.now,
            csrf=csrf_token(request, settings),
            query_with=lambda **changes: query_with(request, **changes),
            **context,
        )
        response = HTMLResponse(html, status_code=status_code)
        set_csrf_cookie(request, response)
        # Pages show what only this clerk may see: no shared cache keeps them, and no
        # other site frames them.
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = content_security_policy(settings)
        return response


# Everything from the service itself; the base map's tiles from where it is configured.
def content_security_policy(settings: Settings) -> str:
    tiles = ""
    if settings.console_tiles_url:
        parts = urlsplit(settings.console_tiles_url.replace("{s}", "*"))
        tiles = f" {parts.scheme}://{parts.netloc}"
    return (
        "default-src 'self'; img-src 'self' data: blob:" + tiles + "; style-src 'self'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
        "base-uri 'self'; object-src 'none'"
    )
