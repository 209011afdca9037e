"""Masking personal data in what the console shows and exports, by what it is.

Every page, export (CSV, JSON, NLU YAML) and handoff summary passes text through a `Masker`, which hides:

- e-mail addresses, shown as "••••@••••";
- street addresses ("12 Harbour Street", "4/7 king st"), shown as "•••• (address)";
- phone and ID numbers (digit runs, onewindow.infra.logs.PHONE_OR_ID, and letter-prefixed IDs such as "PA1234567"),
  shown as "•••• 78" (the last two digits, so staff can tell two numbers apart);
- the digits given as proof that a record is the citizen's (the last four of a phone number, the `record_proof`
  slot and any answer to the question for them), shown as "••••" wherever they appear in the conversation;
- names, shown as "••••": the values the conversation gave to name and number slots, each part of such a
  name ("Ms Lopez" for "Maria Lopez"), and names found by pattern in any text of the conversation: a title
  and capitalised words ("Ms Lopez", "Dr. Ana Ruiz"), an introduction ("my name is ana", "I'm Ana", "call me Ana"), and the
  assistant's own echo of a name ("…, for Maria Jones. Shall I book it?"), greetings ("Thank you, Maria").

Dates and times ("2026-12-03", "03.12.2026", "10:30") are not numbers and stay as they are; so do the numbers
and addresses the city publishes (its hotline and offices, from the catalogue).
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from typing import Any, Callable, Dict, FrozenSet, Iterable, List, Optional, Set

from onewindow import settings
from onewindow.infra.logs import PHONE_OR_ID, pseudonym
from onewindow.service_catalogue import load_catalogue

MASK = "••••"
EMAIL_MASK = f"{MASK}@{MASK}"
ADDRESS_MASK = f"{MASK} (address)"
# slots whose values are a person's name or number: masked wherever the value appears in the conversation
NAME_SLOTS = ("citizen_name",)
PROOF_SLOTS = ("record_proof",)  # the last four digits of the phone on a record, given to prove it is the citizen's
NUMBER_SLOTS = ("citizen_phone", "callback_phone", *PROOF_SLOTS)
PERSONAL_SLOTS = NAME_SLOTS + NUMBER_SLOTS
MIN_NAME_LENGTH = 2
MIN_NAME_PART = 3  # parts of a name shorter than this ("de", "Li") are masked only as part of the whole name

EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")  # the local part as RFC 5322 allows it
STREET_TYPES = (
    "street|st|road|rd|avenue|ave|lane|ln|drive|dr|court|ct|place|pl|way|boulevard|blvd|crescent|cres|parade|pde|"
    "terrace|tce|highway|hwy|close|square|sq|grove|gardens|row|walk|strasse|straße|gasse|weg"
)
ADDRESS = re.compile(
    rf"\b\d{{1,5}}[a-z]?(?:\s*/\s*\d{{1,5}}[a-z]?)?,?\s+(?:[^\W\d_][\w'’.-]*\s+){{1,3}}(?:{STREET_TYPES})\b\.?",
    re.IGNORECASE,
)
LETTER_ID = re.compile(r"\b[A-Z]{1,3}\d{6,}\b")
# a date-shaped run that PHONE_OR_ID would otherwise take for a number
DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})|(\d{1,2})[./-](\d{1,2})[./-](\d{4})")
NUMBER = re.compile(rf"(?:{DATE.pattern})(?![\d])|{PHONE_OR_ID.pattern}")
DIGIT_RUN = re.compile(r"\d(?:[\s.-]*\d)*")  # "0137", "0 1 3 7": digits as a citizen types or says them

WORD = r"[A-ZÀ-ÖØ-Þ][^\W\d_]*(?:['’-][^\W\d_]+)*"
ANY_WORD = r"[^\W\d_]+(?:['’-][^\W\d_]+)*"
CAPITALISED = rf"{WORD}(?:\s+{WORD}){{0,2}}"
TITLE_PATTERN = re.compile(rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Madam|Mister|Missus)\.?\s+(?P<name>{CAPITALISED})")
NAME_PATTERNS = (
    TITLE_PATTERN,
    re.compile(
        rf"(?i:\b(?:my name is|my name's|name is|name:|surname is|full name is))\s+(?P<name>{ANY_WORD}(?:\s+{ANY_WORD}){{0,2}})"
    ),
    re.compile(rf"(?i:\b(?:i am|i'm|call me))\s+(?P<name>{CAPITALISED})"),
    re.compile(rf"\bfor (?P<name>{WORD}(?:\s+{WORD}){{0,3}})\. Shall I book it\?"),
    re.compile(rf"(?i:\b(?:thank you|thanks|hello|hi|dear|goodbye|bye)),?\s+(?P<name>{CAPITALISED})"),
)
# capitalised words a pattern may catch that are not names ("I am Unable…", "Hello There")
NOT_NAMES = frozenset(
    "a an and are at be but can could did do does for from good have he her here hi his how i if in is it me my "
    "no not now of ok okay on or our please she so sorry that the there they this to too unable very was we "
    "well what when where who why will with would yes you your looking calling trying here just also "
    "interested new back sure fine glad happy ready still unsure asking writing sir madam".split()
)


@lru_cache(maxsize=1)
def _published() -> "tuple[FrozenSet[str], FrozenSet[str]]":
    catalogue = load_catalogue(settings.catalogue_dir())
    numbers = [catalogue.city["hotline"]["number"], *(office.get("phone") or "" for office in catalogue.offices)]
    addresses = [office.get("address") or "" for office in catalogue.offices]
    return (
        frozenset(re.sub(r"\D", "", number) for number in numbers if number),
        frozenset(_address_key(address) for address in addresses if address),
    )


def public_numbers() -> FrozenSet[str]:
    """The digits of the numbers the city publishes (hotline, offices): service information, shown as they are."""
    return _published()[0]


def _address_key(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text).lower().split())


def _is_public_address(text: str) -> bool:
    key = _address_key(text)
    return any(published.startswith(key) for published in _published()[1])


def _is_date(match: "re.Match[str]") -> bool:
    groups = match.groups()
    year, month, day = (groups[0], groups[1], groups[2]) if groups[0] else (groups[5], groups[4], groups[3])
    if year is None:
        return False
    try:
        day_of = date(int(year), int(month), int(day))
    except ValueError:
        return False
    return 1900 <= day_of.year <= 2200


def _mask_number(match: "re.Match[str]") -> str:
    if _is_date(match):
        return match.group(0)
    digits = re.sub(r"\D", "", match.group(0))
    return match.group(0) if digits in public_numbers() else f"{MASK} {digits[-2:]}"


def _mask_address(match: "re.Match[str]") -> str:
    return match.group(0) if _is_public_address(match.group(0)) else ADDRESS_MASK


def names_in(text: str) -> List[str]:
    """The names the patterns find in `text` (a title and capitalised words, an introduction, an echo)."""
    found: List[str] = []
    for pattern in NAME_PATTERNS:
        for match in pattern.finditer(text):
            words: List[str] = []
            for place, word in enumerate(match.group("name").split()):
                after_a_title = pattern is TITLE_PATTERN and place == 0  # "Ms Now", "Mr Young": a surname, whatever the word
                if word.lower() in NOT_NAMES and not after_a_title:
                    break
                words.append(word)
            if words:
                found.append(" ".join(words))
    return found


def name_values(values: Iterable[str]) -> Set[str]:
    """The values themselves and, for names of several words, each part long enough to identify ("Lopez")."""
    result: Set[str] = set()
    for value in values:
        value = " ".join(str(value).split())
        if len(value) < MIN_NAME_LENGTH:
            continue
        result.add(value)
        if not any(ch.isdigit() for ch in value):
            result.update(
                part for part in re.split(r"[\s,]+", value) if len(part) >= MIN_NAME_PART and part.lower() not in NOT_NAMES
            )
    return result


def _values_pattern(values: Iterable[str]) -> Optional["re.Pattern[str]"]:
    ordered = sorted(set(values), key=len, reverse=True)
    if not ordered:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(v) for v in ordered) + r")(?!\w)", re.IGNORECASE)


class Masker:
    """Masks personal data by kind in any text; `personal_values` are what the conversation's personal slots held,
    `texts` the conversation's other texts (names found there are masked everywhere, not only where found)."""

    def __init__(self, personal_values: Iterable[str] = (), texts: Iterable[str] = ()) -> None:
        values = [str(v) for v in personal_values if v]
        for text in texts:
            if isinstance(text, str):
                values.extend(names_in(text))
        self._names = name_values(values)
        self._pattern = _values_pattern(self._names)

    def __call__(self, text: Any) -> Any:
        """`text` masked; anything that is not a string (None, numbers, lists) is returned unchanged."""
        if not isinstance(text, str):
            return text
        own = names_in(text)
        pattern = _values_pattern(self._names | name_values(own)) if own else self._pattern
        text = EMAIL.sub(EMAIL_MASK, text)
        text = ADDRESS.sub(_mask_address, text)
        text = NUMBER.sub(_mask_number, text)
        text = LETTER_ID.sub(lambda m: f"{MASK} {m.group(0)[-2:]}", text)
        return pattern.sub(MASK, text) if pattern is not None else text


