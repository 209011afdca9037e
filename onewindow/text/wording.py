"""Plain-language wording shared by every channel: short, and easy to read aloud."""

from __future__ import annotations

from datetime import date, time
from typing import Iterable, List, Optional, Sequence, Tuple

from onewindow.text.channel_wording import Abilities, Prompt, abilities_for
from onewindow.text.dates import WEEKDAY_NAMES, spoken_time


def join_words(items: Sequence[str], last: str = "and") -> str:
    """["a", "b", "c"] -> "a, b and c"."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def money(amount: float, currency: str) -> str:
    if amount == 0:
        return "free"
    whole = int(amount) if float(amount).is_integer() else amount
    return f"{whole} {currency}"


def processing_time(days: int) -> str:
    if days == 0:
        return "the same day"
    if days == 1:
        return "one working day"
    return f"about {days} working days"


def periods_text(periods: Iterable[Tuple[time, time]]) -> str:
    """[(8:30, 12:00), (13:00, 17:00)] -> "8:30 am to 12 pm and 1 pm to 5 pm"."""
    parts = [f"{spoken_time(opens)} to {spoken_time(closes)}" for opens, closes in periods]
    return join_words(parts) if parts else "closed"


def week_text(hours: dict) -> str:
    """Opening hours for a week, grouping days with the same hours."""
    groups: List[Tuple[List[int], str]] = []
    for weekday in range(7):
        text = periods_text(hours.get(weekday, []))
        if groups and groups[-1][1] == text and groups[-1][0][-1] == weekday - 1:
            groups[-1][0].append(weekday)
        else:
            groups.append(([weekday], text))
    lines = []
    for days, text in groups:
        first, last = WEEKDAY_NAMES[days[0]].title(), WEEKDAY_NAMES[days[-1]].title()
        label = first if len(days) == 1 else f"{first} to {last}"
        lines.append(f"{label}: {text}")
    return ". ".join(lines) + "."


def is_open_at(hours: dict, day: date, moment: time) -> bool:
    return any(opens <= moment < closes for opens, closes in hours.get(day.weekday(), []))


def distance_text(km: float) -> str:
    """1.234 -> "1.2 kilometres"; under one kilometre in metres, rounded to 50."""
    if km < 1:
        return f"{max(50, round(km * 1000 / 50) * 50)} metres"
    return f"{km:.1f} kilometres"


TECHNICAL_APOLOGY = Prompt(
    "Sorry, I cannot answer right now because of a technical problem. Please try again in a few minutes.",
    chat="If it is urgent, call the city hotline on {hotline}, or visit any service centre.",
    voice="If it is urgent, please visit any service centre.",
    keypad="If it is urgent, please visit any service centre.",
)


def technical_apology(hotline: str, abilities: Optional[Abilities] = None) -> str:
    """What a citizen hears when a part of the assistant is down: never silence, always a way to a person (a chat by default)."""
    return TECHNICAL_APOLOGY.render(abilities or abilities_for("", None), hotline=hotline)
