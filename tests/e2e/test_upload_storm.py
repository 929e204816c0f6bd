"""A rider cannot stall the service with photos (docs/security.md, API4).

Measured on a real ``sentinel serve``: one rider sends 48 large photos at once — PNGs of
6,400 × 6,200 single-colour pixels, some 130 KB each and nearly two seconds of decoding
and re-encoding apiece — while a clerk works the queue and another rider sends a photo
of their own. The clerk's queue stays fast, the other rider's photo goes through at
once, and every upload the service does not take now is answered at once with when to
try again.
"""

import io
import statistics
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import httpx
import pytest
from PIL import Image

from app.config import Settings
from tests.apps import http_client
from tests.conftest import Auth
from tests.e2e.processes import ServerProcess

# Timed: no other test beside it in a parallel run.
pytestmark = [pytest.mark.processes, pytest.mark.measured]

STORM = 48
QUEUE_READS = 150


@cache
def _large_png() -> bytes:
    """6,400 × 6,200 pixels of one colour: small to send, heavy to decode."""
    buffer = io.BytesIO()
    Image.new("RGB", (6400, 6200), (200, 30, 40)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def large_png(n: int) -> bytes:
    """The large PNG with a text chunk of its own: other bytes, the same work."""
    png = _large_png()
    body = b"tEXt" + b"Comment\x00" + f"photo {n}".encode()
    chunk = (
        struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    )
    end_of_header = 8 + 25  # the signature, then IHDR (length, type, 13 bytes, CRC)
    return png[:end_of_header] + chunk + png[end_of_header:]


def small_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((640, 480), 40).convert("RGB").save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


@pytest.fixture
def server(settings: Settings, baseline: object, tmp_path: Path) -> Iterator[ServerProcess]:
    served = ServerProcess(settings, tmp_path).start()
    try:
        yield served
    finally:
        served.stop()


def _upload(url: str, headers: dict[str, str], content: bytes) -> httpx.Response:
    with http_client(url, timeout=120) as http:
        return http.post(
            "/v1/media", headers=headers, files={"file": ("photo.png", content, "image/png")}
        )


def test_a_rider_uploading_48_large_photos_at_once_stalls_nobody(
    server: ServerProcess, auth: Auth
) -> None:
    storming = auth.rider("meituan", "storm")
    other = auth.rider("eleme", "bystander")
    clerk = auth.staff("officer_310105002")
    photos = [large_png(n) for n in range(STORM)]
    with http_client(server.url, timeout=30) as http:
        assert http.get("/v1/office/tickets", headers=clerk).status_code == 200

        answers: list[httpx.Response] = []
        storm = [
            threading.Thread(
                target=lambda p=p: answers.append(_upload(server.url, storming, p)), daemon=True
            )
            for p in photos
        ]
        for thread in storm:
            thread.start()
        time.sleep(0.5)  # the uploads are in

        bystander: list[tuple[httpx.Response, float]] = []

        def send_the_bystanders_photo() -> None:
            started = time.perf_counter()
            sent = _upload(server.url, other, small_jpeg())
            bystander.append((sent, time.perf_counter() - started))

        elsewhere = threading.Thread(target=send_the_bystanders_photo, daemon=True)
        elsewhere.start()
        queue: list[float] = []
        for _ in range(QUEUE_READS):
            started = time.perf_counter()
            response = http.get("/v1/office/tickets", headers=clerk)
            queue.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
            time.sleep(0.02)

        elsewhere.join(timeout=120)
        for thread in storm:
            thread.join(timeout=120)

    p99 = statistics.quantiles(queue, n=100)[98]
    assert p99 < 0.3, f"the queue's p99 was {p99 * 1000:.0f} ms during the storm"
    ((sent, took),) = bystander
    assert sent.status_code == 201, sent.text
    assert took < 1.5, f"another rider's photo took {took:.1f} s"

    assert len(answers) == STORM
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {201, 429, 503}, statuses
    assert 201 in statuses
    for answer in answers:
        if answer.status_code != 201:
            assert answer.headers["content-type"] == "application/problem+json"
            assert int(answer.headers["retry-after"]) >= 1
            assert answer.json()["code"] in ("upload_rate_limited", "photos_busy")
