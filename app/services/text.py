"""Text as people type it: no NUL or other control characters (PostgreSQL refuses NUL)."""

import re

# C0 controls and DEL, except tab, newline and carriage return.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def has_control_characters(value: str) -> bool:
    return _CONTROL.search(value) is not None
