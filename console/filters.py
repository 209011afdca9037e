"""Validating the query parameters of the transcript list, its exports, the analytics and failed look-ups pages.

Every parameter is checked against a fixed list or a length limit; anything else raises InvalidFilter
with a message the page shows (answered with 400, never a 500).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Collection, Dict, List, Mapping, Optional, Tuple

import yaml

from onewindow.channels.senders import IDENTIFIED_CHANNELS, REST
from onewindow.settings import PROJECT_ROOT

CHANNELS = (*IDENTIFIED_CHANNELS, REST)
FALLBACK_INTENT = "nlu_fallback"
# how a conversation ended (conversations.outcome_of): handed off to a person, left after a message the
# assistant did not understand, or answered by the assistant
OUTCOMES: Dict[str, str] = {
    "resolved": "resolved by the assistant",
    "handed_off": "handed off to a person",
    "abandoned": "not understood (left after a fallback)",
}
HANDOFF_REASONS = ("citizen_request", "low_confidence", "urgent_report", "distress", "keypad")
REVIEWED = ("yes", "no")
TAG = re.compile(r"^[\w][\w \-]{0,39}$")
MAX_TEXT = 200
MAX_PAGE = 100_000
WHOLE = re.compile(r"[0-9]{1,6}")
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2199, 12, 31)  # the dates a conversation can have
ANALYTICS_DEFAULT_DAYS = 30
MAX_RANGE_DAYS = 366


class InvalidFilter(ValueError):
    """A query parameter is not valid; the message says which and why."""


@lru_cache(maxsize=1)
def domain_intents(domain: Path = PROJECT_ROOT / "domain.yml") -> Tuple[str, ...]:
    """The intents declared in domain.yml (read once)."""
    declared = yaml.safe_load(domain.read_text()).get("intents") or []
    return tuple(next(iter(item)) if isinstance(item, dict) else str(item) for item in declared)


def known_intents() -> Tuple[str, ...]:
    """Intents a user message can carry: the domain's and Rasa's fallback."""
    return (*domain_intents(), FALLBACK_INTENT)


def parse_day(args: Mapping[str, str], name: str) -> Optional[date]:
    value = (args.get(name) or "").strip()
    if not value:
        return None
    try:
        if not DAY.fullmatch(value):
            raise ValueError(value)
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidFilter(f"'{name}' must be a date written YYYY-MM-DD") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise InvalidFilter(f"'{name}' must be a date from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}")
    return day


def parse_choice(args: Mapping[str, str], name: str, choices: Collection[str]) -> str:
    value = (args.get(name) or "").strip()
    if value and value not in choices:
        raise InvalidFilter(f"'{name}' must be one of: {', '.join(choices)}")
    return value


def parse_tag(value: str) -> str:
    """A tag as stored: trimmed, lower case, letters, digits, spaces, - and _, at most 40 characters."""
    tag = " ".join(value.split()).lower()
    if not TAG.match(tag):
        raise InvalidFilter("a tag is 1 to 40 letters, digits, spaces, '-' or '_'")
    return tag


def parse_whole(args: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    """A whole number from 1 to `maximum` in `args[name]`, `default` when it is missing or empty."""
    value = (args.get(name) or str(default)).strip()
    if not WHOLE.fullmatch(value) or not 1 <= int(value) <= maximum:
        raise InvalidFilter(f"'{name}' must be a whole number from 1 to {maximum}")
    return int(value)


def parse_page(args: Mapping[str, str]) -> int:
    return parse_whole(args, "page", 1, MAX_PAGE)


def day_start(day: date) -> float:
    """Seconds since the epoch at the start of `day` (UTC), the unit of Rasa's event timestamps."""
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()


def utc_today() -> date:
    return datetime.now(timezone.utc).date()


@dataclass(frozen=True)
class ConversationFilter:
    date_from: Optional[date] = None
    date_to: Optional[date] = None
    channel: str = ""
    intent: str = ""
    outcome: str = ""
    reason: str = ""
    tag: str = ""
    text: str = ""
    reviewed: str = ""

    def since(self) -> Optional[float]:
        return day_start(self.date_from) if self.date_from else None

    def until(self) -> Optional[float]:
        """The end of the range (exclusive): the start of the day after `date_to`."""
        return day_start(self.date_to + timedelta(days=1)) if self.date_to else None

    def params(self) -> Dict[str, str]:
        """The filter as query parameters (empty ones left out), for links to pages and exports."""
        names = {"date_from": "from", "date_to": "to", "text": "q"}
        return {names.get(key, key): str(value) for key, value in asdict(self).items() if value}

    def active(self) -> bool:
        return bool(self.params())


def parse_filter(args: Mapping[str, str]) -> ConversationFilter:
    """The transcript filter in `args` (from, to, channel, intent, outcome, reason, tag, q, reviewed)."""
    date_from, date_to = parse_day(args, "from"), parse_day(args, "to")
    if date_from and date_to and date_to < date_from:
        raise InvalidFilter("'to' must not be before 'from'")
    tag = (args.get("tag") or "").strip()
    text = (args.get("q") or "").strip()
    if len(text) > MAX_TEXT:
        raise InvalidFilter(f"the search text must be at most {MAX_TEXT} characters")
    return ConversationFilter(
        date_from=date_from,
        date_to=date_to,
        channel=parse_choice(args, "channel", CHANNELS),
        intent=parse_choice(args, "intent", known_intents()),
        outcome=parse_choice(args, "outcome", OUTCOMES),
        reason=parse_choice(args, "reason", HANDOFF_REASONS),
        tag=parse_tag(tag) if tag else "",
        text=text,
        reviewed=parse_choice(args, "reviewed", REVIEWED),
    )


def parse_range(args: Mapping[str, str], default_days: int = ANALYTICS_DEFAULT_DAYS) -> Tuple[date, date]:
    """The analytics date range: `from` and `to` (inclusive), by default the last `default_days` days."""
    date_to = parse_day(args, "to") or utc_today()
    date_from = parse_day(args, "from") or date_to - timedelta(days=default_days - 1)
    if date_to < date_from:
        raise InvalidFilter("'to' must not be before 'from'")
    if (date_to - date_from).days >= MAX_RANGE_DAYS:
        raise InvalidFilter(f"the range can be at most {MAX_RANGE_DAYS} days")
    return date_from, date_to


def tags_from_text(value: str) -> List[str]:
    """Comma-separated tags from a form field, each validated, duplicates dropped, at most 10."""
    tags: List[str] = []
    for part in value.split(","):
        if part.strip():
            tag = parse_tag(part)
            if tag not in tags:
                tags.append(tag)
    if len(tags) > 10:
        raise InvalidFilter("at most 10 tags")
    return tags
