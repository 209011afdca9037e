"""Masking personal data (phone numbers, ID numbers, names) in what the console shows and exports.

Numbers are found with the same pattern the logs redact with (onewindow.logs.PHONE_OR_ID) and shown as
"•••• 78" (the last two digits, so staff can tell two numbers apart); names are the values the
conversation gave to name-like slots (NAME_SLOTS) and are shown as "••••".
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable, FrozenSet, Iterable, Optional

from onewindow import settings
from onewindow.catalogue import load_catalogue
from onewindow.logs import PHONE_OR_ID

MASK = "••••"
# slots whose values are a person's name or number: masked wherever the value appears in the conversation
NAME_SLOTS = ("citizen_name",)
NUMBER_SLOTS = ("citizen_phone",)
PERSONAL_SLOTS = NAME_SLOTS + NUMBER_SLOTS
MIN_NAME_LENGTH = 2


@lru_cache(maxsize=1)
def public_numbers() -> FrozenSet[str]:
    """The digits of the numbers the city publishes (hotline, offices): service information, shown as they are."""
    catalogue = load_catalogue(settings.catalogue_dir())
    numbers = [catalogue.city["hotline"]["number"], *(office.get("phone") or "" for office in catalogue.offices)]
    return frozenset(re.sub(r"\D", "", number) for number in numbers if number)


def mask_number(match: "re.Match[str]") -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return match.group(0) if digits in public_numbers() else f"{MASK} {digits[-2:]}"


class Masker:
    """Masks numbers everywhere and the given personal values (names, numbers a slot held) as whole words."""

    def __init__(self, personal_values: Iterable[str] = ()) -> None:
        values = sorted({v.strip() for v in personal_values if v and len(v.strip()) >= MIN_NAME_LENGTH}, key=len, reverse=True)
        self._values: Optional["re.Pattern[str]"] = (
            re.compile(r"(?<!\w)(?:" + "|".join(re.escape(v) for v in values) + r")(?!\w)", re.IGNORECASE)
            if values else None
        )

    def __call__(self, text: Any) -> Any:
        """`text` masked; anything that is not a string (None, numbers, lists) is returned unchanged."""
        if not isinstance(text, str):
            return text
        text = PHONE_OR_ID.sub(mask_number, text)
        return self._values.sub(MASK, text) if self._values is not None else text


def slot_value_masked(masker: Callable[[Any], Any], name: str, value: Any) -> Any:
    """A slot's value as shown: personal slots are masked whole, others like any text."""
    if name in PERSONAL_SLOTS and value not in (None, ""):
        return MASK
    return masker(value)


def no_masking(text: Any) -> Any:
    """The identity, for a transcript a supervisor has asked to reveal."""
    return text
