from typing import Annotated

from fastapi import APIRouter, Form, Request

from app.deps import ClockDep, SessionDep, SettingsDep
from app.schemas.common import problems
from app.schemas.staff import AccessToken
from app.services.staff import authenticate

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post(
    "/token",
    response_model=AccessToken,
    summary="Staff login (OAuth2 password form): a bearer token",
    responses=problems(401, 429, 503),
)
def login(
    request: Request,
    username: Annotated[str, Form(min_length=3, max_length=64, examples=["admin"])],
    password: Annotated[str, Form(min_length=1, max_length=1024)],
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
) -> AccessToken:
    # The OAuth2 password grant's form (grant_type, if sent, is "password"), with the
    # lengths a staff username and password can have.
    staff, token = authenticate(
        session,
        username=username,
        password=password,
        settings=settings,
        client=request.client.host if request.client else None,
        now=clock(),
    )
    return AccessToken(
        access_token=token.token,
        expires_at=token.expires_at,
        role=staff.role,
        area=staff.area.code if staff.area else None,
    )
