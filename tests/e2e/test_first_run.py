"""The first run on a fresh machine, as the README's run command does it, in processes."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.apps import free_port, request

SENTINEL = shutil.which("sentinel", path=str(Path(sys.executable).parent))

pytestmark = [
    pytest.mark.processes,
    pytest.mark.skipif(
        bool(os.environ.get("SENTINEL_TEST_DATABASE_URL")),
        reason="exercises the embedded SpatiaLite database only",
    ),
]


def test_upgrade_demo_serve_on_an_empty_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    env.update(
        SENTINEL_SECRET_KEY="first-run-secret-key-0123456789abcdef",
        SENTINEL_ARGON2_MEMORY_KIB="64",
        SENTINEL_ARGON2_TIME_COST="1",
    )

    def sentinel(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SENTINEL, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    assert sentinel("db", "upgrade").returncode == 0
    demo = sentinel("demo", "--json")
    assert demo.returncode == 0, demo.stderr
    credentials = json.loads(demo.stdout)
    assert {p["code"] for p in credentials["platforms"]} == {"meituan", "eleme"}
    roles = [s["role"] for s in credentials["staff"]]
    assert (
        roles.count("officer") == 10 and roles.count("district") == 1 and roles.count("admin") == 1
    )
    assert (tmp_path / "sentinel.db").exists()
    again = sentinel("demo")
    assert again.returncode == 0 and "nothing changed" in again.stderr

    port = free_port()
    server = subprocess.Popen(
        [SENTINEL, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if request("GET", f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "serve did not start"
            time.sleep(0.1)
        assert len(request("GET", f"{base}/v1/categories").json()["items"]) == 7
        officer = next(s for s in credentials["staff"] if s["area"] == "310105002")
        token = request(
            "POST",
            f"{base}/v1/auth/token",
            data={"username": officer["username"], "password": officer["password"]},
        ).json()
        areas = request(
            "GET",
            f"{base}/v1/office/areas",
            headers={"Authorization": f"Bearer {token['access_token']}"},
        ).json()
        assert {f["id"] for f in areas["features"]} >= {"310105002"}
        assert all(f["properties"]["source"].startswith("synthetic") for f in areas["features"])
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=15)
    access = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any(line.get("path") == "/v1/categories" and line.get("request_id") for line in access)
