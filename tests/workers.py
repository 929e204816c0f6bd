"""Tests in parallel (pytest-xdist): what the workers share, and how a test has it alone.

Each worker has its own database (a file, or a database on the PostgreSQL server), its
own photo directory and bucket, its own apps, servers and ports. What they cannot each
have is the PostgreSQL server itself: a test marked ``exclusive`` (one that restarts
it) waits until no other worker is in a test and keeps the others waiting while it
runs; before its next test, every other worker drops the connections that were cut.
"""

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def _locked(path: Path, how: int) -> Iterator[IO[str]]:
    with path.open("a+") as file:
        fcntl.flock(file, how)
        try:
            yield file
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


class ServerTurns:
    """A readers-writer lock over the workers of one run (files in ``directory``): tests
    share the server, an exclusive test has it alone. The turnstile keeps a waiting
    exclusive test from being passed by a stream of shared ones."""

    def __init__(self, directory: Path) -> None:
        self.lock = directory / "server.lock"
        self.turnstile = directory / "server.turnstile"
        self.restarts = directory / "server.restarts"
        self.seen = self._restarts()
        self._after_restart: list[Callable[[], None]] = []

    def on_restart(self, then: Callable[[], None]) -> None:
        """Call ``then`` at this worker's first turn after a restart (drop connections)."""
        self._after_restart.append(then)

    def _restarts(self) -> int:
        try:
            return int(self.restarts.read_text() or 0)
        except FileNotFoundError:
            return 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        """A turn beside the other workers' tests (the connections a restart since this
        worker's last turn cut dropped first)."""
        with _locked(self.turnstile, fcntl.LOCK_EX):
            pass
        with _locked(self.lock, fcntl.LOCK_SH):
            restarts = self._restarts()
            if restarts != self.seen:
                self.seen = restarts
                for then in self._after_restart:
                    then()
            yield

    @contextmanager
    def alone(self, *, restarts: bool = True) -> Iterator[None]:
        """The server (and the machine) to this test alone; counted as restarted
        afterwards if it ``restarts`` the server."""
        with _locked(self.turnstile, fcntl.LOCK_EX), _locked(self.lock, fcntl.LOCK_EX):
            try:
                yield
            finally:
                if restarts:
                    self.restarts.write_text(str(self._restarts() + 1))
