"""Operations: liveness, readiness and metrics.

``/healthz`` and whether ``/readyz`` is ready are anyone's; the metrics and the details
of readiness are the operator's: a caller with ``SENTINEL_OPS_TOKEN`` as its bearer token,
or, when none is set, a caller on this machine's loopback.
"""

import hmac
import ipaddress

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.deps import get_database
from app.errors import PROBLEM_JSON, Forbidden, Unauthenticated, problem
from app.ops import readiness

router = APIRouter(tags=["operations"])


def _loopback(request: Request) -> bool:
    try:
        return request.client is not None and ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


def is_operator(request: Request) -> bool:
    token = request.app.state.settings.ops_token
    if not token:
        return _loopback(request)
    sent = request.headers.get("authorization", "")
    scheme, _, value = sent.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.encode()
    )


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable and its schema is at head (details for the operator)",
    responses={503: {"description": "not ready"}},
)
def readyz(request: Request) -> Response:
    ready = readiness(get_database(request), now=request.app.state.clock())
    operator = is_operator(request)
    if not ready.ready:
        assert ready.code is not None
        body = (
            problem(status=503, code=ready.code, detail=ready.detail)
            if operator
            else problem(status=503, code="not_ready", detail="not ready")
        )
        return JSONResponse(body, status_code=503, media_type=PROBLEM_JSON)
    if not operator:
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {
            "status": "ready",
            "schema": ready.schema,
            "database": ready.database,
            "warnings": list(ready.warnings),
        }
    )


@router.get("/metrics", summary="Prometheus metrics (the operator's)", response_class=Response)
def metrics(request: Request) -> Response:
    if not is_operator(request):
        if request.app.state.settings.ops_token:
            raise Unauthenticated("send Authorization: Bearer <SENTINEL_OPS_TOKEN>")
        raise Forbidden("metrics are served on the loopback, or with SENTINEL_OPS_TOKEN set")
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
