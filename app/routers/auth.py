from typing import Annotated

from fastapi import APIRouter, Form, Response

from app import staff as staff_service
from app.deps import ClientAddress, ClockDep, CurrentStaff, SessionDep, SettingsDep
from app.schemas.common import problems
from app.schemas.staff import AccessToken, PasswordChange
from app.staff import authenticate

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post(
    "/token",
    response_model=AccessToken,
    summary="Staff login (OAuth2 password form): a bearer token",
    responses=problems(401, 429, 503),
)
def login(
    client: ClientAddress,
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
        client=client,
        now=clock(),
    )
    return AccessToken.of(staff, token)


@router.post(
    "/password",
    response_model=AccessToken,
    summary="Change my password (staff): every token issued before stops working; a new one",
    responses=problems(401, 422, 429),
)
def change_password(
    client: ClientAddress,
    body: PasswordChange,
    staff: CurrentStaff,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> AccessToken:
    token = staff_service.change_password(
        session,
        staff,
        current=body.current_password,
        new=body.new_password,
        settings=settings,
        client=client,
        now=clock(),
    )
    return AccessToken.of(staff, token)


@router.post(
    "/sign-out",
    status_code=204,
    summary="Sign out everywhere (staff): every token this account holds stops working",
)
def sign_out(staff: CurrentStaff, session: SessionDep) -> Response:
    staff_service.sign_out(session, staff)
    return Response(status_code=204)
