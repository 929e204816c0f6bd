from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from app.deps import SessionDep, SettingsDep
from app.schemas.common import ProblemRead
from app.schemas.staff import AccessToken
from app.services.staff import authenticate

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post(
    "/token",
    response_model=AccessToken,
    summary="Staff login (OAuth2 password form): a bearer token",
    responses={401: {"model": ProblemRead}},
)
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> AccessToken:
    staff, token = authenticate(
        session, username=form.username, password=form.password, settings=settings
    )
    return AccessToken(
        access_token=token.token,
        expires_at=token.expires_at,
        role=staff.role,
        area=staff.area.code if staff.area else None,
    )
