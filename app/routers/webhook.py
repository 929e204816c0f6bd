"""A platform's webhook: where its events go, and what happened to them."""

from fastapi import APIRouter, Response, status

from app import platforms
from app.deps import CurrentPlatform, PageParams, SessionDep, SettingsDep
from app.schemas.common import Page, problems
from app.schemas.webhooks import DeliveryRead, WebhookCreated, WebhookPut, WebhookRead

router = APIRouter(prefix="/v1/platform/webhook", tags=["platform"], responses=problems(401, 403))


@router.put(
    "",
    response_model=WebhookCreated,
    summary="Send this platform's events to a URL, signed with a new secret",
    responses=problems(422),
)
def put_webhook(
    body: WebhookPut, platform: CurrentPlatform, session: SessionDep, settings: SettingsDep
) -> WebhookCreated:
    webhook, secret = platforms.set_webhook(
        session, platform=platform, url=body.url, settings=settings
    )
    return WebhookCreated(url=webhook.url, secret=secret)


@router.get(
    "",
    response_model=WebhookRead,
    summary="Where this platform's events go",
    responses=problems(404),
)
def read_webhook(platform: CurrentPlatform, session: SessionDep) -> WebhookRead:
    return WebhookRead(url=platforms.get_webhook(session, platform).url)


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Stop sending events (204 also when there was no webhook)",
)
def delete_webhook(platform: CurrentPlatform, session: SessionDep) -> Response:
    platforms.delete_webhook(session, platform)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/deliveries",
    response_model=Page[DeliveryRead],
    summary="Attempts to deliver this platform's events, newest first",
)
def list_deliveries(
    platform: CurrentPlatform, session: SessionDep, page_request: PageParams
) -> Page[DeliveryRead]:
    page = platforms.page_deliveries(session, platform=platform, page=page_request)
    return Page[DeliveryRead].of(page, lambda row: DeliveryRead.of(row, row.delivery))
