"""The absolute URLs the service writes (Open311's discovery, media_url and next-page
Link, a trailing-slash redirect) never echo a request's Host header: behind a shared
cache that would poison what every client gets. SENTINEL_PUBLIC_URL starts them all;
without it they are relative, or built from a Host among SENTINEL_TRUSTED_HOSTS."""

import io
import re
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import ValidationError

from app.config import Environment, Settings
from tests.conftest import Auth
from tests.helpers import HUAYANG, JIANGSU, report_at

BASE = "/open311/v2"
EVIL = "evil.example"
PUBLIC = "https://sentinel.example.gov"
NEXT = re.compile(r'^<([^>]+)>; rel="next"$')


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (40, 200, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def _open_data(client: TestClient, auth: Auth) -> str:
    """Two accepted tickets (a next page at page_size=1), the first with a published
    photo: its id."""
    rider = auth.rider("meituan", "host-1")
    photo = client.post(
        "/v1/media", headers=rider, files={"file": ("p.png", _png(), "image/png")}
    ).json()["id"]
    a = report_at(client, rider, JIANGSU, category="waste", media_ids=[photo])["ticket"]["id"]
    b = report_at(client, rider, HUAYANG, category="road_damage")["ticket"]["id"]
    for ticket_id in (a, b):
        accepted = client.post(
            f"/v1/office/tickets/{ticket_id}/actions",
            headers=auth.staff("changning"),
            json={"action": "accept"},
        )
        assert accepted.status_code == 200, accepted.text
    published = client.put(
        f"/v1/office/media/{photo}/public",
        headers=auth.staff("officer_310105002"),
        json={"boxes": []},
    )
    assert published.status_code == 200, published.text
    return str(a)


def _answers(client: TestClient, ticket_id: str, host: str) -> dict[str, httpx.Response]:
    """Every Open311 GET that writes a URL, in both formats, asked with ``Host: host``."""
    answers = {}
    for fmt in ("json", "xml"):
        for path, params in (
            (f"{BASE}/discovery.{fmt}", {}),
            (f"{BASE}/requests.{fmt}", {"page_size": "1"}),
            (f"{BASE}/requests/{ticket_id}.{fmt}", {}),
        ):
            response = client.get(path, params=params, headers={"Host": host})
            assert response.status_code == 200, (path, response.text)
            answers[path] = response
    return answers


def _urls(answers: dict[str, httpx.Response], ticket_id: str) -> dict[str, str]:
    """The URLs the JSON answers wrote: the endpoint's, the next page's, the photo's."""
    discovery = answers[f"{BASE}/discovery.json"].json()
    listed = answers[f"{BASE}/requests.json"]
    following = NEXT.match(listed.headers["link"])
    assert following, listed.headers["link"]
    (one,) = answers[f"{BASE}/requests/{ticket_id}.json"].json()
    return {
        "endpoint": discovery["endpoints"][0]["url"],
        "next": following[1],
        "media": one["media_url"],
    }


def _slash_redirect(client: TestClient, host: str) -> str:
    response = client.get(f"{BASE}/discovery.json/", headers={"Host": host}, follow_redirects=False)
    assert response.status_code == 307
    return str(response.headers["location"])


def _anywhere(response: httpx.Response) -> str:
    return response.text + "".join(f"{k}: {v}\n" for k, v in response.headers.multi_items())


def test_a_forged_host_is_written_nowhere(client: TestClient, auth: Auth) -> None:
    ticket_id = _open_data(client, auth)
    answers = _answers(client, ticket_id, EVIL)
    for path, response in answers.items():
        assert EVIL not in _anywhere(response), path
    assert EVIL not in _slash_redirect(client, EVIL)

    # Relative instead: each still leads where it should.
    urls = _urls(answers, ticket_id)
    assert urls["endpoint"] == BASE
    assert urls["next"].startswith(f"{BASE}/requests.json?")
    assert urls["media"].startswith(f"{BASE}/media/")
    assert _slash_redirect(client, EVIL) == f"{BASE}/discovery.json"
    second = client.get(urls["next"])
    assert second.status_code == 200 and len(second.json()) == 1
    photo = client.get(urls["media"])
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    tree = ET.fromstring(answers[f"{BASE}/discovery.xml"].content)
    assert tree.findtext("endpoints/endpoint/url") == BASE


def test_the_public_url_starts_every_absolute_url(
    client: TestClient, auth: Auth, app: FastAPI
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"public_url": PUBLIC})
    ticket_id = _open_data(client, auth)
    for host in (EVIL, "testserver", "127.0.0.1"):
        answers = _answers(client, ticket_id, host)
        for path, response in answers.items():
            assert EVIL not in _anywhere(response), path
        urls = _urls(answers, ticket_id)
        assert urls["endpoint"] == f"{PUBLIC}{BASE}"
        assert urls["next"].startswith(f"{PUBLIC}{BASE}/requests.json?")
        assert urls["media"].startswith(f"{PUBLIC}{BASE}/media/")
        tree = ET.fromstring(answers[f"{BASE}/discovery.xml"].content)
        assert tree.findtext("endpoints/endpoint/url") == f"{PUBLIC}{BASE}"
        items = ET.fromstring(answers[f"{BASE}/requests/{ticket_id}.xml"].content)
        assert items.findtext("request/media_url") == urls["media"]
        assert EVIL not in _slash_redirect(client, host)
    # The next page and the photo are there, at the same paths.
    assert client.get(httpx.URL(urls["next"]).raw_path.decode()).status_code == 200
    photo = client.get(httpx.URL(urls["media"]).raw_path.decode())
    assert photo.status_code == 200


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", f"http://127.0.0.1{BASE}"),
        ("LocalHost", f"http://LocalHost{BASE}"),
        ("127.0.0.1:80", f"http://127.0.0.1:80{BASE}"),  # the port the server has
        ("127.0.0.1:6666", BASE),  # another port: a Host the server is not
        ("localhost.evil.example", BASE),
        ("testserver", BASE),
        ("127.0.0.1@evil.example", BASE),
        ("127.0.0.1/evil.example", BASE),
        ("", BASE),
    ],
)
def test_without_a_public_url_only_a_trusted_host_makes_absolute_urls(
    client: TestClient, host: str, expected: str
) -> None:
    body = client.get(f"{BASE}/discovery.json", headers={"Host": host}).json()
    assert body["endpoints"][0]["url"] == expected


