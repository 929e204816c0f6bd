"""Riders' photos: POST /v1/media, and reading them back (docs/api.md, "Rider API").

Every image is made here with Pillow. What a user would check: the type is judged by the
bytes, the stored file is a clean re-encoding (no EXIF, GPS, XMP or text chunks, the
orientation applied), the same bytes twice are one photo, bad uploads leave no row and no
file, and only the uploader and the staff holding a ticket that uses the photo see it.
"""

import asyncio
import hashlib
import io
import json
import random
import struct
import sys
import uuid
import zlib
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import ExifTags, Image, PngImagePlugin
from starlette.types import Message

from app.config import Settings
from app.db import Database
from app.main import MULTIPART_OVERHEAD, create_app
from app.media import media_store
from app.media.store import blob_key
from tests.asgi import http_scope
from tests.conftest import MEDIA_BACKENDS, Auth, Baseline, either_media_backend
from tests.helpers import assert_problem

Headers = dict[str, str]
CountRows = Callable[[str], int]

STREET_JIANGSU = "310105002"  # 江苏路街道
STREET_HUAYANG = "310105001"  # 华阳路街道
POINT_JIANGSU = {"lat": 31.2200, "lon": 121.4330}
POINT_HUAYANG = {"lat": 31.2220, "lon": 121.4245}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
PILLOW_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
SMALL_CAP_MB = 0.05  # 52 428 bytes
RED = (220, 20, 20)
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
    b'02/22-rdf-syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" '
    b'exif:GPSLatitude="31,13.2N" exif:GPSLongitude="121,25.98E"/></rdf:RDF></x:xmpmeta>'
)


# --- making images ---------------------------------------------------------------------


