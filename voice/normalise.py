"""What a caller said, made ready for the NLU: spoken digits, reference codes, dates and times as written."""

from __future__ import annotations

from functools import partial
from typing import Callable, List, Optional, Tuple

from onewindow.backend.references import BODY_DIGITS, PREFIXES, normalise_reference
from onewindow.text.dates import MONTH_NAMES, NUMBER_WORDS
from onewindow.text.dates import ORDINAL_WORDS as ORDINALS

Found = Optional[Tuple[str, int]]  # (the written form, the index of the first word after it)

DIGITS = {"zero": "0", "nought": "0", "oh": "0", "o": "0", **{w: str(n) for w, n in NUMBER_WORDS.items() if n < 10}}
REPEATS = {"double": 2, "triple": 3}
LETTER_NAMES = {
    "bee": "b",
    "be": "b",
    "kay": "k",
    "ay": "a",
    "eh": "a",
    "pee": "p",
    "pea": "p",
    "ar": "r",
    "are": "r",
    "tee": "t",
    "tea": "t",
    "aitch": "h",
    "haitch": "h",
    "oh": "o",
}
CODE_PREFIXES = {prefix.lower() for prefix in PREFIXES.values()}
DASHES = ("dash", "hyphen")
TEENS = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50}
ORDINAL_UNITS = {word: value for word, value in ORDINALS.items() if value < 10}
ORDINAL_WORDS = {
    **ORDINAL_UNITS,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "thirteenth": 13,
    "fourteenth": 14,
    "fifteenth": 15,
    "sixteenth": 16,
    "seventeenth": 17,
    "eighteenth": 18,
    "nineteenth": 19,
    "twentieth": 20,
    "thirtieth": 30,
}
MERIDIEMS = {"am": "am", "a.m": "am", "pm": "pm", "p.m": "pm"}
PAST_MINUTES = {"quarter": 15, "half": 30, "five": 5, "ten": 10, "twenty": 20}
EDGE_PUNCTUATION = '.,!?;:"()'


def _key(word: str) -> str:
    """A word as compared: lowercase, without the punctuation around it."""
    return word.lower().strip(EDGE_PUNCTUATION)


def _digit(keys: List[str], index: int) -> Optional[str]:
    """The digits one word stands for: "four" -> "4", "482" -> "482"."""
    key = keys[index] if index < len(keys) else ""
    return key if key.isdigit() else DIGITS.get(key)


def _digit_run(keys: List[str], index: int) -> Tuple[str, int]:
    """(digits, next index) of the spoken digits from index: "double five two" -> "552"."""
    digits = ""
    while index < len(keys):
        repeat = REPEATS.get(keys[index])
        one = _digit(keys, index + 1) if repeat else _digit(keys, index)
        if one is None or (repeat and len(one) != 1):
            break
        digits += one * (repeat or 1)
        index += 2 if repeat else 1
    return digits, index


def _number_run(keys: List[str], index: int, at_least: int) -> Found:
    """Spoken digits of at least `at_least` words (or any with double/triple) as one number."""
    digits, end = _digit_run(keys, index)
    repeated = any(keys[i] in REPEATS for i in range(index, end))
    starts_with_oh = keys[index] in ("oh", "o")  # "oh one more thing" is not a number
    if not digits or (end - index < at_least and not repeated) or (starts_with_oh and end - index < 3):
        return None
    return digits, end


def _letters(key: str) -> Optional[str]:
    """The letters a word spells: "b" -> "b", "kay" -> "k", "bk" -> "bk"."""
    if key in CODE_PREFIXES or (len(key) == 1 and key.isalpha()):
        return key
    return LETTER_NAMES.get(key)


def _reference(keys: List[str], index: int) -> Found:
    """ "b k four eight two nine one three" (or "bee kay ...", "bk ...") -> "BK-482913"; ten digits -> "BK-48291-37506"."""
    letters = ""
    for end in range(index, min(index + 3, len(keys))):
        letter = _letters(keys[end])
        if letter is None:
            return None
        letters += letter
        if letters in CODE_PREFIXES:
            start = end + 2 if end + 1 < len(keys) and keys[end + 1] in DASHES else end + 1
            digits, after = _digit_run(keys, start)
            if len(digits) in BODY_DIGITS:  # written as the assistant writes it; a mistyped one as heard
                return normalise_reference(letters + digits) or f"{letters.upper()}-{digits}", after
    return None


def _small_number(keys: List[str], index: int, highest: int) -> Tuple[Optional[int], int]:
    """(1..highest said as words or digits, next index): "twenty four" -> 24."""
    key = keys[index] if index < len(keys) else ""
    value: Optional[int]
    if key.isdigit():
        value, end = int(key), index + 1
    elif key in TENS:
        unit = NUMBER_WORDS.get(keys[index + 1], 10) if index + 1 < len(keys) else 10
        value, end = (TENS[key] + unit, index + 2) if unit < 10 else (TENS[key], index + 1)
    else:
        value, end = {**NUMBER_WORDS, **TENS, **TEENS}.get(key), index + 1
    return (value, end) if value is not None and 1 <= value <= highest else (None, index)


