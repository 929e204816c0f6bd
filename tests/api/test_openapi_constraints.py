"""The OpenAPI schema says what the API takes, so that generated clients and fuzzers
send valid requests: the patterns, lengths and formats the operations enforce."""

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Auth
from tests.helpers import assert_problem


def parameters(schema: dict[str, Any], path: str, method: str) -> dict[str, dict[str, Any]]:
    found = {}
    for p in schema["paths"][path][method]["parameters"]:
        declared = p["schema"]
        # Optional parameters are anyOf [the type, null]: the type's constraints.
        outer = {k: v for k, v in declared.items() if k != "anyOf"}
        for option in declared.get("anyOf", [declared]):
            if option.get("type") != "null":
                found[p["name"]] = {
                    **outer,
                    **option,
                    **{k: v for k, v in p.items() if k != "schema"},
                }
    return found


def test_the_queues_filters_and_cursors_state_their_patterns(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path in ("/v1/office/tickets", "/v1/office/tickets.csv"):
        declared = parameters(schema, path, "get")
        assert declared["street"]["pattern"] == declared["community"]["pattern"]
        assert declared["bbox"]["pattern"] and declared["created_from"]["format"] == "date-time"
    for path in ("/v1/office/tickets", "/v1/reports", "/v1/platform/webhook/deliveries"):
        assert parameters(schema, path, "get")["cursor"]["pattern"]


def test_sign_in_route_and_webhook_state_what_they_take(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    form = schema["paths"]["/v1/auth/token"]["post"]["requestBody"]["content"]
    login = components[
        form["application/x-www-form-urlencoded"]["schema"]["$ref"].rsplit("/", 1)[1]
    ]["properties"]
    assert login["username"]["maxLength"] == 64 and login["password"]["maxLength"] == 1024
    assert components["WebhookPut"]["properties"]["url"]["format"] == "uri"
    route = parameters(schema, "/v1/areas/route", "get")
    assert route["lat"]["examples"] and route["lon"]["examples"]


def test_what_the_patterns_refuse_is_a_validation_error(client: TestClient, auth: Auth) -> None:
    officer = auth.staff("officer_310105002")
    for params in ({"bbox": "1,2,3"}, {"street": "江苏路"}, {"cursor": "not a cursor!"}):
        assert_problem(
            client.get("/v1/office/tickets", headers=officer, params=params),
            422,
            "validation_error",
        )
    assert_problem(
        client.post("/v1/auth/token", data={"username": "a" * 65, "password": "x"}),
        422,
        "validation_error",
    )
    assert_problem(
        client.post(
            "/v1/auth/token",
            data={"username": "admin", "password": "x", "grant_type": "client_credentials"},
        ),
        422,
        "validation_error",
    )
