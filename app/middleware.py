"""Request id, one JSON access-log line per request, and Prometheus metrics.

A plain ASGI middleware: no body buffering, and nothing on the path but a timer.
"""

import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PROBLEM_JSON, PayloadTooLarge, problem
from app.log import AccessLog

logger = logging.getLogger("sentinel.app")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Methods are labels as they are; any other a client invents is one label.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "sentinel_http_requests_total",
            "HTTP requests handled",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sentinel_http_request_duration_seconds",
            "Time to the end of the response",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        # The series of each (method, route, status), found once: a label lookup costs as
        # much as the counting.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def count(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        series[0].inc()
        series[1].observe(seconds)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = AccessLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next(
            (value for name, value in scope["headers"] if name == b"x-request-id"), b""
        ).decode("latin-1")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [
                    *_no_host_in_location(scope, message.get("headers", [])),
                    (b"x-request-id", request_id.encode()),
                    # No answer is to be sniffed into another type than it says.
                    (b"x-content-type-options", b"nosniff"),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Rendered here rather than by an exception handler, so that even this
            # response carries its request id. The trace goes to the log, never out.
            logger.exception(
                "unhandled error",
                extra={
                    "fields": {
                        "request_id": request_id,
                        "path": _loggable_path(
                            scope, getattr(scope.get("route"), "path", "unmatched")
                        ),
                    }
                },
            )
            if response_started:
                raise
            await JSONResponse(
                problem(
                    status=500,
                    code="internal_error",
                    detail="something went wrong on our side; quote the X-Request-ID header",
                ),
                status_code=500,
                media_type=PROBLEM_JSON,
            )(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self.metrics.count(method, route, status, elapsed)
            if self.access_log.enabled():
                self.access_log.write(
                    {
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": _loggable_path(scope, route),
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "client": (scope.get("client") or ("", 0))[0],
                    }
                )


def _no_host_in_location(
    scope: Scope, headers: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """The response's headers with a ``Location`` that starts with the request's own
    ``scheme://Host`` (Starlette's redirect from ``/path/`` to ``/path`` writes one) made
    relative, as RFC 9110 allows: no answer echoes the Host header, the client's word,
    which a shared cache would keep for every client (``Host: evil.example``)."""
    host = next((value for name, value in scope["headers"] if name == b"host"), b"")
    if not host:
        return headers
    origin = f"{scope.get('scheme', 'http')}://".encode() + host
    return [
        (name, value[len(origin) :] or b"/")
        if name.lower() == b"location"
        and value.startswith(origin)
        and value[len(origin) : len(origin) + 1] in (b"", b"/", b"?")
        else (name, value)
        for name, value in headers
    ]


# Path parameters that identify a person: a path holding one is logged as its route
# (``/v1/platform/riders/{rider_id}``), so that no log keeps a rider's platform id; so is
# any path below the riders' prefix that matched no route (a typo, a trailing slash).
PERSONAL_PATH_PARAMS = frozenset({"rider_id"})
PERSONAL_PREFIX = "/v1/platform/riders/"


def _loggable_path(scope: Scope, route: str) -> str:
    path = str(scope["path"])
    if not PERSONAL_PATH_PARAMS.isdisjoint(scope.get("path_params") or ()):
        return route
    if path.startswith(PERSONAL_PREFIX) and path != PERSONAL_PREFIX + "stats":
        return route if route != "unmatched" else PERSONAL_PREFIX + "…"
    return path


class BodyLimitMiddleware:
    """Refuse request bodies over a limit (per path prefix) without reading them whole.

    A declared Content-Length over the limit is answered at once; a chunked body is
    counted as it streams in and cut off at the limit.
    """

    def __init__(self, app: ASGIApp, default: int, limits: dict[str, int]) -> None:
        self.app = app
        self.default = default
        self.limits = sorted(limits.items(), key=lambda item: -len(item[0]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = next(
            (n for prefix, n in self.limits if scope["path"].startswith(prefix)), self.default
        )
        declared = next(
            (value for name, value in scope["headers"] if name == b"content-length"), None
        )
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await JSONResponse(
                _too_large(limit).to_problem(), status_code=413, media_type=PROBLEM_JSON
            )(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException, because FastAPI passes those through untouched
                    # while it reads a body (it turns anything else into a 400).
                    raise HTTPException(413, _too_large(limit).detail)
            return message

        await self.app(scope, counting_receive, send)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the body may be at most {limit} bytes")
