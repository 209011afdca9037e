"""Understand the dates and times citizens say, and say dates back in plain words."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Optional, Tuple

from onewindow.text.typos import corrected

WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTH_NAMES = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}
ORDINAL_WORDS = {  # "the second one", "the third of May"
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
}
MINUTE_WORDS = {"fifteen": 15, "thirty": 30, "forty five": 45, "forty-five": 45, "o'clock": 0}
PERIODS = {"morning": (time(0, 0), time(12, 0)), "afternoon": (time(12, 0), time(23, 59))}


@dataclass(frozen=True)
class DateAnswer:
    """A parsed date, or why it could not be one ("impossible" or "unknown")."""

    value: Optional[date] = None
    problem: Optional[str] = None


@dataclass(frozen=True)
class TimeAnswer:
    """An exact time, or a part of the day (morning, afternoon), or nothing understood."""

    value: Optional[time] = None
    period: Optional[Tuple[time, time]] = None


def weekday_of(word: str) -> Optional[int]:
    """0 for monday ... 6 for sunday, also when misspelt ("tusday", "wendesday"); else None."""
    word = word.lower()
    name = word if word in WEEKDAY_NAMES else corrected(word, WEEKDAY_NAMES)
    return WEEKDAY_NAMES.index(name) if name else None


def _month(word: str) -> Optional[int]:
    word = word.lower().rstrip(".")
    for number, name in enumerate(MONTH_NAMES, start=1):
        if len(word) >= 3 and name.startswith(word):
            return number
    return None


def _build(year: int, month: int, day: int) -> DateAnswer:
    try:
        return DateAnswer(date(year, month, day))
    except ValueError:
        return DateAnswer(problem="impossible")


def _day_month(day: int, month: int, year: Optional[int], today: date) -> DateAnswer:
    if year is not None:
        return _build(year if year > 99 else 2000 + year, month, day)
    answer = _build(today.year, month, day)
    if answer.value and answer.value < today:
        answer = _build(today.year + 1, month, day)
    if answer.problem and month == 2 and day == 29:
        year = today.year + 1
        while not calendar.isleap(year):
            year += 1
        return _build(year, month, day)
    return answer


def parse_date(text: str, today: date) -> DateAnswer:
    """Parse "tomorrow", "next friday", "25 december", "25/12/2026", "2026-12-25"..."""
    words = re.sub(r"[,]", " ", text.lower()).split()
    cleaned = " ".join(w for w in words if w not in ("on", "the", "of"))
    cleaned = re.sub(r"(\d+)(st|nd|rd|th)\b", r"\1", cleaned)
    if cleaned in ("today", "now"):
        return DateAnswer(today)
    if cleaned == "tomorrow":
        return DateAnswer(today + timedelta(days=1))
    if cleaned in ("day after tomorrow", "after tomorrow"):
        return DateAnswer(today + timedelta(days=2))
    match = re.fullmatch(r"(?:(next|this|coming)\s+)?([a-z]+)", cleaned)
    if match and (weekday := weekday_of(match.group(2))) is not None:
        ahead = (weekday - today.weekday()) % 7
        return DateAnswer(today + timedelta(days=ahead or 7))
    match = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", cleaned)
    if match:
        return _build(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    match = re.fullmatch(r"(\d{1,2})[/.](\d{1,2})(?:[/.](\d{2}|\d{4}))?", cleaned)
    if match:
        year = int(match.group(3)) if match.group(3) else None
        return _day_month(int(match.group(1)), int(match.group(2)), year, today)
    match = re.fullmatch(r"(\d{1,2})\s+([a-z.]+)(?:\s+(\d{4}))?", cleaned)
    if match and (month := _month(match.group(2))):
        year = int(match.group(3)) if match.group(3) else None
        return _day_month(int(match.group(1)), month, year, today)
    match = re.fullmatch(r"([a-z.]+)\s+(\d{1,2})(?:\s+(\d{4}))?", cleaned)
    if match and (month := _month(match.group(1))):
        year = int(match.group(3)) if match.group(3) else None
        return _day_month(int(match.group(2)), month, year, today)
    return DateAnswer(problem="unknown")


def _hour_for_office(hour: int, meridiem: Optional[str]) -> Optional[int]:
    if meridiem in ("pm", "p.m.") and hour < 12:
        hour += 12
    elif meridiem in ("am", "a.m.") and hour == 12:
        hour = 0
    elif meridiem is None and 1 <= hour <= 7:
        hour += 12  # "at 2" means 2 in the afternoon for an office
    return hour if 0 <= hour <= 23 else None


def parse_time(text: str) -> TimeAnswer:
    """Parse "10am", "10:30", "2.15 pm", "half past ten", "noon", "morning"..."""
    cleaned = " ".join(text.lower().replace("at ", " ").split())
    if cleaned in PERIODS:
        return TimeAnswer(period=PERIODS[cleaned])
    if cleaned in ("noon", "midday", "12 noon"):
        return TimeAnswer(time(12, 0))
    for word, number in NUMBER_WORDS.items():
        cleaned = re.sub(rf"\b{word}\b", str(number), cleaned)
    for word, minutes in MINUTE_WORDS.items():
        cleaned = re.sub(rf"(\d)\s+{word}\b", rf"\1:{minutes:02d}", cleaned)
    match = re.fullmatch(r"(half|quarter) past (\d{1,2})(?:\s*(am|pm|a\.m\.|p\.m\.))?", cleaned)
    if match:
        hour = _hour_for_office(int(match.group(2)), match.group(3))
        minute = 30 if match.group(1) == "half" else 15
        return TimeAnswer(time(hour, minute)) if hour is not None else TimeAnswer()
    match = re.fullmatch(r"(\d{1,2})(?:[:.](\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)?", cleaned)
    if match:
        hour = _hour_for_office(int(match.group(1)), match.group(3))
        minute = int(match.group(2) or 0)
        if hour is not None and minute < 60:
            return TimeAnswer(time(hour, minute))
    return TimeAnswer()


def spoken_date(value: date) -> str:
    """ "Monday 30 November" — reads naturally aloud and in chat."""
    return f"{WEEKDAY_NAMES[value.weekday()].title()} {value.day} {MONTH_NAMES[value.month - 1].title()}"


def spoken_time(value: time) -> str:
    """ "10:30 am", "2 pm"."""
    hour = value.hour % 12 or 12
    suffix = "am" if value.hour < 12 else "pm"
    return f"{hour} {suffix}" if value.minute == 0 else f"{hour}:{value.minute:02d} {suffix}"


def spoken_datetime(value: datetime) -> str:
    return f"{spoken_date(value.date())} at {spoken_time(value.time())}"
