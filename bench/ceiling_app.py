"""The framework's ceiling: a trivial ``async def`` FastAPI POST of a report-shaped body.

The same body model as ``POST /v1/reports`` (validated the same way), served by the same
uvicorn options as ``sentinel serve`` (``bench/intake.py`` starts it), answering 201 with
a small JSON body and doing nothing else: what one worker of this venv can do at most.
"""

from fastapi import FastAPI

from app.schemas.reports import ReportCreate

app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})


@app.post("/v1/reports", status_code=201)
async def create_report(body: ReportCreate) -> dict[str, object]:
    return {"category": body.category, "lat": body.lat, "lon": body.lon}
