"""Personal details taken out of words before the public, a unit's crew or a channel
reads them (a bottom-floor rule: every domain that shows riders' words uses it).

Riders write what they see, and what they see includes people: "车主电话138 1234 5678",
a plate, an ID card left on a bench, an e-mail address. Whatever has the shape of a
mobile or landline number, a resident ID number (old and new), a vehicle plate or an
e-mail address is replaced by ``***`` — the same mark for each, so that nothing of the
original (not even its length) is left. A shape is enough: a number that only looks like
a phone number is masked too, since a false alarm costs a resident a digit string and a
miss costs somebody their number.

The words are searched as NFKC, so that full-width digits, letters and signs (１３８,
Ａ, ＠, －) count as the ASCII ones; what is not masked is left as the rider wrote it
(a full-width comma stays one).
"""

import functools
import re
import unicodedata

MASK = "***"

_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# Between groups of digits: a space, a dash of any length, a dot, an underscore.
_GAP = r"[\s\-‐‑‒–—―_.·•]?"
_PATTERNS = [
    # e-mail addresses
    r"[A-Za-z0-9._%+\-]+\s?@\s?[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+",
    # resident ID numbers: 18 characters (17 digits and a check digit or X) in any
    # grouping, and the old 15 digits; whether the check digit fits or not
    r"(?<![0-9A-Za-z])(?:\d" + _GAP + r"){17}[\dXx](?![0-9A-Za-z])",
    r"(?<![0-9A-Za-z])\d{15}(?![0-9A-Za-z])",
    # mobile numbers, with or without +86 / 0086
    r"(?<![0-9])(?:(?:\+|00)?86[\s\-]?)?1[3-9]\d(?:" + _GAP + r"\d){8}(?![0-9])",
    # landlines: an area code and 7 or 8 digits, or 8 local digits (Shanghai's own)
    r"(?<![0-9])(?:\(0\d{2,3}\)|0\d{2,3})" + _GAP + r"\d{3,4}" + _GAP + r"\d{4}(?![0-9])",
    r"(?<![0-9])[2-9]\d{3}" + _GAP + r"\d{4}(?![0-9])",
    # vehicle plates: a province, a letter, then 5 (blue, yellow) or 6 (new-energy)
    # letters and digits, often with a dot or space after the letter
    rf"[{_PROVINCES}]\s?[A-Za-z]" + _GAP + r"(?:[A-Za-z0-9]\s?){4,5}[A-Za-z0-9]"
    r"(?:[挂学警港澳])?(?![A-Za-z0-9])",
]
_PERSONAL = re.compile("|".join(f"(?:{pattern})" for pattern in _PATTERNS))


def mask_personal_details(text: str | None) -> str | None:
    """``text`` with phone numbers, ID numbers, plates and e-mail addresses masked."""
    if not text:
        return text
    return _masked(text)


# The same words are masked again and again (a thousand tickets on every Open311 page,
# the public page's): each text is folded and searched once while it stays in use.
@functools.lru_cache(maxsize=16384)
def _masked(text: str) -> str:
    # Fold each character on its own, remembering where each folded one came from.
    folded, origin = [], []
    for index, character in enumerate(text):
        for piece in unicodedata.normalize("NFKC", character):
            folded.append(piece)
            origin.append(index)
    kept, start = [], 0
    for match in _PERSONAL.finditer("".join(folded)):
        first, last = origin[match.start()], origin[match.end() - 1] + 1
        kept += [text[start:first], MASK]
        start = last
    kept.append(text[start:])
    return "".join(kept)
