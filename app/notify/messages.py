"""What a message says: its title, a few lines (what, where, the deadline) and a link to
the ticket's console page, in the channel's language — from the facts its notification
kept when it was queued. A message names no rider."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from app.notify.words import _, words

TZ = ZoneInfo("Asia/Shanghai")
MAX_LISTED = 20  # a summary lists so many titles, then says how many more

TITLES = {
    "ticket.new": _("New ticket %(ref)s: %(category)s"),
    "ticket.dispatched": _("Dispatched to %(unit)s: %(ref)s %(category)s"),
    "sla.warning": _("Due soon: %(ref)s %(category)s"),
    "sla.breached": _("Overdue: %(ref)s %(category)s"),
    "ticket.escalated": _("Escalated (提级督办): %(ref)s %(category)s"),
    "ticket.reopened": _("Reopened: %(ref)s %(category)s"),
    "extension.requested": _("More time asked for: %(ref)s %(category)s"),
    "feedback.negative": _("Rated %(rating)s of 5 by a reporter: %(ref)s %(category)s"),
    "digest.daily": _("The day's tickets, %(day)s"),
    "digest.weekly": _("The week's tickets, %(first)s to %(last)s"),
    "alert.sighting": _("A rider's sighting for the alert: %(title)s"),
    "test": _("A test message from Flowing Sentinel"),
}
PRIORITIES = {1: _("High"), 2: _("Normal"), 3: _("Low")}


@dataclass(frozen=True)
class Message:
    title: str
    lines: list[str]
    link: str | None = None
    link_text: str = ""


def _when(value: str | None) -> str:
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(TZ).strftime("%Y-%m-%d %H:%M")


def _name(facts: dict[str, Any], key: str, *, lang: str) -> str:
    """A name the facts keep in both languages (``key`` and ``key_en``)."""
    english = facts.get(f"{key}_en") if lang == "en" else None
    return str(english or facts.get(key) or "")


def render(event: str, facts: dict[str, Any], *, lang: str, base_url: str) -> Message:
    """The message of one notification."""
    say = words(lang)
    if event in ("digest.daily", "digest.weekly"):
        return _digest(event, facts, lang=lang, base_url=base_url)
    if event == "alert.sighting":
        return _sighting(facts, lang=lang, base_url=base_url)
    if event == "test":
        return Message(
            say(TITLES["test"]),
            [say("This channel is connected: its messages will arrive here.")],
        )
    values = {
        "ref": facts.get("ref", ""),
        "category": _name(facts, "category", lang=lang),
        "unit": _name(facts, "unit", lang=lang),
        "rating": facts.get("rating", ""),
    }
    title = say(TITLES.get(event, event), **values)
    place = " · ".join(
        p
        for p in (
            _name(facts, "street", lang=lang),
            _name(facts, "community", lang=lang),
            facts.get("address") or "",
        )
        if p
    )
    lines = []
    if facts.get("summary"):
        lines.append(say("What: %(summary)s", summary=facts["summary"]))
    if place:
        lines.append(say("Where: %(place)s", place=place))
    if facts.get("due_at"):
        lines.append(say("Deadline: %(when)s", when=_when(facts["due_at"])))
    if facts.get("priority") in PRIORITIES:
        lines.append(say("Priority: %(priority)s", priority=say(PRIORITIES[facts["priority"]])))
    if event == "extension.requested":
        lines.append(
            say(
                "Asks for %(hours)s hours more: %(reason)s",
                hours=f"{facts.get('hours', 0):g}",
                reason=facts.get("reason") or "",
            )
        )
    if event == "feedback.negative" and facts.get("comment"):
        lines.append(say("The reporter said: %(comment)s", comment=facts["comment"]))
    if event == "ticket.escalated" and facts.get("why"):
        lines.append(say(ESCALATION_REASONS.get(facts["why"], facts["why"])))
    link = f"{base_url}{facts['path']}" if facts.get("path") else None
    return Message(title, lines, link, say("Open the ticket") if link else "")


ESCALATION_REASONS = {
    "late": _("Late by more than its allowance allows."),
    "reopened": _("Reopened twice."),
    "rated": _("Rated 2 or lower by a reporter."),
}


def _sighting(facts: dict[str, Any], *, lang: str, base_url: str) -> Message:
    say = words(lang)
    lines = [
        say("Seen at %(when)s", when=_when(facts.get("seen_at"))),
        say("Where: %(lat)s, %(lon)s (WGS-84)", lat=facts.get("lat"), lon=facts.get("lon")),
    ]
    link = f"{base_url}{facts['path']}" if facts.get("path") else None
    title = say(TITLES["alert.sighting"], title=facts.get("title", ""))
    return Message(title, lines, link, say("Open the alert") if link else "")


# A digest's figures: the scope's, then a street's (the second figure is due today, or
# resolved in the week), the facts' key of that second figure, and its name in the words.
DIGEST_FIGURES = {
    "digest.daily": (
        _("New since the last digest: %(new)s · due today: %(due)s · overdue: %(overdue)s"),
        _("%(street)s: %(new)s new, %(due)s due today, %(overdue)s overdue"),
        "due_today",
        "due",
    ),
    "digest.weekly": (
        _("New: %(new)s · resolved: %(resolved)s · overdue now: %(overdue)s"),
        _("%(street)s: %(new)s new, %(resolved)s resolved, %(overdue)s overdue"),
        "resolved",
        "resolved",
    ),
}


def _digest(event: str, facts: dict[str, Any], *, lang: str, base_url: str) -> Message:
    say = words(lang)
    whole, per_street, key, name = DIGEST_FIGURES[event]

    def figures(of: dict[str, Any]) -> dict[str, Any]:
        return {"new": of.get("new", 0), "overdue": of.get("overdue", 0), name: of.get(key, 0)}

    lines = [say(whole, **figures(facts))] + [
        say(per_street, street=_name(street, "name", lang=lang), **figures(street))
        for street in facts.get("streets", [])
    ]
    if event == "digest.weekly":
        title = say(TITLES[event], first=facts.get("first", ""), last=facts.get("last", ""))
        return Message(
            title,
            lines,
            f"{base_url}/console/dashboard" if base_url else None,
            say("Open the dashboard"),
        )
    return Message(
        say(TITLES[event], day=facts.get("day", "")),
        lines,
        f"{base_url}/console/queue" if base_url else None,
        say("Open the queue"),
    )


def summary(messages: Sequence[Message], *, lang: str) -> Message:
    """Several messages due at once, over the channel's throttle, as one."""
    say = words(lang)
    listed = [f"{m.title}" for m in messages[:MAX_LISTED]]
    if len(messages) > MAX_LISTED:
        listed.append(say("… and %(n)s more", n=len(messages) - MAX_LISTED))
    return Message(say("%(n)s notifications", n=len(messages)), listed)
