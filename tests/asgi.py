"""Calling the app as an ASGI server would, with no server or client library between: for
the tests and benches that need what those hide (a body sent chunked for ever, the raw
messages sent back, the cost of the app alone)."""

from collections.abc import Sequence
from typing import Any


def http_scope(method: str, path: str, headers: Sequence[tuple[bytes, bytes]]) -> dict[str, Any]:
    """The scope an HTTP/1.1 server hands the app for ``method path`` (no query string)
    from a client on 127.0.0.1: ``headers`` follow the Host header."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "headers": [(b"host", b"testserver"), *headers],
    }
