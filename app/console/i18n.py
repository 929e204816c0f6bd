"""The console's languages: zh-CN by default, English; message catalogs read from the
``.po`` files at start (no compiled catalogs to keep in step), times in Asia/Shanghai."""

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import dates
from babel.messages.pofile import read_po

LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
TZ = ZoneInfo("Asia/Shanghai")
CATALOGS = Path(__file__).parent / "locale"
DOMAIN = "console"


@cache
def messages(locale: str) -> dict[str, str]:
    """``locale``'s translations by message id; the ids are the English text."""
    path = CATALOGS / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return {}
    with path.open("rb") as f:
        catalog = read_po(f, locale=locale, domain=DOMAIN)
    return {str(m.id): str(m.string) for m in catalog if m.id and m.string and not m.fuzzy}


def translator(locale: str) -> Callable[..., str]:
    """``_(message, **values)``: the message in ``locale``, ``%(name)s`` filled in."""
    table = messages(locale)

    def gettext(message: str, **values: object) -> str:
        text = table.get(message, message)
        return text % values if values else text

    return gettext


def negotiate(accept_language: str | None, chosen: str | None) -> str:
    """The locale a request is answered in: the one chosen with the switch, else the
    first of Accept-Language's languages (by weight) that the console speaks, else
    Chinese."""
    if chosen in LOCALES:
        return chosen
    weighted = []
    for part in (accept_language or "").split(","):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        weighted.append((-weight, tag.strip().replace("_", "-").split("-")[0].lower()))
    for _, language in sorted(weighted, key=lambda w: w[0]):
        if language == "zh":
            return "zh_CN"
        if language == "en":
            return "en"
    return DEFAULT_LOCALE


class Formats:
    """Times and durations as the clerk reads them: in Asia/Shanghai, in their locale."""

    def __init__(self, locale: str) -> None:
        self.locale = locale

    def time(self, value: datetime | None) -> str:
        if value is None:
            return ""
        return dates.format_datetime(value, "yyyy-MM-dd HH:mm", tzinfo=TZ, locale=self.locale)

    def date(self, value: datetime) -> str:
        return dates.format_date(value.astimezone(TZ), "yyyy-MM-dd", locale=self.locale)

    def ago(self, value: datetime, now: datetime) -> str:
        return dates.format_timedelta(
            value - now,
            granularity="minute",
            threshold=1.5,
            add_direction=True,
            locale=self.locale,
        )

    def duration(self, delta: timedelta) -> str:
        return dates.format_timedelta(
            delta, granularity="minute", threshold=1.5, locale=self.locale
        )