def personal_kinds(text: str) -> List[str]:
    """Which kinds of personal data `text` may be or hold (for a search: e-mail, digits, address, name)."""
    checks = (
        ("email", "@" in text),
        ("digits", any(ch.isdigit() for ch in text)),
        ("address", bool(ADDRESS.search(text))),
        ("name", bool(names_in(text) or re.search(WORD, text))),
    )
    return [kind for kind, present in checks if present]


def search_detail(text: str, in_clear: bool) -> Dict[str, Any]:
    """What the audit log keeps of a search: a salted hash of the text (equal searches can be matched up), its
    length and kinds of personal data, and whether it ran on the text in clear; never the text itself."""
    return {
        "query": pseudonym(f"search:{text.casefold()}"),
        "length": len(text),
        "kinds": personal_kinds(text),
        "in_clear": in_clear,
    }


def slot_personal_values(name: str, value: Any) -> List[str]:
    """What of a personal slot's value is masked wherever it appears: the digits of a proof (not its "linked"
    or "refused"), else the value itself."""
    if not isinstance(value, str) or not value.strip():
        return []
    return DIGIT_RUN.findall(value) if name in PROOF_SLOTS else [value]


def slot_value_masked(masker: Callable[[Any], Any], name: str, value: Any) -> Any:
    """A slot's value as shown: personal slots are masked whole, others like any text (dates stay dates)."""
    if name in PERSONAL_SLOTS and value not in (None, ""):
        return MASK
    return masker(value)


def no_masking(text: Any) -> Any:
    """The identity, for a transcript a supervisor has asked to reveal."""
    return text
