"""Two API machines, one photo store: a photo uploaded through one ``sentinel serve`` is
served by another that has never seen it, because both keep photos in the same bucket of
the S3-compatible server (docs/operations.md, "Scaling out")."""

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from app.config import Settings
from tests.apps import request
from tests.conftest import Auth
from tests.e2e.processes import serving

pytestmark = pytest.mark.processes


@pytest.fixture
def media_backend(photo_bucket: dict[str, Any]) -> dict[str, Any]:
    return photo_bucket


@pytest.fixture
def two_machines(settings: Settings, baseline: object, tmp_path: Path) -> Iterator[list[str]]:
    # Each in a directory of its own: nothing on one machine's disk helps the other.
    workdirs = [tmp_path / f"machine-{n}" for n in range(2)]
    for workdir in workdirs:
        workdir.mkdir()
    with serving(settings, workdirs) as urls:
        yield urls


def test_a_photo_uploaded_through_one_machine_is_served_by_the_other(
    two_machines: list[str], auth: Auth
) -> None:
    first, second = two_machines
    rider = auth.rider("meituan", "two-machines")
    buffer = io.BytesIO()
    Image.effect_noise((800, 600), 50).convert("RGB").save(buffer, "JPEG", quality=90)

    uploaded = request(
        "POST",
        f"{first}/v1/media",
        headers=rider,
        files={"file": ("p.jpg", buffer.getvalue(), "image/jpeg")},
    )
    assert uploaded.status_code == 201, uploaded.text
    media = uploaded.json()
    from_first = request("GET", f"{first}/v1/media/{media['id']}", headers=rider)
    from_second = request("GET", f"{second}/v1/media/{media['id']}", headers=rider)
    thumbnail = request("GET", f"{second}/v1/media/{media['id']}/thumbnail", headers=rider)

    assert from_first.status_code == from_second.status_code == thumbnail.status_code == 200
    assert from_second.content == from_first.content
    assert len(from_second.content) == media["bytes"]
    with Image.open(io.BytesIO(thumbnail.content)) as image:
        assert image.size == (320, 240)
    # Nobody else gets it from either machine.
    stranger = auth.rider("eleme", "two-machines")
    assert request("GET", f"{second}/v1/media/{media['id']}", headers=stranger).status_code == 404
