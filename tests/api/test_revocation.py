"""Tokens that stop working at once: sign-out, a new password, a disabled account or
platform; and a platform key rotated with a grace period."""

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import Database
from app.models import Platform, utcnow
from tests.conftest import Auth, Baseline, bearer
from tests.console.conftest import Clerk
from tests.helpers import assert_problem

OFFICER = "officer_310105002"


def me(client: TestClient, headers: dict[str, str]) -> int:
    return client.get("/v1/office/tickets", headers=headers).status_code


def test_signing_out_ends_every_token_of_the_account(client: TestClient, auth: Auth) -> None:
    first, second = auth.staff(OFFICER), auth.staff(OFFICER)
    assert me(client, first) == me(client, second) == 200
    assert client.post("/v1/auth/sign-out", headers=first).status_code == 204
    refused = client.get("/v1/office/tickets", headers=second)
    assert_problem(refused, 401, "unauthenticated")
    assert "revoked" in refused.json()["detail"]
    assert me(client, auth.staff(OFFICER)) == 200  # signing in again works


def test_signing_out_of_the_console_revokes_the_api_tokens_too(
    app: FastAPI, baseline: Baseline, client: TestClient, auth: Auth
) -> None:
    api = auth.staff(OFFICER)
    clerk = Clerk(app, baseline, OFFICER)
    cookie = clerk.http.cookies.get("sentinel_console")
    assert cookie and clerk.post("/console/logout", {}).status_code == 303
    assert me(client, api) == 401
    assert me(client, bearer(cookie)) == 401  # the cookie's token, if it was copied


def test_a_new_password_revokes_the_old_tokens(
    client: TestClient, auth: Auth, baseline: Baseline
) -> None:
    old = auth.staff(OFFICER)
    url = "/v1/auth/password"
    wrong = client.post(url, headers=old, json={"current_password": "no", "new_password": "x" * 12})
    assert_problem(wrong, 401, "invalid_credentials")
    same = baseline.password(OFFICER)
    short = client.post(url, headers=old, json={"current_password": same, "new_password": "short"})
    assert short.status_code == 422
    new_password = "a new password for 江苏路"
    changed = client.post(
        url, headers=old, json={"current_password": same, "new_password": new_password}
    )
    assert changed.status_code == 200, changed.text
    assert me(client, bearer(changed.json()["access_token"])) == 200
    assert me(client, old) == 401
    sign_in = "/v1/auth/token"
    assert client.post(sign_in, data={"username": OFFICER, "password": same}).status_code == 401
    assert (
        client.post(sign_in, data={"username": OFFICER, "password": new_password}).status_code
        == 200
    )


def test_a_disabled_account_is_refused_at_once(
    client: TestClient, auth: Auth, baseline: Baseline
) -> None:
    admin, officer = auth.staff("admin"), auth.staff(OFFICER)
    off = client.patch(f"/v1/admin/staff/{OFFICER}", headers=admin, json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False
    assert me(client, officer) == 401
    sign_in = {"username": OFFICER, "password": baseline.password(OFFICER)}
    assert client.post("/v1/auth/token", data=sign_in).status_code == 401
    client.patch(f"/v1/admin/staff/{OFFICER}", headers=admin, json={"active": True})
    assert me(client, officer) == 401  # what was revoked stays revoked
    assert client.post("/v1/auth/token", data=sign_in).status_code == 200
    assert (
        client.patch("/v1/admin/staff/nobody", headers=admin, json={"active": False}).status_code
        == 404
    )
    assert client.patch(
        f"/v1/admin/staff/{OFFICER}", headers=officer, json={"active": False}
    ).status_code in (401, 403)


def test_a_disabled_platform_loses_its_key_and_its_riders_tokens(
    client: TestClient, auth: Auth
) -> None:
    admin, key = auth.staff("admin"), auth.platform("meituan")
    rider = auth.rider("meituan", "rv-1")
    assert client.get("/v1/me", headers=rider).status_code == 200
    assert (
        client.patch(
            "/v1/admin/platforms/meituan", headers=admin, json={"active": False}
        ).status_code
        == 200
    )
    assert client.get("/v1/platform/summary", headers=key).status_code == 401
    assert client.get("/v1/me", headers=rider).status_code == 401
    assert client.get("/v1/platform/summary", headers=auth.platform("eleme")).status_code == 200
    client.patch("/v1/admin/platforms/meituan", headers=admin, json={"active": True})
    assert client.get("/v1/me", headers=rider).status_code == 200


def test_a_rotated_key_works_on_for_its_grace_period_then_not(
    client: TestClient, auth: Auth, database: Database
) -> None:
    admin, old = auth.staff("admin"), auth.platform("meituan")
    rotated = client.post("/v1/admin/platforms/meituan/api-key?grace_h=24", headers=admin)
    assert rotated.status_code == 200
    new = bearer(rotated.json()["api_key"])
    summary = "/v1/platform/summary"
    assert client.get(summary, headers=old).status_code == 200
    assert client.get(summary, headers=new).status_code == 200
    with database.transaction() as session:  # the grace period runs out
        platform = session.scalar(select(Platform).where(Platform.code == "meituan"))
        assert platform is not None
        platform.previous_key_expires_at = utcnow() - timedelta(seconds=1)
    assert client.get(summary, headers=old).status_code == 401
    assert client.get(summary, headers=new).status_code == 200
    at_once = client.post("/v1/admin/platforms/meituan/api-key", headers=admin).json()["api_key"]
    assert client.get(summary, headers=new).status_code == 401
    assert client.get(summary, headers=bearer(at_once)).status_code == 200
    too_long = client.post("/v1/admin/platforms/meituan/api-key?grace_h=1000", headers=admin)
    assert too_long.status_code == 422