def test_the_trusted_hosts_are_a_setting(client: TestClient, app: FastAPI) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"trusted_hosts": " Sentinel.Internal , 10.0.0.5"}
    )
    url = client.get(f"{BASE}/discovery.json", headers={"Host": "sentinel.internal"}).json()
    assert url["endpoints"][0]["url"] == f"http://sentinel.internal{BASE}"
    url = client.get(f"{BASE}/discovery.json", headers={"Host": "127.0.0.1"}).json()
    assert url["endpoints"][0]["url"] == BASE


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, env=Environment.DEVELOPMENT, **values)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://sentinel.changning.gov.cn", "https://sentinel.changning.gov.cn"),
        ("https://sentinel.changning.gov.cn/", "https://sentinel.changning.gov.cn"),
        ("http://gov.example:8080/sentinel/", "http://gov.example:8080/sentinel"),
        ("", None),
        (None, None),
    ],
)
def test_the_public_url_is_read_without_its_trailing_slash(given: str | None, kept: str) -> None:
    assert _settings(public_url=given).public_url == kept


@pytest.mark.parametrize(
    "bad",
    [
        "sentinel.changning.gov.cn",
        "ftp://sentinel.example.gov",
        "https://",
        "https://sentinel.example.gov/?x=1",
        "https://sentinel.example.gov/#top",
        "https://user@sentinel.example.gov",
        "https://sentinel.example.gov:notaport",
    ],
)
def test_a_public_url_that_is_not_one_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="public_url"):
        _settings(public_url=bad)
