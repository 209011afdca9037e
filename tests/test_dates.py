"""Dates and times as citizens say them (onewindow.text.dates), and the plain wording helpers (onewindow.text.wording)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Dict, List, Tuple

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from onewindow.text.dates import WEEKDAY_NAMES, parse_date, parse_time, spoken_date, spoken_datetime, spoken_time
from onewindow.text.typos import typo_distance
from onewindow.text.wording import is_open_at, join_words, money, periods_text, processing_time, week_text

WEDNESDAY = date(2026, 11, 25)
FRIDAY = 4


def test_fixed_today_is_a_wednesday() -> None:
    assert WEDNESDAY.weekday() == 2


# --- parse_date -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "days_ahead"),
    [("today", 0), ("Today", 0), ("tomorrow", 1), ("day after tomorrow", 2), ("the day after tomorrow", 2)],
)
def test_relative_days(said: str, days_ahead: int) -> None:
    assert parse_date(said, WEDNESDAY).value == WEDNESDAY + timedelta(days=days_ahead)


@pytest.mark.parametrize("said", ["friday", "Friday", "next friday", "this friday", "on friday"])
def test_weekday_is_the_coming_one(said: str) -> None:
    value = parse_date(said, WEDNESDAY).value
    assert value is not None and value.weekday() == FRIDAY
    assert 0 < (value - WEDNESDAY).days < 7


@pytest.mark.parametrize("said", ["monday", "next monday"])
def test_weekday_earlier_in_the_week_is_next_week(said: str) -> None:
    assert parse_date(said, WEDNESDAY).value == date(2026, 11, 30)


def test_todays_weekday_means_a_week_later() -> None:
    assert parse_date("wednesday", WEDNESDAY).value == WEDNESDAY + timedelta(days=7)


@pytest.mark.parametrize(
    "said",
    [
        "25 december",
        "december 25th",
        "December 25",
        "25th of December",
        "the 25th of december",
        "25 dec",
        "25/12",
        "25.12",
        "25/12/2026",
        "25/12/26",
        "2026-12-25",
        "25 december 2026",
    ],
)
def test_christmas_in_every_format(said: str) -> None:
    answer = parse_date(said, WEDNESDAY)
    assert answer.value == date(2026, 12, 25) and answer.problem is None


@pytest.mark.parametrize("said", ["3 march", "march 3rd", "3/3"])
def test_date_earlier_in_the_year_rolls_to_next_year(said: str) -> None:
    assert parse_date(said, WEDNESDAY).value == date(2027, 3, 3)


def test_explicit_year_is_kept_even_if_past() -> None:
    assert parse_date("3/3/2026", WEDNESDAY).value == date(2026, 3, 3)


def test_today_written_as_a_date_stays_this_year() -> None:
    assert parse_date("25 november", WEDNESDAY).value == WEDNESDAY


@pytest.mark.parametrize("said", ["31 february", "february 30", "2026-02-30", "31/4", "32/12", "13/25", "29 february 2027"])
def test_impossible_dates(said: str) -> None:
    answer = parse_date(said, WEDNESDAY)
    assert answer.value is None and answer.problem == "impossible"


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 11, 25), date(2028, 2, 29)),
        (date(2028, 1, 10), date(2028, 2, 29)),
        (date(2028, 3, 1), date(2032, 2, 29)),
        (date(2096, 3, 1), date(2104, 2, 29)),
    ],
)
def test_29_february_means_the_next_leap_day(today: date, expected: date) -> None:
    assert parse_date("29 february", today).value == expected


@pytest.mark.parametrize("said", ["", "blah", "next month", "soon", "25 blah", "someday", "12-25"])
def test_unknown_dates(said: str) -> None:
    answer = parse_date(said, WEDNESDAY)
    assert answer.value is None and answer.problem == "unknown"


# --- parse_time -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("10am", time(10, 0)),
        ("10 am", time(10, 0)),
        ("10:30", time(10, 30)),
        ("2.15 pm", time(14, 15)),
        ("14:00", time(14, 0)),
        ("ten am", time(10, 0)),
        ("ten thirty", time(10, 30)),
        ("half past ten", time(10, 30)),
        ("quarter past two", time(14, 15)),
        ("noon", time(12, 0)),
        ("midday", time(12, 0)),
        ("12 pm", time(12, 0)),
        ("at 9", time(9, 0)),
        ("2", time(14, 0)),
        ("3:45", time(15, 45)),
        ("9:30 a.m.", time(9, 30)),
    ],
)
def test_exact_times(said: str, expected: time) -> None:
    answer = parse_time(said)
    assert answer.value == expected and answer.period is None


def test_morning_is_a_period_before_noon() -> None:
    answer = parse_time("morning")
    assert answer.value is None and answer.period is not None
    opens, closes = answer.period
    assert opens <= time(9, 0) < closes and closes <= time(12, 0)


def test_afternoon_is_a_period_after_noon() -> None:
    answer = parse_time("afternoon")
    assert answer.value is None and answer.period is not None
    assert answer.period[0] >= time(12, 0) and answer.period[0] <= time(15, 0) < answer.period[1]


@pytest.mark.parametrize("said", ["garbage", "", "25:00", "10:75", "whenever"])
def test_times_not_understood(said: str) -> None:
    answer = parse_time(said)
    assert answer.value is None and answer.period is None


# --- spoken forms ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "spoken"),
    [
        (date(2026, 11, 30), "Monday 30 November"),
        (date(2026, 12, 25), "Friday 25 December"),
        (date(2027, 1, 1), "Friday 1 January"),
    ],
)
def test_spoken_date(value: date, spoken: str) -> None:
    assert spoken_date(value) == spoken


@pytest.mark.parametrize(
    ("value", "spoken"),
    [
        (time(10, 30), "10:30 am"),
        (time(14, 0), "2 pm"),
        (time(12, 0), "12 pm"),
        (time(0, 5), "12:05 am"),
        (time(9, 5), "9:05 am"),
    ],
)
def test_spoken_time(value: time, spoken: str) -> None:
    assert spoken_time(value) == spoken


def test_spoken_datetime_joins_date_and_time() -> None:
    assert spoken_datetime(datetime(2026, 11, 30, 14, 15)) == "Monday 30 November at 2:15 pm"


@pytest.mark.parametrize("value", [time(h, m) for h in range(24) for m in (0, 15, 30, 45)])
def test_spoken_time_is_understood_again(value: time) -> None:
    assert parse_time(spoken_time(value)).value == value


@pytest.mark.parametrize("days", [0, 1, 6, 40, 200])
def test_spoken_date_without_weekday_is_understood_again(days: int) -> None:
    value = WEDNESDAY + timedelta(days=days)
    said = spoken_date(value).split(" ", 1)[1]  # "30 November"
    assert parse_date(said, WEDNESDAY).value == value


# --- wording ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "joined"),
    [([], ""), (["a"], "a"), (["a", "b"], "a and b"), (["a", "b", "c"], "a, b and c")],
)
def test_join_words(items: List[str], joined: str) -> None:
    assert join_words(items) == joined


def test_join_words_with_or() -> None:
    assert join_words(["New passport", "Passport renewal"], last="or") == "New passport or Passport renewal"


@pytest.mark.parametrize(
    ("amount", "text"), [(0, "free"), (0.0, "free"), (25, "25 dollars"), (120.0, "120 dollars"), (12.5, "12.5 dollars")]
)
def test_money(amount: float, text: str) -> None:
    assert money(amount, "dollars") == text


@pytest.mark.parametrize(("days", "text"), [(0, "the same day"), (1, "one working day"), (10, "about 10 working days")])
def test_processing_time(days: int, text: str) -> None:
    assert processing_time(days) == text


def test_periods_text_with_a_lunch_break() -> None:
    periods = [(time(8, 30), time(12, 0)), (time(13, 0), time(17, 0))]
    assert periods_text(periods) == "8:30 am to 12 pm and 1 pm to 5 pm"


def test_periods_text_closed() -> None:
    assert periods_text([]) == "closed"


Hours = Dict[int, List[Tuple[time, time]]]
OFFICE_HOURS: Hours = {
    **{day: [(time(8, 30), time(17, 0))] for day in range(5)},
    5: [(time(9, 0), time(13, 0))],
    6: [],
}


def test_week_text_groups_consecutive_days_with_same_hours() -> None:
    assert week_text(OFFICE_HOURS) == ("Monday to Friday: 8:30 am to 5 pm. Saturday: 9 am to 1 pm. Sunday: closed.")


def test_week_text_does_not_group_days_that_are_apart() -> None:
    hours: Hours = {0: [(time(9, 0), time(12, 0))], 1: [], 2: [(time(9, 0), time(12, 0))]}
    text = week_text(hours)
    assert text.startswith("Monday: 9 am to 12 pm. Tuesday: closed. Wednesday: 9 am to 12 pm.")
    assert text.endswith("Thursday to Sunday: closed.")


@pytest.mark.parametrize(
    ("moment", "is_open"),
    [(time(8, 29), False), (time(8, 30), True), (time(16, 59), True), (time(17, 0), False)],
)
def test_is_open_at_on_a_weekday(moment: time, is_open: bool) -> None:
    assert is_open_at(OFFICE_HOURS, WEDNESDAY, moment) is is_open


@pytest.mark.parametrize(("day", "expected"), [(date(2026, 11, 28), True), (date(2026, 11, 29), False)])
def test_is_open_at_on_the_weekend(day: date, expected: bool) -> None:
    assert is_open_at(OFFICE_HOURS, day, time(10, 0)) is expected


# --- misspelt day names ---------------------------------------------------------------


def one_typo(word: str, kind: str, at: int, letter: str) -> str:
    """word with one typo after its first letter: a letter left out, added, changed or two swapped."""
    at = 1 + at % (len(word) - 1)
    if kind == "deletion":
        return word[:at] + word[at + 1 :]
    if kind == "insertion":
        return word[:at] + letter + word[at:]
    if kind == "substitution":
        return word[:at] + letter + word[at + 1 :]
    at = min(at, len(word) - 2)
    return word[:at] + word[at + 1] + word[at] + word[at + 2 :]


@given(
    day=st.sampled_from(WEEKDAY_NAMES),
    kind=st.sampled_from(["deletion", "insertion", "substitution", "swap"]),
    at=st.integers(0, 20),
    letter=st.sampled_from("abcdefghijklmnopqrstuvwxyz"),
    next_=st.booleans(),
)
def test_a_day_name_with_one_typo_is_that_day(day: str, kind: str, at: int, letter: str, next_: bool) -> None:
    said = one_typo(day, kind, at, letter)
    others = [name for name in WEEKDAY_NAMES if name != day]
    assume(all(typo_distance(said, other, 1) > 1 for other in others))  # "tursday": tuesday or thursday
    prefix = "next " if next_ else ""
    assert parse_date(prefix + said, WEDNESDAY).value == parse_date(prefix + day, WEDNESDAY).value


@pytest.mark.parametrize("said", ["tusday", "wendesday", "thurday", "satruday", "fridya"])
def test_common_misspellings_of_days(said: str) -> None:
    assert parse_date(said, WEDNESDAY).value is not None


@pytest.mark.parametrize("said", ["money", "sunny", "thirsty", "fried", "mon", "weds day"])
def test_words_near_a_day_name_are_not_days(said: str) -> None:
    assert parse_date(said, WEDNESDAY).problem == "unknown"
