from fastapi import APIRouter, Header, Response

from app.categories import entity_tag, list_categories
from app.deps import SessionDep
from app.schemas.categories import CategoryRead
from app.schemas.common import Page

router = APIRouter(prefix="/v1", tags=["categories"])


def none_match(if_none_match: str, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag``: a weak comparison (RFC 9110 13.1.2), since
    proxies that compress a response mark its tag weak (``W/"…"``), and ``*`` names any."""
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


@router.get(
    "/categories",
    response_model=Page[CategoryRead],
    summary="The categories riders can report (public)",
    responses={304: {"description": "unchanged since the ETag sent in If-None-Match"}},
)
def get_categories(
    session: SessionDep, response: Response, if_none_match: str | None = Header(default=None)
) -> Response | Page[CategoryRead]:
    page = Page[CategoryRead](items=[CategoryRead.of(c) for c in list_categories(session)])
    etag = entity_tag(page.model_dump(mode="json"))
    headers = {"ETag": etag, "Cache-Control": "public, max-age=60"}
    if if_none_match is not None and none_match(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return page