def _ordinal(keys: List[str], index: int) -> Tuple[Optional[int], int]:
    """(a day said as an ordinal, next index): "twenty fourth" -> 24, "24th" -> 24."""
    key = keys[index] if index < len(keys) else ""
    if key[:-2].isdigit() and key[-2:] in ("st", "nd", "rd", "th"):
        return int(key[:-2]), index + 1
    if key in ("twenty", "thirty") and index + 1 < len(keys) and keys[index + 1] in ORDINAL_UNITS:
        return TENS[key] + ORDINAL_UNITS[keys[index + 1]], index + 2
    return ORDINAL_WORDS.get(key), index + 1


def _month(keys: List[str], index: int) -> Optional[str]:
    """ "November" when the word at index names a month."""
    key = keys[index] if index < len(keys) else ""
    return key.title() if key in MONTH_NAMES else None


def _date(keys: List[str], index: int) -> Found:
    """ "the twenty fourth of november", "november twenty fourth", "24th of november" -> "24 November"."""
    start = index + 1 if keys[index] == "the" else index
    day, end = _ordinal(keys, start)
    cardinal = day is None
    if cardinal:
        day, end = _small_number(keys, start, 31)
    if day is not None and day <= 31:
        of = end < len(keys) and keys[end] == "of"
        month = _month(keys, end + of)
        if month and not (cardinal and month == "May" and not of):  # "one may ask" is not a date
            return f"{day} {month}", end + of + 1
    month = _month(keys, index)
    if month is None:
        return None
    start = index + 2 if index + 1 < len(keys) and keys[index + 1] == "the" else index + 1
    day, end = _ordinal(keys, start)
    if day is None and (month != "May" or start > index + 1):  # "may one ..." is rarely a date
        day, end = _small_number(keys, start, 31)
    return (f"{day} {month}", end) if day is not None and day <= 31 else None


def _meridiem(keys: List[str], index: int) -> Tuple[str, int]:
    """(" am" or " pm" when said next, next index): "pm", "p.m.", "p m"."""
    key = keys[index] if index < len(keys) else ""
    if key in MERIDIEMS:
        return f" {MERIDIEMS[key]}", index + 1
    pair = "".join(keys[index : index + 2])
    if pair in ("am", "pm"):
        return f" {pair}", index + 2
    return "", index


def _minutes(keys: List[str], index: int) -> Tuple[Optional[int], int]:
    """(minutes after an hour, next index): "thirty" -> 30, "oh five" -> 5, "o'clock" -> 0."""
    key = keys[index] if index < len(keys) else ""
    if key in ("o'clock", "oclock"):
        return 0, index + 1
    if key == "o" and index + 1 < len(keys) and keys[index + 1] == "clock":
        return 0, index + 2
    if key in ("oh", "o") and index + 1 < len(keys) and keys[index + 1] in DIGITS and DIGITS[keys[index + 1]] != "0":
        return int(DIGITS[keys[index + 1]]), index + 2
    if key in TENS or key in TEENS:
        return _small_number(keys, index, 59)
    return None, index


def _time(keys: List[str], index: int) -> Found:
    """ "half past two" -> "2:30", "two thirty pm" -> "2:30 pm", "ten o'clock" -> "10:00", "ten am" -> "10 am"."""
    key = keys[index]
    if key in PAST_MINUTES and index + 2 < len(keys) and keys[index + 1] in ("past", "to"):
        hour = NUMBER_WORDS.get(keys[index + 2])
        if hour is None or (keys[index + 1] == "to" and key != "quarter"):
            return None
        minute: Optional[int] = PAST_MINUTES[key]
        if keys[index + 1] == "to":
            hour, minute = (hour - 2) % 12 + 1, 45
        meridiem, end = _meridiem(keys, index + 3)
        return f"{hour}:{minute:02d}{meridiem}", end
    hour = NUMBER_WORDS.get(key) or (int(key) if key.isdigit() and 1 <= int(key) <= 12 else None)
    if hour is None:
        return None
    minute, end = _minutes(keys, index + 1)
    meridiem, after = _meridiem(keys, end)
    if minute is not None:
        return f"{hour}:{minute:02d}{meridiem}", after
    return (f"{hour}{meridiem}", after) if meridiem and not key.isdigit() else None


def _trailing_punctuation(word: str) -> str:
    """What ends a word ("three," -> ","), without the dot of "a.m." and "p.m."."""
    tail = word[len(word.rstrip(EDGE_PUNCTUATION)) :]
    return tail[1:] if _key(word) in MERIDIEMS and tail.startswith(".") else tail


# in this order: a long run of digits is a phone number before its first words can be a time
READERS: Tuple[Callable[[List[str], int], Found], ...] = (
    _reference,
    partial(_number_run, at_least=4),
    _time,
    _date,
    partial(_number_run, at_least=2),
)


def normalise_caller_text(text: str) -> str:
    """Spoken digits, reference codes, dates and times written out; every other word left as it was."""
    words = text.split()
    keys = [_key(word) for word in words]
    out: List[str] = []
    index = 0
    while index < len(words):
        found = next((result for read in READERS if (result := read(keys, index))), None)
        if found is None:
            out.append(words[index])
            index += 1
            continue
        written, index = found
        out.append(written + _trailing_punctuation(words[index - 1]))
    return " ".join(out)