def picture(size: tuple[int, int] = (640, 480), mode: str = "RGB") -> Image.Image:
    """A photo-like picture: a red block in the top-left quarter on a blue-green ground."""
    width, height = size
    image = Image.new("RGB", size, (30, 120, 160))
    image.paste(RED, (0, 0, width // 2, height // 2))
    return image.convert(mode)


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def noise(size: tuple[int, int], seed: int = 1) -> Image.Image:
    """Random pixels, so that an encoded file is about as large as its raw pixels."""
    width, height = size
    return Image.frombytes("RGB", size, random.Random(seed).randbytes(width * height * 3))


def png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


@cache
def bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit black PNG of width×height, compressed row by row, never held whole."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte "none", then the packed bits
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


# --- uploading and looking at what was stored ------------------------------------------


def upload(
    client: TestClient,
    headers: Headers,
    data: bytes,
    filename: str = "photo.jpg",
    content_type: str = "image/jpeg",
) -> httpx.Response:
    return client.post("/v1/media", headers=headers, files={"file": (filename, data, content_type)})


BOUNDARY = "sentinel-test-boundary-7MA4YWxkTrZu0gW"


def multipart(
    data: bytes,
    *,
    field: str = "file",
    filename: str = "photo.png",
    content_type: str = "image/png",
) -> tuple[bytes, str]:
    """A multipart body with one file part, made by hand; and its Content-Type."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'
    ).encode()
    return (
        head + data + f"\r\n--{BOUNDARY}--\r\n".encode(),
        f"multipart/form-data; boundary={BOUNDARY}",
    )


def stored_keys(settings: Settings) -> list[str]:
    """Every blob in the photo store, temporary files (``.incoming-*``) included."""
    return sorted(stored.key for stored in media_store(settings).blobs())


def stored_key(body: dict[str, Any]) -> str:
    return blob_key(body["sha256"], EXTENSIONS[body["content_type"]])


def stored_bytes(settings: Settings, body: dict[str, Any]) -> bytes:
    content = media_store(settings).read(stored_key(body))
    assert content is not None, f"{stored_key(body)} is not in {media_store(settings).location}"
    return content


def stored_image(settings: Settings, body: dict[str, Any]) -> Image.Image:
    return Image.open(io.BytesIO(stored_bytes(settings, body)))


def assert_no_trace(stored: bytes, *secrets: bytes) -> None:
    """Not one of ``secrets`` (a metadata marker or a value the upload carried) is in
    ``stored``."""
    assert [secret for secret in secrets if secret in stored] == []


def assert_nothing_stored(settings: Settings, count_rows: CountRows, rows_before: int) -> None:
    assert count_rows("media") == rows_before
    assert stored_keys(settings) == []


@pytest.fixture(params=MEDIA_BACKENDS)
def media_backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    return either_media_backend(request)


@pytest.fixture
def rider(auth: Auth) -> Headers:
    return auth.rider("meituan", "r1")


# --- good uploads ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "options"),
    [("image/jpeg", {"quality": 90}), ("image/png", {}), ("image/webp", {"quality": 90})],
)
def test_a_jpeg_png_or_webp_photo_is_stored_re_encoded_with_a_thumbnail(
    client: TestClient,
    rider: Headers,
    settings: Settings,
    count_rows: CountRows,
    content_type: str,
    options: dict[str, Any],
) -> None:
    data = encode(picture((640, 480)), PILLOW_FORMATS[content_type], **options)
    rows_before = count_rows("media")

    response = upload(client, rider, data, f"photo.{EXTENSIONS[content_type]}", content_type)

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "content_type", "width", "height", "bytes", "sha256"}
    assert str(uuid.UUID(body["id"])) == body["id"]
    assert (body["content_type"], body["width"], body["height"]) == (content_type, 640, 480)
    assert count_rows("media") == rows_before + 1
    # Content-addressed: <sha[:2]>/<sha[2:4]>/<sha>.<ext>, and the sha256 is of that file.
    key = stored_key(body)
    sha = body["sha256"]
    assert key == f"{sha[:2]}/{sha[2:4]}/{sha}.{EXTENSIONS[content_type]}"
    stored = stored_bytes(settings, body)
    assert hashlib.sha256(stored).hexdigest() == body["sha256"]
    assert len(stored) == body["bytes"]
    with stored_image(settings, body) as image:
        assert image.format == PILLOW_FORMATS[content_type]
        assert image.size == (640, 480)
        image.load()
        assert image.convert("RGB").getpixel((100, 100)) == pytest.approx(RED, abs=12)
    # The photo and its thumbnail, and nothing else (no .incoming-* left over).
    keys = stored_keys(settings)
    assert len(keys) == 2 and key in keys
    assert not any(k.split("/")[-1].startswith(".") for k in keys)

    photo = client.get(f"/v1/media/{body['id']}", headers=rider)
    assert photo.status_code == 200
    assert photo.headers["content-type"] == content_type
    assert photo.content == stored

    thumb = client.get(f"/v1/media/{body['id']}/thumbnail", headers=rider)
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content in {media_store(settings).read(k) for k in keys if k != key}
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert image.format == "JPEG"
        assert image.size == (320, 240)  # at most 320 px, aspect kept


def test_a_small_photo_keeps_its_size_in_the_thumbnail(client: TestClient, rider: Headers) -> None:
    response = upload(client, rider, encode(picture((200, 120)), "PNG"), "s.png", "image/png")

    assert response.status_code == 201, response.text
    thumb = client.get(f"/v1/media/{response.json()['id']}/thumbnail", headers=rider)
    with Image.open(io.BytesIO(thumb.content)) as image:
        assert (image.format, image.size) == ("JPEG", (200, 120))


@pytest.mark.parametrize(
    ("sent", "declared", "filename"),
    [
        ("image/png", "image/jpeg", "photo.jpg"),
        ("image/jpeg", "application/octet-stream", "photo.bin"),
        ("image/webp", "image/png", "photo.png"),
    ],
)
def test_the_type_is_judged_by_the_bytes_not_by_what_the_client_declares(
    client: TestClient, rider: Headers, settings: Settings, sent: str, declared: str, filename: str
) -> None:
    data = encode(picture((64, 48)), PILLOW_FORMATS[sent])

    response = upload(client, rider, data, filename, declared)

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["content_type"] == sent
    assert stored_key(body).endswith(f".{EXTENSIONS[sent]}")
    with stored_image(settings, body) as image:
        assert image.format == PILLOW_FORMATS[sent]
    served = client.get(f"/v1/media/{body['id']}", headers=rider)
    assert served.headers["content-type"] == sent


def test_a_multi_picture_jpeg_from_a_phone_is_accepted_as_jpeg(
    client: TestClient, rider: Headers, settings: Settings
) -> None:
    # Phones append gain maps or depth maps to JPEGs with an MPF index; Pillow calls that
    # "MPO". It is a JPEG: the first picture is the photo.
    data = encode(
        picture((64, 48)), "MPO", save_all=True, append_images=[Image.new("RGB", (64, 48), "white")]
    )
    assert data[:3] == b"\xff\xd8\xff" and b"MPF\x00" in data

    response = upload(client, rider, data)

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["content_type"], body["width"], body["height"]) == ("image/jpeg", 64, 48)
    with stored_image(settings, body) as image:
        assert image.format == "JPEG"
        assert image.convert("RGB").getpixel((5, 5)) == pytest.approx(RED, abs=12)


def test_a_16_bit_greyscale_png_keeps_its_tones(
    client: TestClient, rider: Headers, settings: Settings
) -> None:
    ramp = Image.new("I;16", (256, 4))
    ramp.putdata([x * 257 for x in range(256)] * 4)  # 0 … 65535, left to right

    response = upload(client, rider, encode(ramp, "PNG"), "ramp.png", "image/png")

    assert response.status_code == 201, response.text
    with stored_image(settings, response.json()) as image:
        grey = image.convert("L")
        assert [grey.getpixel((x, 1)) for x in (0, 64, 128, 255)] == pytest.approx(
            [0, 64, 128, 255], abs=2
        )


# --- the same photo twice --------------------------------------------------------------


def test_the_same_bytes_again_from_the_same_rider_are_the_same_photo(
    client: TestClient, auth: Auth, rider: Headers, settings: Settings, count_rows: CountRows
) -> None:
    data = encode(picture((400, 300)), "JPEG", quality=90)
    rows_before = count_rows("media")

    first = upload(client, rider, data)
    again = upload(client, rider, data, "retry.jpg")

    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert count_rows("media") == rows_before + 1
    assert len(stored_keys(settings)) == 2

    # Other bytes from the same rider are another photo.
    other = upload(client, rider, encode(picture((401, 300)), "JPEG", quality=90))
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert count_rows("media") == rows_before + 2

    # The same bytes from another rider (another platform's rider with the same rider_id,
    # too) are that rider's own photo: another id, the same stored file.
    for someone in (auth.rider("meituan", "r2"), auth.rider("eleme", "r1")):
        theirs = upload(client, someone, data)
        assert theirs.status_code == 201, theirs.text
        assert theirs.json()["id"] != first.json()["id"]
        assert theirs.json()["sha256"] == first.json()["sha256"]
        assert client.get(f"/v1/media/{theirs.json()['id']}", headers=someone).status_code == 200
    assert count_rows("media") == rows_before + 4
    assert len(stored_keys(settings)) == 4  # the first two, and the other photo's


# --- metadata is removed ---------------------------------------------------------------


def test_exif_gps_is_removed_and_the_orientation_applied(
    client: TestClient, rider: Headers, settings: Settings
) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # the camera was turned: rotate 90° clockwise
    exif[ExifTags.Base.Make] = "SentinelTestCam"
    exif[ExifTags.Base.Model] = "RiderPhone-9000"
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(
        {
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: (31.0, 13.0, 12.34),
            ExifTags.GPS.GPSLongitudeRef: "E",
            ExifTags.GPS.GPSLongitude: (121.0, 25.0, 58.76),
        }
    )
    data = encode(
        picture((200, 100)),
        "JPEG",
        quality=95,
        exif=exif,
        xmp=XMP,
        comment=b"shot at 31.2200,121.4330",
    )
    with Image.open(io.BytesIO(data)) as sent:  # the upload really carries all of it
        assert sent.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitudeRef] == "N"
        assert sent.getexif()[ExifTags.Base.Orientation] == 6 and "xmp" in sent.info

    response = upload(client, rider, data)

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (100, 200)  # upright: width and height swapped
    stored = stored_bytes(settings, body)
    assert_no_trace(stored, b"Exif", b"xmpmeta", b"GPSLatitude")  # the metadata's markers
    assert_no_trace(stored, b"SentinelTestCam", b"RiderPhone", b"31.2200")  # and its values
    with Image.open(io.BytesIO(stored)) as image:
        assert len(image.getexif()) == 0
        assert not {"exif", "xmp", "comment", "icc_profile"} & set(image.info)
        assert image.size == (100, 200)
        # The red top-left block of the sensor's picture is top-right once upright.
        upright = image.convert("RGB")
        assert upright.getpixel((75, 25)) == pytest.approx(RED, abs=12)
        assert upright.getpixel((25, 25)) != pytest.approx(RED, abs=40)
        assert upright.getpixel((75, 175)) != pytest.approx(RED, abs=40)
    thumb = client.get(f"/v1/media/{body['id']}/thumbnail", headers=rider).content
    assert_no_trace(thumb, b"Exif", b"SentinelTestCam")


def test_png_text_chunks_exif_and_xmp_are_removed(
    client: TestClient, rider: Headers, settings: Settings
) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "rider home 31.2200,121.4330")
    info.add_text("Author", "Zhang San 13800138000", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SentinelTestCam"
    data = encode(picture((64, 48), "RGBA"), "PNG", pnginfo=info, exif=exif)
    chunks = (b"tEXt", b"zTXt", b"iTXt", b"eXIf")
    for chunk in chunks:
        assert chunk in data

    response = upload(client, rider, data, "shot.png", "image/png")

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["content_type"] == "image/png"
    stored = stored_bytes(settings, body)
    assert_no_trace(stored, *chunks, b"xmpmeta")  # the metadata's markers
    assert_no_trace(stored, b"rider home", b"13800138000", b"SentinelTestCam")  # and its values
    with Image.open(io.BytesIO(stored)) as image:
        assert isinstance(image, PngImagePlugin.PngImageFile)
        assert image.text == {} and len(image.getexif()) == 0
        assert not {"exif", "xmp", "XML:com.adobe.xmp", "Comment"} & set(image.info)


def test_webp_exif_and_xmp_are_removed(
    client: TestClient, rider: Headers, settings: Settings
) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SentinelTestCam"
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(
        {ExifTags.GPS.GPSLatitudeRef: "N", ExifTags.GPS.GPSLatitude: (31.0, 13.0, 12.0)}
    )
    data = encode(picture((64, 48)), "WEBP", quality=90, exif=exif, xmp=XMP)
    assert b"EXIF" in data and b"XMP " in data

    response = upload(client, rider, data, "shot.webp", "image/webp")

    assert response.status_code == 201, response.text
    stored = stored_bytes(settings, response.json())
    assert_no_trace(stored, b"EXIF", b"Exif", b"XMP ", b"xmpmeta", b"SentinelTestCam")
    with Image.open(io.BytesIO(stored)) as image:
        assert len(image.getexif()) == 0 and not {"exif", "xmp"} & set(image.info)


# --- bad uploads: a problem with a stable code, and nothing left behind ----------------


def _gif() -> bytes:
    return encode(picture((64, 48)).convert("P"), "GIF")


def _truncated_jpeg() -> bytes:
    data = encode(noise((320, 240)), "JPEG", quality=90)
    return data[: len(data) // 2]


def _truncated_png() -> bytes:
    data = encode(noise((160, 120)), "PNG")
    return data[: len(data) // 2]


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="48">'
    b'<rect width="64" height="48" fill="red"/><script>alert(1)</script></svg>'
)
PDF = (
    b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
    b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
)
BAD_UPLOADS: dict[str, tuple[Callable[[], bytes], str, str, int, str]] = {
    # name: (bytes, filename, declared type, status, code)
    "text file": (
        lambda: b"the road is broken here\n",
        "note.txt",
        "text/plain",
        415,
        "unsupported_media_type",
    ),
    "text declared as jpeg": (
        lambda: b"the road is broken here\n",
        "p.jpg",
        "image/jpeg",
        415,
        "unsupported_media_type",
    ),
    "empty file": (lambda: b"", "p.jpg", "image/jpeg", 415, "unsupported_media_type"),
    "pdf": (lambda: PDF, "report.pdf", "application/pdf", 415, "unsupported_media_type"),
    "pdf declared as jpeg": (lambda: PDF, "p.jpg", "image/jpeg", 415, "unsupported_media_type"),
    "svg": (lambda: SVG, "p.svg", "image/svg+xml", 415, "unsupported_media_type"),
    "gif": (_gif, "p.gif", "image/gif", 415, "unsupported_media_type"),
    "gif declared as png": (_gif, "p.png", "image/png", 415, "unsupported_media_type"),
    "tiff": (
        lambda: encode(picture((64, 48)), "TIFF"),
        "p.tif",
        "image/tiff",
        415,
        "unsupported_media_type",
    ),
    "bmp": (
        lambda: encode(picture((64, 48)), "BMP"),
        "p.bmp",
        "image/bmp",
        415,
        "unsupported_media_type",
    ),
    "truncated jpeg": (_truncated_jpeg, "p.jpg", "image/jpeg", 422, "invalid_image"),
    "truncated png": (_truncated_png, "p.png", "image/png", 422, "invalid_image"),
    # 400 megapixels: past Pillow's own decompression-bomb limit.
    "bomb png 20000x20000": (
        lambda: bomb_png(20_000, 20_000),
        "p.png",
        "image/png",
        422,
        "image_too_many_pixels",
    ),
    # 48 megapixels: under Pillow's limit, over the service's 40.
    "png of 48 megapixels": (
        lambda: bomb_png(8_000, 6_000),
        "p.png",
        "image/png",
        422,
        "image_too_many_pixels",
    ),
}


@pytest.mark.parametrize("name", list(BAD_UPLOADS))
def test_a_bad_upload_is_refused_and_leaves_nothing(
    client: TestClient, rider: Headers, settings: Settings, count_rows: CountRows, name: str
) -> None:
    make, filename, declared, status, code = BAD_UPLOADS[name]
    rows_before = count_rows("media")

    response = upload(client, rider, make(), filename, declared)

    assert_problem(response, status, code)
    assert_nothing_stored(settings, count_rows, rows_before)


def test_the_bombs_are_small_files() -> None:
    # What makes them bombs: a few kilobytes that would decode to hundreds of megabytes.
    assert len(bomb_png(20_000, 20_000)) < 100_000
    assert len(bomb_png(8_000, 6_000)) < 20_000
    with Image.open(io.BytesIO(bomb_png(8_000, 6_000))) as image:
        assert (image.format, image.size, image.mode) == ("PNG", (8_000, 6_000), "1")


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda: multipart(encode(picture((64, 48)), "PNG"), field="photo"),
            id="file under another field name",
        ),
        pytest.param(
            lambda: (
                b"--" + BOUNDARY.encode() + b"--\r\n",
                f"multipart/form-data; boundary={BOUNDARY}",
            ),
            id="empty multipart",
        ),
        pytest.param(
            lambda: (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"\r\n\r\n'
                f"not a file\r\n--{BOUNDARY}--\r\n".encode(),
                f"multipart/form-data; boundary={BOUNDARY}",
            ),
            id="file as a plain text field",
        ),
        pytest.param(
            lambda: (json.dumps({"file": "aGVsbG8="}).encode(), "application/json"), id="json body"
        ),
        pytest.param(lambda: (b"", "multipart/form-data; boundary=x"), id="no body"),
    ],
)
def test_an_upload_without_a_file_field_is_a_validation_error(
    client: TestClient,
    rider: Headers,
    settings: Settings,
    count_rows: CountRows,
    make: Callable[[], tuple[bytes, str]],
) -> None:
    content, content_type = make()
    rows_before = count_rows("media")

    response = client.post(
        "/v1/media", headers={**rider, "Content-Type": content_type}, content=content
    )

    body = assert_problem(response, 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["file"]
    assert_nothing_stored(settings, count_rows, rows_before)


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("nobody", 401, "unauthenticated"),
        ("bad token", 401, "unauthenticated"),
        ("platform", 403, "forbidden"),
        ("officer", 403, "forbidden"),
        ("admin", 403, "forbidden"),
    ],
)
def test_only_a_rider_may_upload(
    client: TestClient,
    auth: Auth,
    settings: Settings,
    count_rows: CountRows,
    who: str,
    status: int,
    code: str,
) -> None:
    headers = {
        "nobody": lambda: {},
        "bad token": lambda: {"Authorization": "Bearer nope"},
        "platform": lambda: auth.platform("meituan"),
        "officer": lambda: auth.staff(f"officer_{STREET_JIANGSU}"),
        "admin": lambda: auth.staff("admin"),
    }[who]()
    rows_before = count_rows("media")

    response = upload(client, headers, encode(picture((64, 48)), "JPEG"))

    assert_problem(response, status, code)
    assert_nothing_stored(settings, count_rows, rows_before)


# --- the size cap ----------------------------------------------------------------------


@pytest.fixture
def capped_app(settings: Settings, database: Database, baseline: Baseline) -> FastAPI:
    """The app with SENTINEL_MAX_UPLOAD_MB at 0.05 (the body limit is set when it is made)."""
    settings.max_upload_mb = SMALL_CAP_MB
    return create_app(settings, database)


@pytest.fixture
def capped(capped_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(capped_app, raise_server_exceptions=False) as c:
        yield c


def send_upload(
    client: TestClient, headers: Headers, data: bytes, *, chunked: bool
) -> httpx.Response:
    body, content_type = multipart(data)
    headers = {**headers, "Content-Type": content_type}
    if not chunked:
        response = client.post("/v1/media", headers=headers, content=body)
        assert response.request.headers["content-length"] == str(len(body))
        return response
    pieces = [body[i : i + 16_384] for i in range(0, len(body), 16_384)]
    response = client.post("/v1/media", headers=headers, content=iter(pieces))
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    return response


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(
    "side",
    [(190, 190), (400, 400)],
    ids=["over the file cap (~108 KB)", "over the body limit (~480 KB)"],
)
def test_an_upload_over_the_size_cap_is_413_and_leaves_nothing(
    capped: TestClient,
    rider: Headers,
    settings: Settings,
    count_rows: CountRows,
    side: tuple[int, int],
    chunked: bool,
) -> None:
    # A valid PNG: without the cap it would be accepted.
    data = encode(noise(side), "PNG", compress_level=1)
    assert len(data) > SMALL_CAP_MB * 1024 * 1024
    rows_before = count_rows("media")

    response = send_upload(capped, rider, data, chunked=chunked)

    assert_problem(response, 413, "payload_too_large")
    assert_nothing_stored(settings, count_rows, rows_before)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_upload_under_the_size_cap_is_accepted(
    capped: TestClient, rider: Headers, settings: Settings, chunked: bool
) -> None:
    data = encode(noise((100, 100)), "PNG")  # ~30 KB
    assert len(data) < SMALL_CAP_MB * 1024 * 1024

    response = send_upload(capped, rider, data, chunked=chunked)

    assert response.status_code == 201, response.text
    assert media_store(settings).exists(stored_key(response.json()))


def test_a_huge_streamed_upload_is_cut_off_at_the_limit_not_read_whole(
    capped_app: FastAPI, rider: Headers, settings: Settings, count_rows: CountRows
) -> None:
    """64 MB sent chunked, straight to the ASGI app: it stops reading soon after the limit."""
    chunk = 65_536
    total = 64 * 1024 * 1024
    head, content_type = multipart(b"")
    pulled = 0
    messages: list[Message] = []

    async def receive() -> Message:
        nonlocal pulled
        if pulled == 0:
            pulled = len(head)
            return {"type": "http.request", "body": head, "more_body": True}
        pulled += chunk
        return {"type": "http.request", "body": b"\0" * chunk, "more_body": pulled < total}

    async def send(message: Message) -> None:
        messages.append(message)

    scope = http_scope(
        "POST",
        "/v1/media",
        [
            (b"content-type", content_type.encode()),
            (b"transfer-encoding", b"chunked"),
            (b"authorization", rider["Authorization"].encode()),
        ],
    )
    rows_before = count_rows("media")

    asyncio.run(capped_app(scope, receive, send))

    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    assert start["status"] == 413
    assert json.loads(body)["code"] == "payload_too_large"
    limit = int(SMALL_CAP_MB * 1024 * 1024) + MULTIPART_OVERHEAD
    assert pulled <= limit + chunk
    assert_nothing_stored(settings, count_rows, rows_before)


# --- who may see a photo ---------------------------------------------------------------


def report(
    client: TestClient, rider: Headers, point: dict[str, float], media_ids: list[str]
) -> dict[str, Any]:
    response = client.post(
        "/v1/reports",
        headers=rider,
        json={"category": "road_damage", **point, "coord_sys": "gcj02", "media_ids": media_ids},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def reads(client: TestClient, headers: Headers, media_id: str) -> list[httpx.Response]:
    return [
        client.get(f"/v1/media/{media_id}", headers=headers),
        client.get(f"/v1/media/{media_id}/thumbnail", headers=headers),
    ]


def assert_sees(client: TestClient, headers: Headers, media_id: str, photo: bytes) -> None:
    original, thumbnail = reads(client, headers, media_id)
    assert original.status_code == 200, original.text
    assert original.headers["content-type"] == "image/png"
    assert original.content == photo
    assert thumbnail.status_code == 200, thumbnail.text
    assert thumbnail.headers["content-type"] == "image/jpeg"
    assert thumbnail.content[:3] == b"\xff\xd8\xff"


def assert_refused(
    client: TestClient, headers: Headers, media_id: str, status: int, code: str
) -> None:
    for response in reads(client, headers, media_id):
        assert_problem(response, status, code)


def test_who_may_read_a_photo(
    client: TestClient, auth: Auth, rider: Headers, settings: Settings
) -> None:
    response = upload(client, rider, encode(picture((64, 48)), "PNG"), "p.png", "image/png")
    assert response.status_code == 201, response.text
    media_id = response.json()["id"]
    photo = stored_bytes(settings, response.json())
    jiangsu = auth.staff(f"officer_{STREET_JIANGSU}")
    huayang = auth.staff(f"officer_{STREET_HUAYANG}")
    district = auth.staff("changning")

    assert_sees(client, rider, media_id, photo)
    for other_rider in (auth.rider("meituan", "r2"), auth.rider("eleme", "r1")):
        assert_refused(client, other_rider, media_id, 404, "not_found")
    # No ticket uses it yet: no staff member sees it.
    for staff in (jiangsu, huayang, district):
        assert_refused(client, staff, media_id, 404, "not_found")

    created = report(client, rider, POINT_JIANGSU, [media_id])
    assert created["area"]["street"]["code"] == STREET_JIANGSU

    assert_sees(client, jiangsu, media_id, photo)
    assert_sees(client, district, media_id, photo)
    assert_sees(client, rider, media_id, photo)
    assert_refused(client, huayang, media_id, 404, "not_found")
    assert_refused(client, auth.rider("meituan", "r2"), media_id, 404, "not_found")
    # The uploader's platform sees it (for the rider's export); another platform does not.
    assert_sees(client, auth.platform("meituan"), media_id, photo)
    assert_refused(client, auth.platform("eleme"), media_id, 404, "not_found")
    assert_refused(client, auth.staff("admin"), media_id, 403, "forbidden")
    assert_refused(client, {}, media_id, 401, "unauthenticated")
    assert_refused(
        client, {"Authorization": "Bearer not-a-token"}, media_id, 401, "unauthenticated"
    )

    unknown = str(uuid.uuid4())
    for headers in (rider, jiangsu, district):
        assert_refused(client, headers, unknown, 404, "not_found")


def test_each_street_sees_only_the_photos_of_its_own_tickets(
    client: TestClient, auth: Auth, rider: Headers, settings: Settings
) -> None:
    ids, photos = [], []
    for n in (1, 2):
        response = upload(client, rider, encode(picture((64 + n, 48)), "PNG"), "p.png", "image/png")
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
        photos.append(stored_bytes(settings, response.json()))
    at_jiangsu, at_huayang = ids
    assert (
        report(client, rider, POINT_JIANGSU, [at_jiangsu])["area"]["street"]["code"]
        == STREET_JIANGSU
    )
    assert (
        report(client, rider, POINT_HUAYANG, [at_huayang])["area"]["street"]["code"]
        == STREET_HUAYANG
    )
    jiangsu = auth.staff(f"officer_{STREET_JIANGSU}")
    huayang = auth.staff(f"officer_{STREET_HUAYANG}")
    district = auth.staff("changning")

    assert_sees(client, jiangsu, at_jiangsu, photos[0])
    assert_refused(client, jiangsu, at_huayang, 404, "not_found")
    assert_sees(client, huayang, at_huayang, photos[1])
    assert_refused(client, huayang, at_jiangsu, 404, "not_found")
    assert_sees(client, district, at_jiangsu, photos[0])
    assert_sees(client, district, at_huayang, photos[1])


def test_a_failed_upload_takes_its_files_with_it(
    client: TestClient,
    settings: Settings,
    auth: Auth,
    count_rows: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The files are written (and fsynced) before the transaction; if it then fails, they
    go, unless a committed photo uses the same bytes."""
    from app.errors import DatabaseBusy
    from app.media import service as media_service

    rider = auth.rider("meituan", "unlucky")
    kept = upload(client, rider, encode(noise((64, 48), seed=7), "JPEG"))
    assert kept.status_code == 201
    before = stored_keys(settings)

    counted = media_service.begin_writes

    def busy(session: Any) -> None:
        # The transaction that stores the photo's row, after its files are written,
        # fails; counting the upload beforehand goes through.
        if sys._getframe(1).f_code.co_name == "_add":
            raise DatabaseBusy()
        counted(session)

    monkeypatch.setattr(media_service, "begin_writes", busy)
    failed = upload(client, rider, encode(noise((64, 48), seed=8), "JPEG"))
    assert_problem(failed, 503, "database_busy")
    # Another rider's upload of the committed photo's bytes fails too. Here it writes the
    # files anew (as in a race where it found none yet): its rollback must leave them.
    for key in before:
        media_store(settings).delete(key)
    again = upload(
        client, auth.rider("eleme", "unlucky-2"), encode(noise((64, 48), seed=7), "JPEG")
    )
    assert_problem(again, 503, "database_busy")
    assert stored_keys(settings) == before
    assert count_rows("media") == 1
    assert client.get(f"/v1/media/{kept.json()['id']}", headers=rider).status_code == 200
