"""Text as people type it: no NUL or other control characters (PostgreSQL refuses NUL)."""

import re
from datetime import UTC, datetime

# C0 controls and DEL, except tab, newline and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def has_control_characters(value: str) -> bool:
    return _CONTROL.search(value) is not None


def rfc3339_utc(value: datetime) -> str:
    """``value`` in UTC, as RFC 3339 with a "Z"."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def like_pattern(text: str) -> str:
    """A LIKE pattern (escaped with ``\\``) that finds ``text`` anywhere."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
