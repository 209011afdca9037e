"""Reference codes: a prefix and ten digits (nine random, one Damm check digit), easy to say and to key in.

"BK-48291-37506": the prefix says what it is (BK appointment, APP application, RPT report, HO handoff),
the body is digits only so a caller can key it on a phone keypad, the first digit is never 0 (so it
is never read as a phone number), and the last digit is a Damm check digit: every single mistyped
or misheard digit and every swap of two neighbouring digits gives an invalid code. Nine random
digits make 900 million codes of each kind, so a valid one cannot be guessed. References made
before this format (a prefix and six digits, "BK-482913") are still read as they are. Reports and
handoffs, which nobody looks up by reference, still get six-digit references.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Optional, Tuple

from sqlalchemy import select
from sqlalchemy.orm import Session

PREFIXES = {"appointment": "BK", "application": "APP", "report": "RPT", "handoff": "HO"}
RANDOM_DIGITS = 9
LEGACY_DIGITS = 6
BODY_DIGITS = (LEGACY_DIGITS, RANDOM_DIGITS + 1)  # the lengths a reference's body may have
LOOKED_UP = ("appointment", "application")  # citizens look these up: references that cannot be guessed
_PREFIX = "|".join(sorted(PREFIXES.values(), key=len, reverse=True))
_REFERENCE = re.compile(rf"^(?:({_PREFIX})[\s.\-_/]*)?([0-9][0-9\s.\-_/]*)$", re.IGNORECASE)

# Damm's quasigroup of order 10 (weakly totally anti-symmetric): catches all single-digit errors
# and all adjacent transpositions.
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def damm_digit(digits: str) -> str:
    """The Damm check digit of a string of digits ("572" -> "4")."""
    interim = 0
    for digit in digits:
        interim = _DAMM[interim][int(digit)]
    return str(interim)


def damm_valid(digits: str) -> bool:
    """Whether a string of digits ends with its correct Damm check digit."""
    return len(digits) > 1 and damm_digit(digits) == "0"


def format_reference(kind: str, body: str) -> str:
    """The written form of a reference: "BK-48291-37506" (legacy six-digit bodies stay "BK-482913")."""
    grouped = body if len(body) == LEGACY_DIGITS else f"{body[:5]}-{body[5:]}"
    return f"{PREFIXES[kind]}-{grouped}"


def new_reference(kind: str) -> str:
    """A fresh random reference: nine random digits (the first not 0) and a check digit; six digits for reports and handoffs."""
    if kind not in LOOKED_UP:
        return format_reference(kind, str(secrets.randbelow(900000) + 100000))
    random_part = str(secrets.randbelow(9 * 10 ** (RANDOM_DIGITS - 1)) + 10 ** (RANDOM_DIGITS - 1))
    return format_reference(kind, random_part + damm_digit(random_part))


def unused_reference(session: Session, model: Any, kind: str) -> str:
    """A new reference of this kind that no row of `model` (a table with a `reference` column) has yet."""
    while True:
        reference = new_reference(kind)
        if session.scalars(select(model.id).where(model.reference == reference)).first() is None:
            return reference


def parse_reference(text: Optional[str], kind: Optional[str] = None) -> Optional[Tuple[str, str, Optional[str]]]:
    """(kind, body digits, problem) for what was typed or said; None when it is not a reference at all.

    problem is None for a valid reference, "check" for a ten-digit body whose check digit is wrong
    (a typo or a misheard digit). Spaces, dashes, dots and case do not matter; without a prefix
    (digits keyed on a phone) the body is read as `kind`.
    """
    match = _REFERENCE.match((text or "").strip())
    if not match:
        return None
    prefix, body = match.group(1), re.sub(r"\D", "", match.group(2))
    found = next((k for k, p in PREFIXES.items() if prefix and p == prefix.upper()), kind)
    if found is None or (kind is not None and found != kind) or len(body) not in BODY_DIGITS or body[0] == "0":
        return None
    legacy = len(body) == LEGACY_DIGITS
    return found, body, None if legacy or damm_valid(body) else "check"


def normalise_reference(text: Optional[str], kind: Optional[str] = None) -> Optional[str]:
    """ "bk 48291 37506" -> "BK-48291-37506", "bk 123456" -> "BK-123456"; None when malformed, mistyped or of another kind."""
    parsed = parse_reference(text, kind)
    if parsed is None or parsed[2] is not None:
        return None
    return format_reference(parsed[0], parsed[1])


def mistyped_reference(text: Optional[str], kind: Optional[str] = None) -> bool:
    """Whether this has a reference's shape but its check digit is wrong (a typo or a misheard digit)."""
    parsed = parse_reference(text, kind)
    return parsed is not None and parsed[2] == "check"
