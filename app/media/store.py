"""Where photos' bytes live: a directory on this machine, or S3-compatible object storage.

Both keep the same promises. A blob is named by its content (``ab/cd/<sha256>.<ext>``),
so the same bytes are stored once and a name never changes meaning. ``put`` returns
only once the bytes are durable (fsynced on disk; acknowledged by the object store), so
a photo the API acknowledged survives a crash. Reading is the caller's to authorise: a
store hands out bytes to whoever asks, and only the routers, after their access check,
ask. Alibaba OSS, Tencent COS, Huawei OBS, MinIO and Ceph all speak the S3 API.
"""

import contextlib
import errno
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.config import Settings
from app.errors import MediaStoreUnavailable, StorageFull

_CHUNK = 64 * 1024


def blob_key(sha256: str, extension: str) -> str:
    """The name of a blob in every store: two levels of fan-out, then the digest."""
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.{extension}"


@dataclass(frozen=True)
class Blob:
    """A stored blob, ready to send: a local file (sent by the server's sendfile) or a
    stream of chunks with its size."""

    size: int
    path: Path | None = None
    chunks: Iterator[bytes] | None = None


@dataclass(frozen=True)
class StoredKey:
    key: str
    modified: datetime


class MediaStore(ABC):
    """The bytes of photos by key. Implementations are safe to share between threads."""

    # A blob written this recently may be about to be named by a transaction not yet
    # committed (the same bytes uploaded again): deletes leave it for the sweep.
    grace = timedelta(hours=1)

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def put(self, key: str, content: bytes, content_type: str) -> None:
        """Store ``content`` under ``key`` durably before returning."""

    @abstractmethod
    def open(self, key: str) -> Blob | None:
        """The blob under ``key``, or None when there is none."""

    @abstractmethod
    def modified(self, key: str) -> datetime | None:
        """When ``key`` was last written, or None when there is none."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; removing what is not there is not an error."""

    @abstractmethod
    def blobs(self) -> Iterator[StoredKey]:
        """Every blob held, with when it was written (for the sweep of orphans)."""

    def read(self, key: str) -> bytes | None:
        blob = self.open(key)
        if blob is None:
            return None
        if blob.path is not None:
            return blob.path.read_bytes()
        return b"".join(blob.chunks or ())

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the blobs are, for the operator (a path or an s3:// URL)."""


class DirectoryStore(MediaStore):
    """Blobs as files below one directory (the default)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / key

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def put(self, key: str, content: bytes, content_type: str) -> None:
        # A temporary file, fsynced, renamed into place, and the directory fsynced.
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        except OSError as error:
            raise _disk_error(error) from error
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(content)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException as error:
            Path(temporary).unlink(missing_ok=True)
            if isinstance(error, OSError):
                raise _disk_error(error) from error
            raise
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def open(self, key: str) -> Blob | None:
        path = self._path(key)
        try:
            return Blob(size=path.stat().st_size, path=path)
        except FileNotFoundError:
            return None

    def modified(self, key: str) -> datetime | None:
        try:
            return datetime.fromtimestamp(self._path(key).stat().st_mtime, UTC)
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def blobs(self) -> Iterator[StoredKey]:
        if not self.root.is_dir():
            return
        for path in self.root.rglob("*"):
            if path.is_file():
                modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                yield StoredKey(path.relative_to(self.root).as_posix(), modified)


def _disk_error(error: OSError) -> Exception:
    """A full (or quota-bound) disk is the operator's to fix and the client's to retry
    later: a 507 problem. Any other failure to write stays what it is."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull("the photo store is full; try again later")
    return error


class ObjectStore(MediaStore):
    """Blobs as objects in an S3-compatible bucket, below a prefix."""

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except ClientError as error:
            # A missing key; a missing bucket (NoSuchBucket) is the operator's to fix.
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(kwargs.get("Key", "")) from None
            raise MediaStoreUnavailable(f"the photo store refused: {error}") from error
        except BotoCoreError as error:
            raise MediaStoreUnavailable(f"the photo store cannot be reached: {error}") from error

    def exists(self, key: str) -> bool:
        try:
            self._call("head_object", Key=self._key(key))
        except FileNotFoundError:
            return False
        return True

    def modified(self, key: str) -> datetime | None:
        try:
            modified: datetime = self._call("head_object", Key=self._key(key))["LastModified"]
            return modified
        except FileNotFoundError:
            return None

    def put(self, key: str, content: bytes, content_type: str) -> None:
        # S3 answers a PUT only once the object is stored (and, on AWS, replicated).
        self._call("put_object", Key=self._key(key), Body=content, ContentType=content_type)

    def open(self, key: str) -> Blob | None:
        try:
            answer = self._call("get_object", Key=self._key(key))
        except FileNotFoundError:
            return None
        body = answer["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(_CHUNK)
            finally:
                body.close()

        return Blob(size=int(answer["ContentLength"]), chunks=chunks())

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._call("delete_object", Key=self._key(key))

    def blobs(self) -> Iterator[StoredKey]:
        paginator = self.client.get_paginator("list_objects_v2")
        prefix = f"{self.prefix}/" if self.prefix else ""
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", ()):
                yield StoredKey(item["Key"][len(prefix) :], item["LastModified"])


def is_object_store_url(url: str) -> bool:
    return url.startswith("s3://")


def media_store(settings: Settings) -> MediaStore:
    """The store the settings name (``SENTINEL_MEDIA_URL`` and the S3 options)."""
    return open_store(
        settings.media_url,
        settings.s3_endpoint_url,
        addressing=settings.s3_addressing_style,
        grace_s=settings.media_delete_grace_s,
    )


@lru_cache(maxsize=8)
def open_store(
    url: str, endpoint_url: str | None = None, *, addressing: str = "auto", grace_s: float = 3600
) -> MediaStore:
    """The store ``url`` names, whose deletes spare blobs written in the last ``grace_s``:
    one per process and configuration (one S3 client, with its connection pool)."""
    store = _new_store(url, endpoint_url, addressing=addressing)
    store.grace = timedelta(seconds=grace_s)
    return store


def _new_store(url: str, endpoint_url: str | None, *, addressing: str) -> MediaStore:
    """The store ``url`` names: ``s3://bucket/prefix``, or else a directory path."""
    if not is_object_store_url(url):
        return DirectoryStore(Path(url))
    parts = urlsplit(url)
    if not parts.netloc:
        raise ValueError(f"{url!r}: an s3:// media URL names a bucket (s3://bucket/prefix)")
    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url or None,
        config=Config(
            s3={"addressing_style": addressing},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
            max_pool_connections=50,
        ),
    )
    return ObjectStore(parts.netloc, parts.path, client)
