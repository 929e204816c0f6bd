"""Clients that stall: a real ``sentinel serve`` (two workers) cuts a request whose
headers or body stop coming, answers everyone else meanwhile, and lets a slow but steady
upload finish; the shipped nginx configuration in front of it does the same at its edge.

Raw sockets, since an HTTP client will not send half a request.
"""

import os
import re
import selectors
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from app.config import Settings
from app.db import Database
from tests.apps import free_port, request
from tests.conftest import Auth
from tests.e2e.processes import ServerProcess
from tests.helpers import post_partly

pytestmark = pytest.mark.processes

HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 2.0
# What a loaded two-core machine may add to a timer before the socket is seen closed,
# and how early the event loop's timers (milliseconds) may fire.
SLACK_S = 2.5
TIMER_GRAIN_S = 0.05

NGINX_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

STALLED_HEADERS = b"GET /v1/categories HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: appl"


def stalled_body(path: str = "/v1/reports", declared: int = 1000) -> bytes:
    """A POST that declares ``declared`` bytes of body and sends ten of them."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode() + b'{"lat": 31'


@pytest.fixture(scope="module")
def server(
    base_settings: Settings, database: Database, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    server = ServerProcess(base_settings, tmp_path_factory.mktemp("slow-clients"), workers=2)
    server.env.update(
        SENTINEL_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S),
        SENTINEL_BODY_TIMEOUT_S=str(BODY_TIMEOUT_S),
    )
    server.start()
    yield server
    server.stop()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def until_closed(connections: list[socket.socket], within: float) -> list[bytes | None]:
    """What each connection was answered until the other side closed it; None for one
    still open after ``within`` seconds."""
    answers: dict[socket.socket, bytearray] = {c: bytearray() for c in connections}
    open_ = set(connections)
    deadline = time.monotonic() + within
    with selectors.DefaultSelector() as selector:
        for connection in connections:
            connection.setblocking(False)
            selector.register(connection, selectors.EVENT_READ)
        while open_ and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(timeout=left):
                connection = key.fileobj
                assert isinstance(connection, socket.socket)
                try:
                    chunk = connection.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    answers[connection] += chunk
                else:
                    selector.unregister(connection)
                    open_.discard(connection)
    return [None if c in open_ else bytes(answers[c]) for c in connections]


def answer_to(connection: socket.socket, within: float) -> bytes:
    """The answer (headers and a body of the length they declare) on a connection that
    its server may keep open."""
    connection.settimeout(within)
    answer = b""
    while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < int(
        re.findall(rb"(?i)content-length: *(\d+)", answer)[0]
    ):
        chunk = connection.recv(65536)
        assert chunk, answer
        answer += chunk
    return answer


def status_of(answer: bytes | None) -> int | None:
    if not answer:
        return None
    return int(answer.split(b" ", 2)[1])


def problem_code(answer: bytes) -> str:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"application/problem+json" in head.lower(), head
    code: str = orjson.loads(body)["code"]
    return code


def close_all(connections: list[socket.socket]) -> None:
    for connection in connections:
        connection.close()


def test_unfinished_headers_and_a_silent_connection_are_closed_after_the_header_timeout(
    server: ServerProcess,
) -> None:
    started = time.monotonic()
    stalled, silent = connect(server.port), connect(server.port)
    try:
        stalled.sendall(STALLED_HEADERS)
        answers = until_closed([stalled, silent], within=HEADER_TIMEOUT_S + SLACK_S)
        waited = time.monotonic() - started
    finally:
        close_all([stalled, silent])
    assert None not in answers, "a stalled connection is still open"
    assert waited >= HEADER_TIMEOUT_S - TIMER_GRAIN_S
    stalled_answer, silent_answer = answers
    assert stalled_answer is not None
    assert status_of(stalled_answer) == 408
    assert b"connection: close" in stalled_answer.lower()
    assert problem_code(stalled_answer) == "request_timeout"
    # A connection that never began a request is just closed (as nginx does).
    assert silent_answer == b""


def test_fifty_stalled_bodies_are_cut_after_the_body_timeout_and_others_are_served(
    server: ServerProcess,
) -> None:
    connections = [connect(server.port) for _ in range(50)]
    try:
        started = time.monotonic()
        for connection in connections:
            connection.sendall(stalled_body())
        asked = time.monotonic()
        health = request("GET", f"{server.url}/healthz", timeout=5)
        assert health.status_code == 200
        assert time.monotonic() - asked < 1.0
        answers = until_closed(connections, within=BODY_TIMEOUT_S + SLACK_S)
        waited = time.monotonic() - started
    finally:
        close_all(connections)
    assert sum(answer is None for answer in answers) == 0, "stalled bodies are still open"
    assert waited >= BODY_TIMEOUT_S - TIMER_GRAIN_S
    assert {status_of(answer) for answer in answers} == {408}
    assert {problem_code(answer) for answer in answers if answer} == {"request_timeout"}


def test_a_slow_but_steady_upload_is_not_cut(server: ServerProcess) -> None:
    """A rider on a poor network: the body takes longer than the body timeout in all,
    but no pause between its pieces is that long."""
    body = orjson.dumps({"category": "road_damage", "lat": 31.22, "lon": 121.43})
    pieces = [body[i : i + 8] for i in range(0, len(body), 8)]
    assert len(pieces) * 0.5 > BODY_TIMEOUT_S * 1.5
    connection = connect(server.port)
    try:
        connection.sendall(
            b"POST /v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        started = time.monotonic()
        for piece in pieces:
            time.sleep(0.5)  # the client's pace, not a wait for the server
            connection.sendall(piece)
        assert time.monotonic() - started > BODY_TIMEOUT_S * 1.5
        (answer,) = until_closed([connection], within=10)
    finally:
        connection.close()
    assert answer is not None
    # The whole body reached the app: it answered the request itself (no rider token).
    assert status_of(answer) == 401, answer[:200]


# The shipped proxy's timeouts, shortened for the test (everything else as shipped):
# long enough for a loaded machine to open every stalled connection and ask once more.
PROXY_TIMEOUT_S = 3.0


def proxy_conf(shipped: str, *, port: int, upstream: int) -> str:
    """deploy/nginx.conf in front of the test's server instead of the compose file's."""
    for pattern, replacement in (
        (r"server api:8000;", f"server 127.0.0.1:{upstream};"),
        (r"listen 8000;", f"listen 127.0.0.1:{port};"),
        (r"client_header_timeout \S+;", f"client_header_timeout {PROXY_TIMEOUT_S:g}s;"),
        (r"client_body_timeout \S+;", f"client_body_timeout {PROXY_TIMEOUT_S:g}s;"),
    ):
        shipped, found = re.subn(pattern, replacement, shipped)
        assert found == 1, pattern
    return shipped


def start_nginx(directory: Path, site: str) -> "subprocess.Popen[bytes]":
    """nginx serving ``site`` (a configuration for its http context), everything it
    writes in ``directory``."""
    (directory / "site.conf").write_text(site)
    temp = "\n".join(
        f"{kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf, log = directory / "nginx.conf", directory / "error.log"
    # (nginx's workers run as nobody unless told, and nobody may not enter the directory.)
    conf.write_text(
        "\n".join(
            [
                "user root;" if os.geteuid() == 0 else "",
                f"pid {directory / 'nginx.pid'};",
                f"error_log {log};",
                "events {}",
                "http {",
                "access_log off;",
                temp,
                f"include {directory / 'site.conf'};",
                "}",
            ]
        )
    )
    command = [NGINX, "-p", str(directory), "-e", str(log), "-c", str(conf), "-g", "daemon off;"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def listening(nginx: "subprocess.Popen[bytes]", port: int) -> bool:
    deadline = time.monotonic() + 10
    while nginx.poll() is None and time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    nginx.kill()
    nginx.wait(timeout=30)
    return False


@pytest.fixture
def proxy(server: ServerProcess, tmp_path: Path) -> Iterator[int]:
    """nginx with the shipped configuration in front of ``server``: its port (looked up
    free and bound by nginx later: another one if it was taken meanwhile)."""
    for _ in range(3):
        port = free_port()
        site = proxy_conf(NGINX_CONF.read_text(), port=port, upstream=server.port)
        nginx = start_nginx(tmp_path, site)
        if listening(nginx, port):
            break
    else:
        raise RuntimeError(f"nginx did not start: {(tmp_path / 'error.log').read_text()}")
    try:
        yield port
    finally:
        nginx.terminate()
        nginx.wait(timeout=30)


def test_the_shipped_proxy_cuts_stalled_requests_and_bounds_bodies_and_connections(
    server: ServerProcess, proxy: int, auth: Auth
) -> None:
    url = f"http://127.0.0.1:{proxy}"
    assert request("GET", f"{url}/healthz").status_code == 200

    too_large = connect(proxy)
    try:
        too_large.sendall(stalled_body("/v1/media", declared=12 * 1024 * 1024))
        answer = answer_to(too_large, within=SLACK_S)
    finally:
        too_large.close()
    assert status_of(answer) == 413
    assert problem_code(answer) == "payload_too_large"

    shipped = NGINX_CONF.read_text()
    limit, *_, imports_at_once = (
        int(n) for n in re.findall(r"limit_conn per_address (\d+);", shipped)
    )
    headers = connect(proxy)
    bodies = [connect(proxy) for _ in range(limit)]
    stalled = [headers, *bodies]
    try:
        started = time.monotonic()
        headers.sendall(STALLED_HEADERS)
        for body in bodies:
            body.sendall(stalled_body())
        # One address holding as many requests as it may: the next is refused at once
        # (asked until nginx has taken up every stalled one).
        refused: bytes | None = None
        while refused is None and time.monotonic() - started < PROXY_TIMEOUT_S:
            probe = request("GET", f"{url}/healthz")
            if probe.status_code == 429:
                refused = probe.content
        answers = until_closed(stalled, within=PROXY_TIMEOUT_S + SLACK_S)
    finally:
        close_all(stalled)
    assert refused is not None, "a further request from the address was not refused"
    assert orjson.loads(refused)["code"] == "too_many_connections"
    assert sum(answer is None for answer in answers) == 0, "stalled requests are still open"
    # nginx answers nothing to a client that timed out.
    assert set(answers) == {b""}

    # An area import is passed on as it arrives: a stranger's is refused by the service
    # before nginx has read its body; an admin's stalled one is cut by the service; and
    # an address has but a few in progress at once.
    stranger = post_partly(url, "/console/admin/areas", declared=60 * 1024 * 1024)
    assert stranger.status == 303
    admin = auth.staff("admin")["Authorization"]
    imports = [connect(proxy) for _ in range(imports_at_once + 1)]
    try:
        for one in imports:
            one.sendall(
                stalled_body("/v1/admin/areas:import", declared=20 * 1024 * 1024).replace(
                    b"\r\n\r\n", f"\r\nAuthorization: {admin}\r\n\r\n".encode(), 1
                )
            )
        answers = [answer_to(one, within=BODY_TIMEOUT_S + SLACK_S) for one in imports]
    finally:
        close_all(imports)
    assert sorted(status_of(a) for a in answers) == [408] * imports_at_once + [429], answers
    assert request("GET", f"{url}/healthz").status_code == 200
