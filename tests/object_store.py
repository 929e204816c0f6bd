"""A real S3-compatible server for the tests: moto's standalone server, in its own
process on 127.0.0.1, spoken to over HTTP by boto3 exactly as OSS, COS or MinIO would be.
"""

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx

from tests.apps import free_port

# Credentials the server accepts (it checks none); set for this process, and so for the
# service the tests run, the way an operator sets them.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "sentinel-test",
    "AWS_SECRET_ACCESS_KEY": "sentinel-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class ObjectStoreServer:
    endpoint_url: str
    process: "subprocess.Popen[bytes]"

    def client(self) -> Any:
        return boto3.client("s3", endpoint_url=self.endpoint_url)

    def new_bucket(self) -> str:
        name = f"photos-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def media_settings(self, bucket: str | None = None) -> dict[str, str]:
        """Settings for a photo store in ``bucket`` (or a fresh one), below a prefix."""
        return {
            "media_url": f"s3://{bucket or self.new_bucket()}/sentinel/photos",
            "s3_endpoint_url": self.endpoint_url,
        }

    def empty(self, bucket: str) -> None:
        """Every object of ``bucket`` deleted."""
        client = self.client()
        for key in self.objects(bucket):
            client.delete_object(Bucket=bucket, Key=key)

    def objects(self, bucket: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))


@contextmanager
def object_store_server() -> Iterator[ObjectStoreServer]:
    command = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    assert command, "moto_server is missing: pip install 'moto[server]'"
    port = free_port()
    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    process = subprocess.Popen(
        [command, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the S3-compatible test server did not start") from None
                time.sleep(0.1)
        yield ObjectStoreServer(endpoint, process)
    finally:
        process.terminate()
        process.wait(timeout=10)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
