"""The application: routers, middleware, error handlers, lifespan."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import console, heap
from app.config import Environment, Settings, get_settings
from app.db import Database
from app.errors import PROBLEM_JSON, AppError, DatabaseBusy, problem, validation_problem
from app.intake import IntakeWriter
from app.log import configure_logging
from app.media import configure_decoding
from app.middleware import BodyLimitMiddleware, Metrics, RequestContextMiddleware
from app.models import utcnow
from app.ops import Worker, start_in_thread
from app.routers import (
    admin,
    alerts,
    areas,
    auth,
    categories,
    channels,
    docs,
    health,
    media,
    office,
    office_media,
    office_stats,
    open311,
    platform,
    reports,
    units,
    webhook,
)
from app.schemas.reports import receipt_json
from app.tickets import warm_reference

logger = logging.getLogger("sentinel.app")

JSON_BODY_LIMIT = 1024 * 1024
IMPORT_LIMIT = 64 * 1024 * 1024
MULTIPART_OVERHEAD = 64 * 1024

_HTTP_CODES = {
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=body["status"], headers=headers, media_type=PROBLEM_JSON)


def _is_open311(request: Request) -> bool:
    return request.url.path.startswith(open311.PREFIX + "/")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError) -> Response:
        if _is_open311(request):
            return open311.app_error_response(request, exc)
        if console.is_console(request):
            return console.app_error_page(request, exc)
        return _problem_response(exc.to_problem(), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problem_body = validation_problem(exc.errors())
        if _is_open311(request):
            return open311.error_response(request, 400, problem_body["detail"])
        if console.is_console(request):
            return console.error_page(request, 422, problem_body["detail"])
        return _problem_response(problem_body)

    @app.exception_handler(OperationalError)
    async def database_unavailable(request: Request, exc: OperationalError) -> JSONResponse:
        # The database is down or (SQLite, another process writing for too long) busy:
        # the client may retry; nothing of this request was stored.
        logger.warning(
            "database unavailable",
            extra={
                "fields": {
                    "request_id": getattr(request.state, "request_id", None),
                    "error": str(exc.orig),
                }
            },
        )
        return _problem_response(
            DatabaseBusy("the database is unavailable; retry shortly").to_problem(),
            {"Retry-After": "1"},
        )

    @app.exception_handler(DataError)
    async def unstorable_value(_request: Request, _exc: DataError) -> JSONResponse:
        # A last line behind the schemas: a value the database refuses to hold (a NUL in
        # a path or form field, say) is the client's error, and nothing was stored.
        return _problem_response(
            problem(
                status=422,
                code="invalid_input",
                detail="the request carries a value that cannot be stored (control characters?)",
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        if _is_open311(request):
            return open311.error_response(request, exc.status_code, detail or "")
        if console.is_console(request) and not request.url.path.startswith("/console/static/"):
            return console.error_page(request, exc.status_code, detail or "")
        return _problem_response(
            problem(status=exc.status_code, code=code, detail=detail), dict(exc.headers or {})
        )


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    owns_database = database is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop_worker = (
            start_in_thread(Worker(app.state.database, settings))
            if settings.run_embedded_worker
            else None
        )
        if settings.env is not Environment.TEST:
            await asyncio.to_thread(warm_reference, app.state.database)
            heap.freeze()
        yield
        await app.state.intake.stop()
        if stop_worker is not None:
            stop_worker()
        if owns_database:
            app.state.database.dispose()
        if app.state.read_database is not None:
            app.state.read_database.dispose()

    app = FastAPI(
        title="Flowing Sentinel",
        version="0.1.0",
        summary="Delivery riders report street problems; street offices fix them.",
        lifespan=lifespan,
        # Served from the package by app.routers.docs, not from FastAPI's CDN.
        docs_url=None,
        redoc_url=None,
        # FastAPI's own OpenTelemetry, unless asked for: when no provider is set up it
        # records nothing, but asks on every request whether one is.
        telemetry=None
        if settings.opentelemetry
        else {"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.database = database or Database(settings.database_url, settings.db_pool_size)
    app.state.session_turns = asyncio.Semaphore(
        min(settings.db_requests_at_once, app.state.database.sessions_at_once)
    )
    # The reads that may lag by seconds (app.deps.LaggingReadSession) go to the read
    # replica when there is one.
    app.state.read_database = (
        Database(settings.read_database_url, settings.read_db_pool_size, read_only=True)
        if settings.read_database_url
        else None
    )
    app.state.intake = IntakeWriter(app.state.database, settings, render_receipt=receipt_json)
    app.state.metrics = Metrics()
    app.state.clock = utcnow
    configure_decoding(settings)
    upload_limit = int(settings.max_upload_mb * 1024 * 1024) + MULTIPART_OVERHEAD
    app.add_middleware(
        BodyLimitMiddleware,
        default=JSON_BODY_LIMIT,
        limits={
            "/v1/media": upload_limit,
            "/v1/office/media": upload_limit,
            "/console/work/photos": upload_limit,
            "/v1/admin/areas:import": IMPORT_LIMIT,
            "/console/admin/areas": IMPORT_LIMIT,
        },
    )
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)
    install_error_handlers(app)
    # Reports first: FastAPI tries the routers in order, each costing a look at its
    # routes, and riders' reports are most of the requests.
    for router in (
        reports.router,
        health.router,
        categories.router,
        auth.router,
        media.router,
        office_stats.router,
        office.router,
        office_media.router,
        alerts.office,
        alerts.riders,
        platform.router,
        webhook.router,
        areas.router,
        admin.router,
        units.router,
        channels.router,
        open311.router,
        docs.router,
    ):
        app.include_router(router)
    console.install(app)
    return app
