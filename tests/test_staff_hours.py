"""When staff answer a conversation handed to a person: the next opening over any week of hours and any moment."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Dict, List, Tuple

from hypothesis import given
from hypothesis import strategies as st

from onewindow.backend import ServiceBackend
from onewindow.backend.staff_hours import Hours, next_opening, staff_hours, staff_hours_text, staff_working, when_staff_reply
from onewindow.text.dates import WEEKDAY_NAMES

WHEN = re.compile(r"(today|tomorrow|on (Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)) from \d{1,2}(:\d\d)? (am|pm)")


@st.composite
def day_periods(draw: st.DrawFn) -> List[Tuple[time, time]]:
    """Up to three periods of a day, on whole minutes, in order and apart."""
    marks = sorted(draw(st.sets(st.integers(0, 24 * 60 - 1), max_size=6)))
    marks = marks[: len(marks) // 2 * 2]
    return [(time(*divmod(a, 60)), time(*divmod(b, 60))) for a, b in zip(marks[::2], marks[1::2])]


weeks = st.fixed_dictionaries({weekday: day_periods() for weekday in range(7)})
moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31))


def first_start_by_minutes(hours: Hours, moment: datetime) -> datetime | None:
    """The oracle: walk minute by minute for eight days to the first period start after `moment`."""
    starts = {(weekday, opens) for weekday, periods in hours.items() for opens, _ in periods}
    minute = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    for _ in range(8 * 24 * 60):
        if (minute.weekday(), minute.time()) in starts:
            return minute
        minute += timedelta(minutes=1)
    return None


@given(hours=weeks, moment=moments)
def test_the_next_opening_is_the_first_period_start_after_the_moment(hours: Hours, moment: datetime) -> None:
    opening = next_opening(hours, moment)
    assert opening == first_start_by_minutes(hours, moment)
    if opening is not None:
        assert opening > moment and staff_working(hours, opening)


@given(hours=weeks, moment=moments)
def test_out_of_hours_the_citizen_is_told_the_day_and_time_a_person_replies(hours: Hours, moment: datetime) -> None:
    said = staff_hours_text(hours, moment)
    if not any(hours.values()):
        assert "as soon as staff are back" in said
        return
    assert said.startswith("Staff answer at these times.")
    if staff_working(hours, moment):
        assert said.endswith("Staff are working now.")
        return
    when = when_staff_reply(hours, moment)
    assert WHEN.fullmatch(when), when
    assert said.endswith(f"It is now outside those hours, so a person will reply {when}.")
    opening = next_opening(hours, moment)
    assert opening is not None
    days_ahead = (opening.date() - moment.date()).days
    expected_day = {0: "today", 1: "tomorrow"}.get(days_ahead, f"on {WEEKDAY_NAMES[opening.weekday()].title()}")
    assert when.startswith(expected_day + " from ") and 0 <= days_ahead <= 7


def test_the_city_catalogues_staff_hours_said_at_moments_of_the_week(backend: ServiceBackend) -> None:
    """The hotline works 08:00-20:00 on weekdays, 09:00-13:00 on Saturdays, not on Sundays (catalogue/city.yml, seeded)."""
    hours = staff_hours(backend.catalogue.city())
    said: Dict[datetime, str] = {
        datetime(2026, 11, 29, 10, 0): "tomorrow from 8 am",  # Sunday morning
        datetime(2026, 11, 28, 14, 0): "on Monday from 8 am",  # Saturday afternoon
        datetime(2026, 11, 27, 21, 0): "tomorrow from 9 am",  # Friday night
        datetime(2026, 11, 25, 6, 30): "today from 8 am",  # Wednesday, early
        datetime(2026, 11, 25, 10, 0): "soon",  # Wednesday morning: at work
    }
    assert {moment: when_staff_reply(hours, moment) for moment in said} == said
    assert "Monday to Friday: 8 am to 8 pm. Saturday: 9 am to 1 pm. Sunday: closed." in staff_hours_text(
        hours, datetime(2026, 11, 29, 10, 0)
    )
