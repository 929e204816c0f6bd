"""The words of messages, in the channel's language: English message ids, Chinese from
``locale/zh_CN/LC_MESSAGES/notify.po`` (read at first use; ``scripts/messages`` brings
it up to date with the code)."""

from collections.abc import Callable
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

CATALOGS = Path(__file__).parent / "locale"
DOMAIN = "notify"
LOCALES = {"zh": "zh_CN", "en": "en"}


def _(message: str) -> str:
    """Marks ``message`` for the catalog; translated where it is said (``words``)."""
    return message


@cache
def _table(locale: str) -> dict[str, str]:
    path = CATALOGS / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return {}
    with path.open("rb") as f:
        catalog = read_po(f, locale=locale, domain=DOMAIN)
    return {str(m.id): str(m.string) for m in catalog if m.id and m.string and not m.fuzzy}


def words(lang: str) -> Callable[..., str]:
    """``say(message, **values)``: the message in ``lang`` ("zh" or "en"), filled in."""
    table = _table(LOCALES.get(lang, "zh_CN"))

    def say(message: str, **values: object) -> str:
        text = table.get(message, message)
        return text % values if values else text

    return say
