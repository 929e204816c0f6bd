"""Real ``sentinel serve`` processes on the test database, started, killed and restarted."""

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.config import Settings
from tests.apps import free_port, http_client

SENTINEL = shutil.which("sentinel", path=str(Path(sys.executable).parent)) or "sentinel"


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    """This process's environment without its SENTINEL_ settings, then ``settings``'."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    env.update(
        SENTINEL_DATABASE_URL=settings.database_url,
        SENTINEL_SECRET_KEY=settings.secret_key,
        SENTINEL_ENV="test",
        SENTINEL_MEDIA_URL=settings.media_url,
        SENTINEL_MEDIA_DELETE_GRACE_S=str(settings.media_delete_grace_s),
        **(
            {"SENTINEL_S3_ENDPOINT_URL": settings.s3_endpoint_url}
            if settings.s3_endpoint_url
            else {}
        ),
        **extra,
    )
    return env


class Process:
    """A ``sentinel`` command in a process of its own, to kill or to stop."""

    process: "subprocess.Popen[bytes] | None" = None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flushing, nothing in flight is finished."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


class ServerProcess(Process):
    """One ``sentinel serve`` (one uvicorn worker, unless told) in a process of its own."""

    def __init__(self, settings: Settings, workdir: Path, workers: int = 1) -> None:
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.env = environment(
            settings,
            SENTINEL_EMBEDDED_WORKER="0",
            SENTINEL_LOG_LEVEL="WARNING",
            SENTINEL_RIDER_REPORTS_PER_HOUR=str(settings.rider_reports_per_hour),
            SENTINEL_RIDER_PHOTOS_PER_HOUR=str(settings.rider_photos_per_hour),
            SENTINEL_RIDER_PHOTOS_PER_DAY=str(settings.rider_photos_per_day),
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "ServerProcess":
        """Started and answering; on another port if its own was taken meanwhile (it is
        looked up free here, and bound by the process later)."""
        for _ in range(3):
            if self._started():
                return self
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
        raise RuntimeError("sentinel serve did not start")

    def _started(self) -> bool:
        self.process = subprocess.Popen(
            [SENTINEL, "serve", "--port", str(self.port), "--workers", str(self.workers)],
            cwd=self.workdir,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        with http_client(self.url, timeout=1) as http:
            while True:
                try:
                    if http.get("/healthz").status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.kill()
                    return False
                time.sleep(0.05)


class WorkerProcess(Process):
    """One ``sentinel worker`` in a process of its own; its log goes to a file."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.log = workdir / f"worker-{time.monotonic_ns()}.log"
        self.env = environment(
            settings,
            SENTINEL_LOG_LEVEL="INFO",
            SENTINEL_ALLOW_PRIVATE_WEBHOOKS="1" if settings.allow_private_webhooks else "0",
            SENTINEL_WORKER_LEASE_S=str(settings.worker_lease_s),
        )
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "WorkerProcess":
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [SENTINEL, "worker"], cwd=self.workdir, env=self.env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 60
        while "worker started" not in self.log.read_text(errors="replace"):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.kill()
                raise RuntimeError(f"sentinel worker did not start: {self.log.read_text()}")
            time.sleep(0.05)
        return self


@contextmanager
def serving(settings: Settings, workdirs: list[Path]) -> Iterator[list[str]]:
    """A ``sentinel serve`` per directory, all on ``settings``' database: their URLs."""
    servers = [ServerProcess(settings, workdir) for workdir in workdirs]
    try:
        for server in servers:
            server.start()
        yield [server.url for server in servers]
    finally:
        for server in servers:
            server.stop()
