"""The apps the tests talk to, built once per distinct settings and kept for the run.

Building an app costs nothing, but its first request to each router makes FastAPI build
that router's routes (their validation models): ~50 ms of a test's first requests, more
than most tests cost in all. So the tests that ask for the same settings share an app:

- in process, through a client that stays open (the app's lifespan and its intake
  writer run on that client's event loop for the whole run);
- served by uvicorn on 127.0.0.1 in a thread (a second app of those settings: an app's
  lifespan belongs to one event loop).

While a test runs, the app reads the test's own settings object (which the test may
change); afterwards the app's state (settings, clock, …) is put back as it was built and
its client forgets its cookies and whatever headers and options the test gave it. A
test that changes the app itself (adds a route, runs its lifespan again) or counts every
request it served (its metrics go on counting) takes ``own_app``; the check after each
test fails one that changed a shared app without saying so. Rows and photos are not the
app's: tests/conftest.py restores them after every test.
"""

import socket
import ssl
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.db import Database
from app.main import create_app

# The tests speak plain HTTP to 127.0.0.1, yet a new httpx client loads the CA bundle
# for a TLS context it will not use (~20 ms): the run's clients share one.
_TLS = ssl.create_default_context()


def http_client(base_url: str = "", **options: Any) -> httpx.Client:
    """A client for the servers the tests start (plain HTTP on 127.0.0.1)."""
    return httpx.Client(base_url=base_url, verify=_TLS, **options)


def request(method: str, url: str, **options: Any) -> httpx.Response:
    """One request on a connection of its own, as ``httpx.request`` sends it."""
    timeout = options.pop("timeout", 5.0)
    with http_client(timeout=timeout) as http:
        return http.request(method, url, **options)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: FastAPI, port: int | None = None) -> Iterator[str]:
    """``app`` served by uvicorn on 127.0.0.1 (on ``port``, or a free one), in a thread:
    its base URL."""
    # Bound here and handed over: a free port looked up and bound later may be taken in
    # between by another test process.
    listening = socket.socket()
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.bind(("127.0.0.1", port or 0))
    port = int(listening.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listening.close()


def _shape(app: FastAPI) -> tuple[Any, ...]:
    """What a test must not change in a shared app."""
    return (
        tuple(app.router.routes),
        tuple(app.user_middleware),
        tuple(app.exception_handlers.items()),
        tuple(app.dependency_overrides.items()),
    )


@dataclass
class Running:
    """A shared app, its open client, and what to give the next test back."""

    app: FastAPI
    client: TestClient
    state: dict[str, Any]
    shape: tuple[Any, ...]
    siblings: list[TestClient] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.headers = httpx.Headers(self.client.headers)
        self.follow_redirects, self.timeout = self.client.follow_redirects, self.client.timeout

    def another_client(self, **options: Any) -> TestClient:
        """A client of its own (its own cookies: another browser) on the app's event loop."""
        client = TestClient(self.app, **options)
        client.portal = self.client.portal
        self.siblings.append(client)
        return client

    def use(self, settings: Settings) -> None:
        """Read ``settings`` (the test's own object, which it may change) until given back."""
        self.app.state.settings = self.app.state.intake.settings = settings

    def give_back(self) -> bool:
        """The app as the next test must find it; False if the test changed what cannot
        be given back."""
        self.app.state._state.clear()
        self.app.state._state.update(self.state)
        self.use(self.state["settings"])
        self.client.cookies.clear()
        self.client.headers = httpx.Headers(self.headers)
        self.client.follow_redirects, self.client.timeout = self.follow_redirects, self.timeout
        for sibling in self.siblings:
            sibling.portal = None
            sibling.close()
        self.siblings.clear()
        return _shape(self.app) == self.shape

    def close(self) -> None:
        self.client.__exit__(None, None, None)


_RUNNING: "weakref.WeakKeyDictionary[FastAPI, Running]" = weakref.WeakKeyDictionary()


def another_client(app: FastAPI, **options: Any) -> TestClient:
    """A client of its own on ``app`` (its own cookies: another browser); on a shared app,
    it runs on the event loop of the app's lifespan."""
    running = _RUNNING.get(app)
    return running.another_client(**options) if running else TestClient(app, **options)


@dataclass
class Served:
    """A shared app served by uvicorn on 127.0.0.1."""

    app: FastAPI
    url: str
    state: dict[str, Any]

    def give_back(self) -> None:
        self.app.state._state.clear()
        self.app.state._state.update(self.state)
        self.app.state.intake.settings = self.state["settings"]


@dataclass
class Apps:
    """The run's shared apps, the least recently used closed beyond ``keep`` of a kind
    (each holds connections to the test database)."""

    database: Database
    keep: int = 4
    _running: "OrderedDict[str, Running]" = field(default_factory=OrderedDict)
    _served: "OrderedDict[str, tuple[Served, ExitStack]]" = field(default_factory=OrderedDict)

    def running(self, settings: Settings) -> Running:
        """The shared app of ``settings``' values, reading the test's own ``settings`` (a
        test may change them) until it is given back."""
        key = settings.model_dump_json()
        if key not in self._running:
            app = create_app(settings, self.database)
            client = TestClient(app, raise_server_exceptions=False).__enter__()
            self._running[key] = _RUNNING[app] = Running(
                app, client, dict(app.state._state), _shape(app)
            )
            self._evict(self._running, Running.close)
        self._running.move_to_end(key)
        running = self._running[key]
        running.use(settings)
        return running

    def give_back(self, running: Running) -> None:
        """After a test: the app as it was built, or, if the test changed it, gone."""
        if running.give_back():
            return
        key = next(k for k, r in self._running.items() if r is running)
        self._running.pop(key).close()
        raise AssertionError(
            "the test changed a shared app (a route, a middleware, a handler): "
            "ask for own_app instead"
        )

    def served(self, settings: Settings) -> Served:
        """Likewise, served by uvicorn."""
        key = settings.model_dump_json()
        if key not in self._served:
            stack = ExitStack()
            app = create_app(settings, self.database)
            url = stack.enter_context(serve(app))
            self._served[key] = (Served(app, url, dict(app.state._state)), stack)
            self._evict(self._served, lambda entry: entry[1].close())
        self._served.move_to_end(key)
        served = self._served[key][0]
        served.app.state.settings = served.app.state.intake.settings = settings
        return served

    def _evict(self, kept: "OrderedDict[str, Any]", close: Callable[[Any], None]) -> None:
        while len(kept) > self.keep:
            close(kept.popitem(last=False)[1])

    def close(self) -> None:
        while self._running:
            self._running.popitem()[1].close()
        while self._served:
            self._served.popitem()[1][1].close()
