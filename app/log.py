"""JSON log lines on stderr: one per request, plus whatever the app logs.

The app's own lines go through :mod:`logging`. The access log — one line per request,
thousands a second under load — is written by :class:`AccessLog` without it: a
``LogRecord``, its formatter and a flushed write per request would cost a tenth of a
small request. Its lines are the same JSON as the rest, gathered while the event loop
runs its ready callbacks and written together at the end of that turn (one write, not
one per line; nothing waits longer than the loop's turn).
"""

import asyncio
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any

import orjson

ACCESS_LOGGER = "sentinel.access"


def _timestamp(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class AccessLog:
    """The access log's lines, when ``sentinel.access`` logs at INFO."""

    def __init__(self) -> None:
        self._logger = logging.getLogger(ACCESS_LOGGER)
        self._lines: list[bytes] = []
        self._second = -1
        self._prefix = ""

    def enabled(self) -> bool:
        return self._logger.isEnabledFor(logging.INFO)

    def write(self, fields: dict[str, Any]) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:  # the timestamp as the formatter writes it, per second
            self._second, self._prefix = second, _timestamp(second)[:-10]
        ts = f"{self._prefix}.{int((now - second) * 1000):03d}+00:00"
        self._lines.append(
            orjson.dumps(
                {"ts": ts, "level": "info", "logger": ACCESS_LOGGER, "msg": "request", **fields},
                default=str,
            )
        )
        if len(self._lines) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop: write at once
                self.flush()

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        if not lines:
            return
        stream = sys.stderr
        stream.flush()  # after whatever the app logged before
        data = b"\n".join(lines) + b"\n"
        raw = getattr(stream, "buffer", None)
        if raw is None:
            stream.write(data.decode())
            stream.flush()
        else:
            raw.write(data)
            raw.flush()


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("sentinel")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
