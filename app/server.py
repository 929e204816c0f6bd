"""How ``sentinel serve`` runs uvicorn, and the HTTP protocol that ends stalled requests.

uvicorn bounds an idle kept-alive connection (``timeout_keep_alive``) but not a request
in progress: a client that sends half its headers, or declares a body and stops sending
it, holds its connection (and, for a body, the handler waiting for it) for as long as it
likes, and fifty such clients cost their sender nothing. :class:`TimedHttpProtocol` is
uvicorn's httptools protocol with nginx's two timeouts: a request's headers must be in
within ``SENTINEL_HEADER_TIMEOUT_S`` of the connection (or, on a kept-alive one, of the
request's first byte), and its body may not pause for longer than
``SENTINEL_BODY_TIMEOUT_S`` (an idle limit, not a total one: a rider's 10 MB photo over
a poor network takes as long as it takes while it keeps moving). A request that misses
either is answered 408 when nothing has been answered yet, and its connection closed; a
handler waiting for the rest of the body gets ``http.disconnect``. The proxy in front
(deploy/nginx.conf) has the same timeouts at its edge.
"""

import asyncio
import logging
from typing import Any, Literal

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from app.config import Settings, get_settings
from app.errors import PROBLEM_JSON, problem

APP = "app.main:create_app"

# An idle kept-alive connection is closed after this many seconds (uvicorn's default,
# said here: a proxy that keeps connections to the service must drop them sooner).
KEEP_ALIVE_S = 5

logger = logging.getLogger("sentinel.server")

_TIMED_OUT = orjson.dumps(
    problem(status=408, code="request_timeout", detail="the request did not arrive in time")
)
_TIMED_OUT_HEADERS = (
    f"content-type: {PROBLEM_JSON}\r\ncontent-length: {len(_TIMED_OUT)}\r\n"
    "connection: close\r\n\r\n"
).encode()

# What a connection waits for from its client: a first request, the rest of a request's
# headers, the rest of its body.
Awaiting = Literal["request", "headers", "body"]


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options (``uvicorn.run``'s or ``uvicorn.Config``'s) for serving the app,
    besides where it listens and with how many workers."""
    return {
        "factory": True,
        # uvloop and httptools (both dependencies): the event loop and the HTTP parser
        # in C, the parser's protocol with its timeouts.
        "loop": "uvloop",
        "http": TimedHttpProtocol,
        # The service speaks no WebSocket: no connection changes protocol under a timer.
        "ws": "none",
        # The app writes its own access log (app.log).
        "access_log": False,
        "log_level": settings.log_level.lower(),
        "server_header": False,  # no banner naming the server
        "timeout_keep_alive": KEEP_ALIVE_S,
    }


class TimedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline on a request's headers and an idle
    limit on its body (read from the process's settings, as the app reads them: each
    worker process builds its own)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        settings = get_settings()
        self.header_timeout_s = settings.header_timeout_s
        self.body_timeout_s = settings.body_timeout_s
        self.awaiting: Awaiting | None = None
        self.deadline: asyncio.TimerHandle | None = None
        self.body_moved_at = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.awaiting = "request"
        self.deadline = self.loop.call_later(self.header_timeout_s, self._check)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Timers start only for a request still unfinished once its bytes so far are
        # parsed: a request that arrives whole (nearly all of them) costs none.
        if self.awaiting is None or self.transport.is_closing():
            return
        if self.awaiting == "body":
            self.body_moved_at = self.loop.time()
        if self.deadline is None:
            timeout = self.body_timeout_s if self.awaiting == "body" else self.header_timeout_s
            self.deadline = self.loop.call_later(timeout, self._check)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # A new connection's first request keeps the deadline counted from the connection.
        self.awaiting = "headers"

    def on_headers_complete(self) -> None:
        self._stop_waiting()
        self.awaiting = "body"
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._stop_waiting()
        super().on_message_complete()

    def _stop_waiting(self) -> None:
        self.awaiting = None
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _check(self) -> None:
        self.deadline = None
        if self.awaiting == "body":
            now = self.loop.time()
            if self.flow.read_paused or self.cycle.waiting_for_100_continue:
                # The service is behind (its handler has not read what came, or not yet
                # asked for the body), not the client.
                self.body_moved_at = now
            left = self.body_moved_at + self.body_timeout_s - now
            if left > 0:
                self.deadline = self.loop.call_later(left, self._check)
                return
        self._time_out()

    def _time_out(self) -> None:
        awaiting, self.awaiting = self.awaiting, None
        if awaiting is None or self.transport.is_closing():
            return
        if awaiting != "request":
            logger.info(
                "request timed out",
                extra={"fields": {"client": self.client and self.client[0], "stalled": awaiting}},
            )
        # The cycle is this request's while its body is awaited, the one before it (if
        # any) while its headers are.
        cycle = self.cycle
        if awaiting == "headers" and cycle is not None and not cycle.response_complete:
            # Stalled behind a request still being answered: the connection ends with
            # that answer.
            cycle.keep_alive = False
            return
        if awaiting == "body":
            answer = not cycle.response_started
            if not cycle.response_complete:
                # The handler waiting for the body learns the client is gone, and what it
                # would answer is not sent.
                cycle.disconnected = True
                cycle.message_event.set()
        else:
            answer = awaiting == "headers"
        if answer:
            self._answer_timed_out()
        self.transport.close()

    def _answer_timed_out(self) -> None:
        content = [b"HTTP/1.1 408 Request Timeout\r\n"]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([_TIMED_OUT_HEADERS, _TIMED_OUT])
        self.transport.write(b"".join(content))
