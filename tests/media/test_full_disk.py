"""A full photo store: the upload is a clear 507 problem to retry later, and nothing of it
stays behind — no row, no file. The store is a real, tiny tmpfs."""

import io
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import Auth
from tests.helpers import assert_problem
from tests.reporting import CountRows


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    store = tmp_path / "tiny"
    store.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(store)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield store
    finally:
        subprocess.run(["umount", str(store)], check=False)


def noise(size: int) -> bytes:
    rng = random.Random(7)
    image = Image.frombytes(
        "RGB", (size, size), bytes(rng.randrange(256) for _ in range(size * size * 3))
    )
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_a_full_photo_store_is_a_507_that_leaves_nothing(
    app: FastAPI, client: TestClient, auth: Auth, count_rows: CountRows, full_disk: Path
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"media_url": str(full_disk)})
    rider = auth.rider("meituan", "disk-1")
    before = count_rows("media")
    response = client.post(
        "/v1/media", headers=rider, files={"file": ("big.png", noise(400), "image/png")}
    )
    assert_problem(response, 507, "storage_full")
    assert response.headers["Retry-After"] == "60"
    assert count_rows("media") == before
    left = [p for p in full_disk.rglob("*") if p.is_file()]
    assert left == [], left
    # A small photo still fits afterwards: nothing of the refused one holds space.
    small = client.post(
        "/v1/media", headers=rider, files={"file": ("small.png", noise(8), "image/png")}
    )
    assert small.status_code == 201, small.text
