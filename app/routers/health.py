from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.deps import get_database
from app.errors import PROBLEM_JSON, problem
from app.services.health import readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable and its schema is at head",
    responses={503: {"description": "not ready"}},
)
def readyz(request: Request) -> Response:
    ready = readiness(get_database(request))
    if not ready.ready:
        assert ready.code is not None
        return JSONResponse(
            problem(status=503, code=ready.code, detail=ready.detail),
            status_code=503,
            media_type=PROBLEM_JSON,
        )
    return JSONResponse({"status": "ready", "schema": ready.schema, "database": ready.database})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
