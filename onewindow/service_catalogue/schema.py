"""Field checks for catalogue entries; each returns an error message or None."""

from __future__ import annotations

import math
import re
from datetime import time
from typing import Any, Callable, Dict, List, Optional, Tuple

Check = Callable[[Any], Optional[str]]

ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,49}$")  # the database keeps ids of up to 50 characters
HOURS_PATTERN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OFFICE_KINDS = ("service_centre", "rural_point", "mobile_point", "specialist_office")
BENEFIT_PERIODS = ("week", "month", "year", "once")
MAX_AMOUNT = 1_000_000  # in the city currency: the database keeps cents in a 32-bit integer
MAX_WHOLE_NUMBER = 100_000
NAME_LENGTH, LONG_NAME_LENGTH, ADDRESS_LENGTH, CODE_LENGTH = 100, 200, 300, 40  # the database columns' lengths


def identifier(value: Any) -> Optional[str]:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        return "must be a lowercase id (letters, digits, underscore; at most 50), for example passport_new"
    return None


def text(value: Any) -> Optional[str]:
    if not isinstance(value, str) or not value.strip():
        return "must be non-empty text"
    return None


def short_text(limit: int) -> Check:
    """Non-empty text of at most `limit` characters (what its database column holds)."""

    def check(value: Any) -> Optional[str]:
        problem = text(value)
        if problem is None and len(value) > limit:
            return f"must be at most {limit} characters long (it has {len(value)})"
        return problem

    return check


def optional_text(value: Any) -> Optional[str]:
    return None if value is None else text(value)


def texts(value: Any) -> Optional[str]:
    if not isinstance(value, list) or not value:
        return "must be a non-empty list of texts"
    if any(text(item) for item in value):
        return "every item must be non-empty text"
    return None


def aliases(value: Any) -> Optional[str]:
    problem = texts(value)
    if problem:
        return problem
    if any(item != item.strip().lower() for item in value):
        return "aliases must be lowercase, without spaces around them"
    if any(len(item) > LONG_NAME_LENGTH for item in value):
        return f"every alias must be at most {LONG_NAME_LENGTH} characters long"
    return None


def optional_texts(value: Any) -> Optional[str]:
    return None if value in (None, []) else texts(value)


def boolean(value: Any) -> Optional[str]:
    return None if isinstance(value, bool) else "must be true or false"


def amount(value: Any) -> Optional[str]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= MAX_AMOUNT:
        return f"must be a number from 0 to {MAX_AMOUNT:,} (0 means free)"
    return None


def coordinates(value: Any) -> Optional[str]:
    message = "must be {lat: <-90..90>, lon: <-180..180>}, for example {lat: 52.09, lon: 5.12}"
    if not isinstance(value, dict) or set(value) != {"lat", "lon"}:
        return message
    lat, lon = value["lat"], value["lon"]
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (lat, lon)):
        return message
    return None if -90 <= lat <= 90 and -180 <= lon <= 180 else message


def whole_number(minimum: int, maximum: int = MAX_WHOLE_NUMBER) -> Check:
    def check(value: Any) -> Optional[str]:
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            return f"must be a whole number from {minimum} to {maximum:,}"
        return None

    return check


def one_of(*choices: str) -> Check:
    def check(value: Any) -> Optional[str]:
        if value not in choices:
            return f"must be one of: {', '.join(choices)}"
        return None

    return check


def parse_day_hours(value: Any) -> List[Tuple[time, time]]:
    """Parse "08:30-12:00, 13:00-17:00" or "closed"; raises ValueError when malformed."""
    if isinstance(value, str) and value.strip().lower() == "closed":
        return []
    if not isinstance(value, str):
        raise ValueError('must be "HH:MM-HH:MM", several of them separated by commas, or closed')
    periods: List[Tuple[time, time]] = []
    for part in value.split(","):
        match = HOURS_PATTERN.match(part.strip())
        if not match:
            raise ValueError(f'"{part.strip()}" is not like 08:30-17:00')
        opens = time(int(match.group(1)), int(match.group(2)))
        closes = time(int(match.group(3)), int(match.group(4)))
        if closes <= opens:
            raise ValueError(f'"{part.strip()}" closes before it opens')
        if periods and opens < periods[-1][1]:
            raise ValueError(f'"{part.strip()}" overlaps the period before it')
        periods.append((opens, closes))
    return periods


def week_hours(value: Any) -> Optional[str]:
    if not isinstance(value, dict):
        return "must map each day (mon..sun) to hours or closed"
    missing = [day for day in WEEKDAYS if day not in value]
    unknown = [str(day) for day in value if day not in WEEKDAYS]
    if missing or unknown:
        return f"needs exactly the days mon..sun (missing: {missing or 'none'}, unknown: {unknown or 'none'})"
    for day in WEEKDAYS:
        try:
            parse_day_hours(value[day])
        except ValueError as error:
            return f"{day}: {error}"
    return None


