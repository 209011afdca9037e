"""When staff answer conversations handed to a person, and how to say it.

Staff work the city hotline's hours (catalogue/city.yml, `city.hotline.hours`, validated by
onewindow/service_catalogue/schema.py): `staff_hours` is the one place that reads them for a handoff.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Dict, Optional

from onewindow.backend.records import CityRecord, Periods
from onewindow.text.dates import WEEKDAY_NAMES, spoken_time
from onewindow.text.wording import is_open_at, week_text

Hours = Dict[int, Periods]


def staff_hours(city: CityRecord) -> Hours:
    """The hours staff answer handed-over conversations: those of the city hotline."""
    return city.hotline_hours


def staff_working(hours: Hours, moment: datetime) -> bool:
    return is_open_at(hours, moment.date(), moment.time())


def next_opening(hours: Hours, moment: datetime) -> Optional[datetime]:
    """The first moment after `moment` at which a staff period starts; None when staff never work."""
    for offset in range(8):  # a week later the same periods come round again
        day = moment.date() + timedelta(days=offset)
        starts = sorted(datetime.combine(day, opens) for opens, _ in hours.get(day.weekday(), []))
        later = [start for start in starts if start > moment]
        if later:
            return later[0]
    return None


def day_text(day: date, today: date) -> str:
    """ "today", "tomorrow" or "on Monday" (within the coming week)."""
    if day == today:
        return "today"
    if day == today + timedelta(days=1):
        return "tomorrow"
    return f"on {WEEKDAY_NAMES[day.weekday()].title()}"


def when_staff_reply(hours: Hours, moment: datetime) -> str:
    """ "on Monday from 8 am": when a person will answer a conversation handed over at `moment`."""
    if staff_working(hours, moment):
        return "soon"
    opening = next_opening(hours, moment)
    if opening is None:
        return "as soon as staff are back"
    return f"{day_text(opening.date(), moment.date())} from {spoken_time(opening.time())}"


def staff_hours_text(hours: Hours, moment: datetime) -> str:
    """The staff hours, and outside them when a person will reply, in plain words that read well aloud."""
    if not any(hours.values()):
        return "Staff hours are not set at the moment, so a person will reply as soon as staff are back."
    known = f"Staff answer at these times. {week_text(hours)}"
    if staff_working(hours, moment):
        return f"{known} Staff are working now."
    return f"{known} It is now outside those hours, so a person will reply {when_staff_reply(hours, moment)}."
