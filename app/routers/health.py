from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import migrate
from app.deps import get_database
from app.errors import PROBLEM_JSON, problem

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable and its schema is at head",
            responses={503: {"description": "not ready"}})
def readyz(request: Request) -> Response:
    database = get_database(request)
    head = migrate.head_revision()
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = migrate.current_revision(database.engine)
    except SQLAlchemyError:
        return JSONResponse(problem(status=503, code="database_unreachable",
                                    detail="the database does not answer"),
                            status_code=503, media_type=PROBLEM_JSON)
    if current != head:
        return JSONResponse(problem(status=503, code="schema_not_at_head",
                                    detail=f"schema at {current}, code expects {head}: "
                                           "run `sentinel db upgrade`"),
                            status_code=503, media_type=PROBLEM_JSON)
    return JSONResponse({"status": "ready", "schema": current,
                         "database": database.engine.dialect.name})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)