def stops(value: Any) -> Optional[str]:
    """Where a mobile point stands: a day (mon..sun) to {place, location}."""
    message = "must map days (mon..sun) to {place: <text>, location: {lat, lon}}"
    if not isinstance(value, dict) or not value:
        return message
    for day, stop in value.items():
        if day not in WEEKDAYS or not isinstance(stop, dict) or set(stop) != {"place", "location"}:
            return message
        problem = text(stop["place"]) or coordinates(stop["location"])
        if problem:
            return f"{day}: {problem}"
    return None


def online(value: Any) -> Optional[str]:
    if not isinstance(value, dict) or boolean(value.get("available")):
        return "must have available: true or false"
    if value["available"] and text(value.get("where")):
        return "must say where (online.where) when available is true"
    return None


def benefit(value: Any) -> Optional[str]:
    """What a service that pays the citizen money pays: {amount, period, basis, up_to (optional)}."""
    message = (
        "must be {amount: <number above 0>, period: "
        + " | ".join(BENEFIT_PERIODS)
        + ", basis: <plain words>, up_to: true or false (optional)}"
    )
    if not isinstance(value, dict) or not {"amount", "period", "basis"} <= set(value) <= {"amount", "period", "basis", "up_to"}:
        return message
    if amount(value["amount"]) or value["amount"] == 0:
        return "amount must be a number above 0, in the city currency"
    problem = one_of(*BENEFIT_PERIODS)(value["period"])
    if problem:
        return f"period {problem}"
    if text(value["basis"]):
        return "basis must say in plain words how the amount is worked out"
    if "up_to" in value and boolean(value["up_to"]):
        return "up_to must be true or false"
    return None


def steps(value: Any) -> Optional[str]:
    if not isinstance(value, list) or not value:
        return "must be a non-empty list of {service, when}"
    for position, step in enumerate(value, start=1):
        if not isinstance(step, dict) or identifier(step.get("service")) or text(step.get("when")):
            return f"step {position} must have a service id and a plain-language 'when'"
    return None


Schema = Dict[str, Tuple[Check, bool]]  # field -> (check, required)

DISTRICT: Schema = {"id": (identifier, True), "name": (short_text(NAME_LENGTH), True), "aliases": (aliases, True)}

CITY: Schema = {
    "name": (short_text(NAME_LENGTH), True),
    "currency": (short_text(30), True),
    "hotline": (lambda v: None if isinstance(v, dict) else "must have number and hours", True),
    "districts": (lambda v: None if isinstance(v, list) and v else "must list the districts", True),
}

HOTLINE: Schema = {"number": (short_text(CODE_LENGTH), True), "hours": (week_hours, True)}

OFFICE: Schema = {
    "id": (identifier, True),
    "name": (short_text(LONG_NAME_LENGTH), True),
    "kind": (one_of(*OFFICE_KINDS), True),
    "district": (identifier, True),
    "address": (short_text(ADDRESS_LENGTH), True),
    "location": (coordinates, True),
    "phone": (short_text(CODE_LENGTH), True),
    "aliases": (aliases, True),
    "accessibility": (optional_texts, False),
    "windows": (whole_number(1), True),
    "slot_minutes": (whole_number(5), True),
    "hours": (week_hours, True),
    "stops": (stops, False),
    "note": (optional_text, False),
}

SERVICE: Schema = {
    "id": (identifier, True),
    "name": (short_text(LONG_NAME_LENGTH), True),
    "aliases": (aliases, True),
    "department": (short_text(LONG_NAME_LENGTH), True),
    "description": (text, True),
    "eligibility": (text, True),
    "documents": (texts, True),
    "fee": (amount, True),
    "fee_note": (optional_text, False),
    "benefit": (benefit, False),
    "processing_days": (whole_number(0), True),
    "online": (online, True),
    "one_visit": (boolean, True),
    "bookable": (boolean, True),
    "offices": (texts, True),
}

LIFE_EVENT: Schema = {
    "id": (identifier, True),
    "name": (short_text(LONG_NAME_LENGTH), True),
    "aliases": (aliases, True),
    "sympathy": (optional_text, False),
    "summary": (text, True),
    "steps": (steps, True),
}

REPORT_CATEGORY: Schema = {
    "id": (identifier, True),
    "name": (short_text(LONG_NAME_LENGTH), True),
    "aliases": (aliases, True),
    "department": (short_text(LONG_NAME_LENGTH), True),
    "urgent": (boolean, True),
}
