"""Personal details taken out of words before the public reads them.

Riders write what they see, and what they see includes people: "车主电话138 1234 5678",
a plate, an ID card left on a bench, an e-mail address. Whatever has the shape of a
mobile or landline number, a resident ID number (old and new), a vehicle plate or an
e-mail address is replaced by ``***`` — the same mark for each, so that nothing of the
original (not even its length) is left. A shape is enough: a number that only looks like
a phone number is masked too, since a false alarm costs a resident a digit string and a
miss costs somebody their number.
"""

import re

MASK = "***"

_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_SEPARATOR = r"[\s\-.·•]?"
# Written as riders write them: with spaces, dashes or dots between the groups, with
# full-width digits already folded by NFKC where they came in.
_PATTERNS = [
    # e-mail addresses
    r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+",
    # resident ID numbers: 18 characters (17 digits and a check digit or X), and the old
    # 15 digits; whether the check digit fits or not
    r"(?<![0-9A-Za-z])\d{6}" + _SEPARATOR + r"\d{8}" + _SEPARATOR + r"\d{3}[\dXx](?![0-9A-Za-z])",
    r"(?<![0-9A-Za-z])\d{15}(?![0-9A-Za-z])",
    # mobile numbers, with or without +86 / 0086
    r"(?<![0-9])(?:(?:\+|00)?86[\s\-]?)?1[3-9]\d" + rf"(?:{_SEPARATOR}\d){{8}}(?![0-9])",
    # landlines: an area code and 7 or 8 digits, or 8 local digits (Shanghai's own)
    r"(?<![0-9])(?:\(0\d{2,3}\)|0\d{2,3})"
    + _SEPARATOR
    + r"\d{3,4}"
    + _SEPARATOR
    + r"\d{4}(?![0-9])",
    r"(?<![0-9])[2-9]\d{3}[\s\-]?\d{4}(?![0-9])",
    # vehicle plates: a province, a letter, then 5 (blue, yellow) or 6 (new-energy)
    # letters and digits, often with a dot or space after the letter
    rf"[{_PROVINCES}]\s?[A-Za-z]" + r"[\s\-.·•]?[A-Za-z0-9]{5,6}(?:[挂学警港澳])?(?![A-Za-z0-9])",
]
_PERSONAL = re.compile("|".join(f"(?:{pattern})" for pattern in _PATTERNS))


def mask_personal_details(text: str | None) -> str | None:
    """``text`` with phone numbers, ID numbers, plates and e-mail addresses masked."""
    if not text:
        return text
    return _PERSONAL.sub(MASK, text)
