"""Every value a page shows has its words, in English and in Chinese."""

from enum import StrEnum

import pytest

from app.console import i18n, labels
from app.models import (
    ActorKind,
    AlertKind,
    AlertOutcome,
    AlertStatus,
    TicketAction,
    TicketEventType,
)

ENUMS: list[tuple[type[StrEnum], dict[str, str]]] = [
    (TicketAction, {k: v for k, v in labels.EVENTS.items() if k in set(TicketAction)}),
    (TicketEventType, {k: v for k, v in labels.EVENTS.items() if k in set(TicketEventType)}),
    (ActorKind, labels.ACTORS),
    (AlertKind, labels.ALERT_KINDS),
    (AlertStatus, labels.ALERT_STATUSES),
    (AlertOutcome, labels.ALERT_OUTCOMES),
]


@pytest.mark.parametrize(("enum", "words"), ENUMS, ids=[e.__name__ for e, _ in ENUMS])
def test_every_member_has_a_label_in_both_languages(
    enum: type[StrEnum], words: dict[str, str]
) -> None:
    chinese = i18n.messages("zh_CN")
    assert set(words) == set(enum)
    for member in enum:
        english = words[member]
        assert english.strip()
        assert chinese.get(english), f"{enum.__name__}.{member.name}: {english!r} untranslated"


def test_an_event_type_is_an_action_or_something_else_never_both() -> None:
    assert not {a.value for a in TicketAction} & {t.value for t in TicketEventType}
    assert set(labels.EVENTS) == set(TicketAction) | set(TicketEventType)
