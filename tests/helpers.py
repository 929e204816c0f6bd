"""Assertions shared by the API tests."""

from typing import Any

from httpx import Response


def assert_problem(response: Response, status: int, code: str) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with this status and stable ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code
    assert body["type"] and body["title"] and body["detail"]
    return body
