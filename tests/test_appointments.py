"""Appointments: slots, bookings, cancelling, rescheduling, and the actions that drive them.

Backend tests run on both databases (an SQLite file and a PostgreSQL database) with a
fixed clock on a Monday morning a few weeks ahead, so they do not depend on today's
date. Action tests run the real actions with a real rasa_sdk Tracker and
CollectingDispatcher on a seeded SQLite database, with dates picked from the real free
slots relative to today.

Seeding a database from the catalogue takes about two seconds, so this module seeds
once per database kind (with the same `seed(url, demo=True)` the conftest fixtures use):
each SQLite test gets a fresh copy of the seeded file, and the one PostgreSQL database
has its booking tables (slots, appointments, citizens) emptied before each test.
"""

from __future__ import annotations

import functools
import itertools
import re
import sqlite3
import threading
from contextlib import closing
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from rasa_sdk.events import SlotSet
from ruamel.yaml import YAML
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from actions.appointments import (
    ActionAskAppointmentDate,
    ActionAskAppointmentReference,
    ActionAskAppointmentTime,
    ActionAskBookingConfirmed,
    ActionAskCancelConfirmed,
    ActionAskOffice,
    ActionAskService,
    ActionBookAppointment,
    ActionCancelAppointment,
    ActionCheckAppointment,
    ActionRescheduleAppointment,
    ValidateAppointmentForm,
    ValidateCancelForm,
    ValidateCheckAppointmentForm,
    ValidateRescheduleForm,
)
from onewindow.__main__ import seed
from onewindow.backend import BookingError, ServiceBackend
from onewindow.channels.senders import sign_sender
from onewindow.storage import models
from onewindow.text.dates import spoken_date, spoken_datetime
from tests import expect
from tests.action_harness import load_domain, make_tracker, run_action, slot_events
from tests.conftest import DATABASE_KINDS, postgres_database

CATALOGUE_DIR = Path(__file__).resolve().parent.parent / "catalogue"
WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
REFERENCE = re.compile(r"^BK-[1-9]\d{4}-\d{5}$")
Slot = models.AppointmentSlot


# --- fresh seeded databases, copied from a template seeded once -------------------------


@pytest.fixture(scope="module")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "seeded.db"
    seed(f"sqlite:///{path}", demo=True)
    return path


def _copy_sqlite(template: Path, target: str) -> None:
    with closing(sqlite3.connect(str(template))) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)


@pytest.fixture(scope="module")
def _postgres_seeded() -> Iterator[str]:
    """One throwaway PostgreSQL database for this module, seeded once (skips without a server)."""
    for url in postgres_database():
        seed(url, demo=True)
        yield url


BOOKING_TABLES = ("appointments", "appointment_slots", "channel_identities", "citizens", "record_lookups")


@pytest.fixture(params=DATABASE_KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Overrides conftest's: an SQLite file, or this module's PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'onewindow.db'}"
    else:
        yield request.getfixturevalue("_postgres_seeded")


@pytest.fixture
def seeded_url(database_url: str, request: pytest.FixtureRequest) -> str:
    """Overrides conftest's: the seeded catalogue, with no slots, citizens or appointments yet.

    SQLite gets a fresh copy of the seeded file; the PostgreSQL database, seeded once,
    has the tables that bookings write to emptied before each test.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        _copy_sqlite(request.getfixturevalue("_sqlite_template"), url.database)
    else:
        engine = create_engine(database_url, future=True)
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {', '.join(BOOKING_TABLES)} RESTART IDENTITY CASCADE"))
        engine.dispose()
    return database_url


@pytest.fixture
def sqlite_url(tmp_path: Path, _sqlite_template: Path) -> str:
    """Overrides conftest's: a fresh copy of the seeded SQLite file."""
    path = tmp_path / "onewindow.db"
    _copy_sqlite(_sqlite_template, str(path))
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def domain() -> Dict[str, Any]:
    return load_domain()


# --- the catalogue as written in the YAML files (the oracle for opening hours) ----------


@functools.lru_cache(maxsize=None)
def _yaml(name: str, key: str) -> Dict[str, Dict[str, Any]]:
    document = YAML(typ="safe").load((CATALOGUE_DIR / name).read_text(encoding="utf-8"))
    return {entry["id"]: entry for entry in document[key]}


def office_yml(office_id: str) -> Dict[str, Any]:
    return _yaml("offices.yml", "offices")[office_id]


def service_yml(service_id: str) -> Dict[str, Any]:
    return _yaml("services.yml", "services")[service_id]


def expected_starts(office_id: str, day: date) -> List[datetime]:
    """Every slot start the catalogue's opening hours and slot length give for this day."""
    office = office_yml(office_id)
    hours = str(office["hours"][WEEKDAY_KEYS[day.weekday()]])
    if hours.strip() == "closed":
        return []
    length = timedelta(minutes=office["slot_minutes"])
    starts = []
    for part in hours.split(","):
        opens, closes = part.strip().split("-")
        start = datetime.combine(day, time.fromisoformat(opens))
        end = datetime.combine(day, time.fromisoformat(closes))
        while start + length <= end:
            starts.append(start)
            start += length
    return starts


# --- a fixed clock: a Monday morning a few weeks ahead ----------------------------------


def _monday_ahead(weeks: int = 3) -> datetime:
    today = date.today()
    monday = today + timedelta(days=7 * weeks + (7 - today.weekday()) % 7)
    assert monday.weekday() == 0
    return datetime.combine(monday, time(8, 0))


MOMENT = _monday_ahead()
MON = MOMENT.date()
TUE, WED, THU, FRI, SAT, SUN = (MON + timedelta(days=n) for n in range(1, 7))


def at(day: date, hh_mm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hh_mm))


_phones = itertools.count(1)


def new_phone() -> str:
    return f"0413{next(_phones):06d}"


# --- database helpers -------------------------------------------------------------------


def slot_row(backend: ServiceBackend, office_id: str, starts_at: datetime) -> Tuple[int, int]:
    """(booked, capacity) of the slot row as stored."""
    with Session(backend.engine) as session:
        slot = session.scalars(select(Slot).where(Slot.office_id == office_id, Slot.starts_at == starts_at)).one()
        return slot.booked, slot.capacity


def active_at(backend: ServiceBackend, office_id: str, starts_at: datetime) -> int:
    """Appointments still booked in this slot, counted from the appointments table."""
    with Session(backend.engine) as session:
        return session.scalar(
            select(func.count(models.Appointment.id))
            .join(Slot)
            .where(Slot.office_id == office_id, Slot.starts_at == starts_at, models.Appointment.status == "booked")
        )


def appointment_count(backend: ServiceBackend) -> int:
    with Session(backend.engine) as session:
        return session.scalar(select(func.count(models.Appointment.id)))


def stored_appointment(backend: ServiceBackend, reference: str) -> models.Appointment:
    """The appointment row `reference`, which the test expects in the database, with its slot and citizen loaded."""
    with Session(backend.engine) as session:
        appointment = session.scalars(select(models.Appointment).where(models.Appointment.reference == reference)).first()
        assert appointment is not None, f"no appointment {reference} in the database"
        _ = appointment.slot, appointment.citizen  # load before the session closes
        return appointment


def book(
    backend: ServiceBackend, service: str, office: str, starts_at: datetime, phone: Optional[str] = None, name: str = "Ana Silva"
):
    return backend.bookings.book(service, office, starts_at, name, phone or new_phone(), "rest")


def fill_day(backend: ServiceBackend, service: str, office: str, day: date) -> int:
    """Book every remaining place of the day, one citizen each; returns how many."""
    count = 0
    while True:
        free = backend.bookings.free_slots(office, day)
        if not free:
            return count
        book(backend, service, office, free[0])
        count += 1


def proof_of(backend: ServiceBackend, reference: str) -> str:
    """The last four digits of the phone number on the appointment: what its owner can tell."""
    return stored_appointment(backend, reference).citizen.phone[-4:]


def reason_of(call, *args) -> BookingError:
    with pytest.raises(BookingError) as caught:
        call(*args)
    return caught.value


# =========================================================================================
# Backend: availability (both databases, fixed clock)
# =========================================================================================


def test_free_slots_follow_opening_hours_slot_length_and_windows(clocked_backend) -> None:
    backend = clocked_backend(MOMENT)
    bookings = backend.bookings
    cases = [
        ("central_centre", TUE),
        ("central_centre", THU),
        ("central_centre", SAT),
        ("north_centre", TUE),
        ("west_centre", TUE),
        ("riverside_point", TUE),
        ("riverside_point", SAT),
        ("housing_office", WED),
        ("tax_office", FRI),
    ]
    for office_id, day in cases:
        expected = expected_starts(office_id, day)
        assert expected, (office_id, day)
        assert bookings.free_slots(office_id, day) == expected, (office_id, day)
        windows = office_yml(office_id)["windows"]
        with Session(backend.engine) as session:
            rows = session.scalars(select(Slot).where(Slot.office_id == office_id, Slot.day == day)).all()
        assert sorted(r.starts_at for r in rows) == expected
        assert {(r.capacity, r.booked) for r in rows} == {(windows, 0)}, "capacity is the number of windows"

    # Lunch break office: nothing between 12 and 1, 30-minute slots either side.
    west = bookings.free_slots("west_centre", TUE)
    assert west[0] == at(TUE, "08:30") and west[-1] == at(TUE, "16:30")
    assert not [s for s in west if time(12, 0) <= s.time() < time(13, 0)]
    assert at(TUE, "11:30") in west and at(TUE, "13:00") in west
    assert {b - a for a, b in zip(west, west[1:])} == {timedelta(minutes=30), timedelta(minutes=90)}
    # Thursday late opening at the central centre; 15-minute slots.
    assert bookings.free_slots("central_centre", THU)[-1] == at(THU, "18:45")
    assert bookings.free_slots("central_centre", TUE)[-1] == at(TUE, "16:45")
    # The rural point opens Saturday morning only.
    assert bookings.free_slots("riverside_point", SAT) == [
        at(SAT, f"{h}") for h in ("09:00", "09:30", "10:00", "10:30", "11:00", "11:30")
    ]


def test_closed_days_have_no_slots(clocked_backend) -> None:
    backend = clocked_backend(MOMENT)
    closed = [
        ("central_centre", SUN),
        ("south_centre", SAT),
        ("west_centre", SAT),
        ("riverside_point", MON),
        ("riverside_point", WED),
        ("riverside_point", FRI),
        ("riverside_point", SUN),
    ]
    for office_id, day in closed:
        assert office_yml(office_id)["hours"][WEEKDAY_KEYS[day.weekday()]] == "closed"
        assert backend.bookings.free_slots(office_id, day) == [], (office_id, day)
        error = reason_of(
            backend.bookings.check_day,
            "birth_registration" if office_id != "south_centre" else "passport_renewal",
            office_id,
            day,
        )
        assert error.reason == "closed_day"
        assert error.alternatives and all(a.date() > day for a in error.alternatives)
    # The rural point's alternatives fall on its open days only: Tuesday, Thursday, Saturday.
    error = reason_of(backend.bookings.check_day, "birth_registration", "riverside_point", WED)
    assert error.alternatives == [at(THU, "09:00"), at(SAT, "09:00"), at(TUE + timedelta(days=7), "09:00")]
    with Session(backend.engine) as session:
        assert session.scalar(select(func.count(Slot.id)).where(Slot.office_id == "riverside_point", Slot.day == WED)) == 0


def test_free_slots_today_start_after_the_lead_time(clocked_backend) -> None:
    backend = clocked_backend(at(MON, "10:05"))
    free = backend.bookings.free_slots("central_centre", MON)
    assert free[0] == at(MON, "10:45"), "no slot within 30 minutes of now"
    assert free == [s for s in expected_starts("central_centre", MON) if s >= at(MON, "10:35")]
    assert backend.bookings.free_slots("central_centre", TUE) == expected_starts("central_centre", TUE)
    assert backend.bookings.next_free("central_centre", MON - timedelta(days=5))[0] == at(MON, "10:45")


def test_a_time_offered_then_passing_the_lead_is_too_soon_not_taken(clocked_backend) -> None:
    """The citizen took a while to decide: the time was free when offered and nobody took it."""
    offered = clocked_backend(at(MON, "10:05")).bookings.free_slots("central_centre", MON)[0]
    later = clocked_backend(offered - timedelta(minutes=29))
    error = reason_of(book, later, "passport_renewal", "central_centre", offered)
    assert error.reason == "too_soon" and error.alternatives and all(start > offered for start in error.alternatives)
    assert slot_row(later, "central_centre", offered)[0] == 0
    free_later = later.bookings.check_day("passport_renewal", "central_centre", MON)
    asked = reason_of(later.bookings.check_time, "central_centre", MON, offered.time(), free_later)
    assert asked.reason == "too_soon"  # asking for that time by name gets the same answer


# =========================================================================================
# Backend: booking and the checks before it
# =========================================================================================


def test_booking_returns_a_reference_and_takes_a_place(clocked_backend) -> None:
    backend = clocked_backend(MOMENT)
    start = at(TUE, "10:15")
    backend.bookings.free_slots("central_centre", TUE)
    assert slot_row(backend, "central_centre", start) == (0, 6)
    record = backend.bookings.book("passport_renewal", "central_centre", start, "Ana Silva", "0412 345-678", "telegram")
    assert REFERENCE.match(record.reference)
    assert record.status == "booked" and record.starts_at == start
    assert (record.service_id, record.office_id) == ("passport_renewal", "central_centre")
    assert record.service_name == service_yml("passport_renewal")["name"]
    assert record.office_name == office_yml("central_centre")["name"]
    assert record.office_address == office_yml("central_centre")["address"]
    assert record.documents == service_yml("passport_renewal")["documents"]
    assert slot_row(backend, "central_centre", start) == (1, 6)
    assert start in backend.bookings.free_slots("central_centre", TUE), "five windows still free"
    stored = stored_appointment(backend, record.reference)
    assert stored.citizen.phone == "0412345678" and stored.citizen.name == "Ana Silva"
    assert stored.channel == "telegram" and stored.slot.starts_at == start
    assert backend.bookings.get(record.reference) == record
    second = book(backend, "passport_renewal", "central_centre", start)
    assert second.reference != record.reference
    assert slot_row(backend, "central_centre", start) == (2, 6)


def test_check_day_refuses_past_far_closed_unoffered_and_unbookable(clocked_backend) -> None:
    backend = clocked_backend(MOMENT)
    bookings = backend.bookings
    past = reason_of(bookings.check_day, "passport_renewal", "central_centre", MON - timedelta(days=1))
    assert past.reason == "past"
    assert past.alternatives == [at(MON, "08:30"), at(TUE, "08:30"), at(WED, "08:30")]

    horizon = bookings.horizon_days
    last = MON + timedelta(days=horizon)
    while not expected_starts("central_centre", last):
        last -= timedelta(days=1)
    assert bookings.check_day("passport_renewal", "central_centre", last) == expected_starts("central_centre", last)
    far = reason_of(bookings.check_day, "passport_renewal", "central_centre", MON + timedelta(days=horizon + 1))
    assert far.reason == "too_far" and far.alternatives[0] == at(MON, "08:30")

    closed = reason_of(bookings.check_day, "passport_renewal", "central_centre", SUN)
    assert closed.reason == "closed_day" and closed.alternatives[0] == at(SUN + timedelta(days=1), "08:30")

    assert "civil_registry" not in service_yml("passport_renewal")["offices"]
    assert reason_of(bookings.check_day, "passport_renewal", "civil_registry", TUE).reason == "not_offered"
    assert service_yml("senior_travel_card")["bookable"] is False
    assert reason_of(bookings.check_day, "senior_travel_card", "central_centre", TUE).reason == "not_bookable"
    assert reason_of(bookings.check_day, "no_such_service", "central_centre", TUE).reason == "not_bookable"

    # book() makes the same checks and writes nothing.
    before = appointment_count(backend)
    for service, office, start, reason in [
        ("passport_renewal", "central_centre", at(MON - timedelta(days=7), "10:00"), "past"),
        ("passport_renewal", "central_centre", at(MON + timedelta(days=horizon + 8), "10:00"), "too_far"),
        ("passport_renewal", "central_centre", at(SUN, "10:00"), "closed_day"),
        ("passport_renewal", "civil_registry", at(TUE, "10:00"), "not_offered"),
        ("senior_travel_card", "central_centre", at(TUE, "10:00"), "not_bookable"),
    ]:
        assert reason_of(book, backend, service, office, start).reason == reason
    assert appointment_count(backend) == before


def test_check_time_outside_hours_offers_the_nearest_free_times(clocked_backend) -> None:
    bookings = clocked_backend(MOMENT).bookings
    free = bookings.check_day("passport_renewal", "west_centre", TUE)
    lunch = reason_of(bookings.check_time, "west_centre", TUE, time(12, 30), free)
    assert lunch.reason == "outside_hours"
    assert lunch.alternatives == [at(TUE, "11:30"), at(TUE, "13:00"), at(TUE, "13:30")]
    early = reason_of(bookings.check_time, "west_centre", TUE, time(7, 0), free)
    assert early.reason == "outside_hours" and early.alternatives == [at(TUE, "08:30"), at(TUE, "09:00"), at(TUE, "09:30")]
    late = reason_of(bookings.check_time, "west_centre", TUE, time(17, 0), free)
    assert late.reason == "outside_hours" and late.alternatives == [at(TUE, "15:30"), at(TUE, "16:00"), at(TUE, "16:30")]
    saturday = bookings.check_day("passport_renewal", "central_centre", SAT)
    assert reason_of(bookings.check_time, "central_centre", SAT, time(13, 0), saturday).reason == "outside_hours"


def test_check_time_inside_a_slot_maps_to_the_slot_start(clocked_backend) -> None:
    bookings = clocked_backend(MOMENT).bookings
    central = bookings.check_day("passport_renewal", "central_centre", TUE)
    assert bookings.check_time("central_centre", TUE, time(10, 7), central) == at(TUE, "10:00")
    assert bookings.check_time("central_centre", TUE, time(10, 15), central) == at(TUE, "10:15")
    assert bookings.check_time("central_centre", TUE, time(16, 59), central) == at(TUE, "16:45")
    west = bookings.check_day("passport_renewal", "west_centre", TUE)
    assert bookings.check_time("west_centre", TUE, time(14, 20), west) == at(TUE, "14:00")
    assert bookings.check_time("west_centre", TUE, time(8, 30), west) == at(TUE, "08:30")


def test_check_time_on_a_full_slot_is_taken_with_nearest_free(clocked_backend) -> None:
    backend = clocked_backend(MOMENT)
    book(backend, "birth_registration", "riverside_point", at(TUE, "10:00"))
    free = backend.bookings.check_day("birth_registration", "riverside_point", TUE)
    assert at(TUE, "10:00") not in free and len(free) == len(expected_starts("riverside_point", TUE)) - 1
    taken = reason_of(backend.bookings.check_time, "riverside_point", TUE, time(10, 10), free)
    assert taken.reason == "slot_taken"
    assert taken.alternatives == [at(TUE, "09:30"), at(TUE, "10:30"), at(TUE, "11:00")]
    assert reason_of(book, backend, "birth_registration", "riverside_point", at(TUE, "10:00")).reason == "slot_taken"
    assert slot_row(backend, "riverside_point", at(TUE, "10:00")) == (1, 1)


def test_fully_booked_day_offers_later_days(clocked_backend) -> None:
    backend = clocked_backend(MOMENT)
    bookings = backend.bookings
    starts = expected_starts("housing_office", WED)  # Wednesday mornings only, two windows
    assert starts[-1] == at(WED, "12:30") and office_yml("housing_office")["windows"] == 2
    for start in starts:  # one place in each slot: the day still has room
        book(backend, "rent_subsidy", "housing_office", start)
    assert bookings.check_day("rent_subsidy", "housing_office", WED) == starts
    for start in starts:  # the last place in each slot
        book(backend, "rent_subsidy", "housing_office", start)
    assert bookings.free_slots("housing_office", WED) == []
    full = reason_of(bookings.check_day, "rent_subsidy", "housing_office", WED)
    assert full.reason == "fully_booked"
    assert full.alternatives == [at(THU, "08:30"), at(FRI, "08:30"), at(MON + timedelta(days=7), "08:30")]
    assert reason_of(book, backend, "rent_subsidy", "housing_office", at(WED, "10:00")).reason == "fully_booked"
    for start in starts:
        assert slot_row(backend, "housing_office", start) == (2, 2)
        assert active_at(backend, "housing_office", start) == 2
    assert bookings.free_slots("housing_office", THU) == expected_starts("housing_office", THU)


def test_bad_phone_is_refused_before_anything_is_written(clocked_backend) -> None:
    backend = clocked_backend(MOMENT)
    with Session(backend.engine) as session:
        citizens = session.scalar(select(func.count(models.Citizen.id)))  # the sample applications' owners, if any
    for phone in ("12ab", "123", "", "0412 345 678 ext 5"):
        error = reason_of(backend.bookings.book, "passport_renewal", "central_centre", at(TUE, "10:00"), "Ana", phone, "rest")
        assert error.reason == "bad_phone"
    assert appointment_count(backend) == 0
    with Session(backend.engine) as session:
        assert session.scalar(select(func.count(models.Citizen.id))) == citizens
    backend.bookings.free_slots("central_centre", TUE)
    assert slot_row(backend, "central_centre", at(TUE, "10:00")) == (0, 6)


def test_same_citizen_same_time_twice_is_a_duplicate(clocked_backend) -> None:
    backend = clocked_backend(MOMENT)
    start = at(TUE, "10:00")
    first = book(backend, "passport_renewal", "central_centre", start, phone="0412 345 678")
    assert reason_of(book, backend, "passport_renewal", "central_centre", start, "0412-345-678").reason == "duplicate"
    # The same time at another office clashes too.
    assert reason_of(book, backend, "passport_renewal", "north_centre", start, "0412345678").reason == "duplicate"
    assert slot_row(backend, "central_centre", start) == (1, 6)
    assert slot_row(backend, "north_centre", start) == (0, 4)
    assert appointment_count(backend) == 1
    # Another time is fine, and so is the same time once the first one is cancelled.
    book(backend, "passport_renewal", "central_centre", at(TUE, "10:15"), phone="0412345678")
    backend.bookings.cancel(first.reference)
    again = book(backend, "passport_renewal", "central_centre", start, phone="0412345678")
    assert again.status == "booked" and slot_row(backend, "central_centre", start) == (1, 6)


# =========================================================================================
# Backend: concurrency
# =========================================================================================


@pytest.mark.parametrize("threads", [2, 8])
def test_racing_for_the_last_place_only_one_wins(clocked_backend, threads: int) -> None:
    backend = clocked_backend(MOMENT)
    start = at(TUE, "10:00")
    capacity = office_yml("north_centre")["windows"]
    for _ in range(capacity - 1):
        book(backend, "passport_renewal", "north_centre", start)
    assert slot_row(backend, "north_centre", start) == (capacity - 1, capacity)

    barrier = threading.Barrier(threads)
    outcomes: List[Tuple[str, Any]] = [("not run", None)] * threads

    def attempt(index: int) -> None:
        phone = f"0499{index:06d}"
        barrier.wait(timeout=30)
        try:
            record = backend.bookings.book("passport_renewal", "north_centre", start, f"Racer {index}", phone, "rest")
            outcomes[index] = ("booked", record.reference)
        except BookingError as error:
            outcomes[index] = ("refused", error.reason)
        except Exception as error:  # any other failure is reported below
            outcomes[index] = ("crashed", repr(error))

    workers = [threading.Thread(target=attempt, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not any(w.is_alive() for w in workers)

    booked = [value for kind, value in outcomes if kind == "booked"]
    refused = [value for kind, value in outcomes if kind == "refused"]
    assert len(booked) == 1, outcomes
    assert refused == ["slot_taken"] * (threads - 1), outcomes
    assert slot_row(backend, "north_centre", start) == (capacity, capacity)
    assert active_at(backend, "north_centre", start) == capacity
    assert start not in backend.bookings.free_slots("north_centre", TUE)
    assert backend.bookings.get(booked[0]).starts_at == start


def test_conversations_asking_for_a_new_day_at_once_create_its_slots_once(clocked_backend) -> None:
    backend = clocked_backend(MOMENT)
    threads = 6
    barrier = threading.Barrier(threads)
    answers: List[Any] = [None] * threads

    def ask(index: int) -> None:
        barrier.wait(timeout=30)
        try:
            answers[index] = backend.bookings.free_slots("central_centre", THU)
        except Exception as error:  # reported below
            answers[index] = repr(error)

    workers = [threading.Thread(target=ask, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    expected = expected_starts("central_centre", THU)
    assert answers == [expected] * threads
    with Session(backend.engine) as session:
        assert session.scalar(select(func.count(Slot.id)).where(Slot.office_id == "central_centre", Slot.day == THU)) == len(
            expected
        )


def test_the_database_itself_refuses_overbooking(clocked_backend) -> None:
    backend = clocked_backend(MOMENT)
    start = at(TUE, "09:00")
    backend.bookings.free_slots("riverside_point", TUE)
    with pytest.raises(IntegrityError):
        with Session(backend.engine) as session, session.begin():
            session.execute(update(Slot).where(Slot.office_id == "riverside_point", Slot.starts_at == start).values(booked=2))
    assert slot_row(backend, "riverside_point", start) == (0, 1)


# =========================================================================================
# Backend: cancel, reschedule, look-ups
# =========================================================================================


def test_cancel_frees_the_place_and_only_once(clocked_backend) -> None:
    backend = clocked_backend(MOMENT)
    start = at(TUE, "10:00")
    record = book(backend, "birth_registration", "riverside_point", start)
    assert start not in backend.bookings.free_slots("riverside_point", TUE)
    cancelled = backend.bookings.cancel(record.reference.lower().replace("-", " "))
    assert cancelled.reference == record.reference and cancelled.status == "cancelled"
    assert slot_row(backend, "riverside_point", start) == (0, 1)
    assert start in backend.bookings.free_slots("riverside_point", TUE)
    assert stored_appointment(backend, record.reference).status == "cancelled"
    assert reason_of(backend.bookings.cancel, record.reference).reason == "not_active"
    assert slot_row(backend, "riverside_point", start) == (0, 1), "a second cancel frees nothing"
    unknown = "BK-000001" if record.reference != "BK-000001" else "BK-000002"
    assert reason_of(backend.bookings.cancel, unknown).reason == "unknown_reference"
    # The place can be booked by someone else now.
    assert book(backend, "birth_registration", "riverside_point", start).starts_at == start
    assert slot_row(backend, "riverside_point", start) == (1, 1)


def test_reschedule_moves_the_appointment_atomically(clocked_backend) -> None:
    backend = clocked_backend(MOMENT)
    old, new = at(TUE, "10:00"), at(THU, "11:00")
    record = book(backend, "birth_registration", "riverside_point", old)
    digits = record.reference.split("-", 1)[1]
    moved = backend.bookings.reschedule(f"bk {digits}", new)
    assert moved.reference == record.reference and moved.starts_at == new and moved.status == "booked"
    assert slot_row(backend, "riverside_point", old) == (0, 1)
    assert slot_row(backend, "riverside_point", new) == (1, 1)
    assert backend.bookings.get(record.reference).starts_at == new
    assert old in backend.bookings.free_slots("riverside_point", TUE)
    assert appointment_count(backend) == 1


def test_reschedule_to_a_full_slot_fails_and_changes_nothing(clocked_backend) -> None:
    backend = clocked_backend(MOMENT)
    mine, theirs = at(TUE, "10:00"), at(TUE, "11:00")
    record = book(backend, "birth_registration", "riverside_point", mine)
    book(backend, "birth_registration", "riverside_point", theirs)
    error = reason_of(backend.bookings.reschedule, record.reference, theirs)
    assert error.reason == "slot_taken" and theirs not in error.alternatives and error.alternatives
    assert backend.bookings.get(record.reference).starts_at == mine
    assert slot_row(backend, "riverside_point", mine) == (1, 1)
    assert slot_row(backend, "riverside_point", theirs) == (1, 1)
    assert reason_of(backend.bookings.reschedule, record.reference, at(WED, "10:00")).reason == "closed_day"
    assert backend.bookings.get(record.reference).starts_at == mine
    assert reason_of(backend.bookings.reschedule, "BK-12", theirs).reason == "unknown_reference"
    backend.bookings.cancel(record.reference)
    assert reason_of(backend.bookings.reschedule, record.reference, at(THU, "10:00")).reason == "not_active"
    assert slot_row(backend, "riverside_point", at(THU, "10:00")) == (0, 1)


def test_get_accepts_spoken_styles_and_rejects_malformed(clocked_backend) -> None:
    backend = clocked_backend(MOMENT)
    record = book(backend, "passport_renewal", "central_centre", at(TUE, "10:00"))
    digits = record.reference[3:]
    for said in (record.reference, f"bk {digits}", f"BK{digits}", f"  bk-{digits} ", f"Bk {digits}"):
        assert backend.bookings.get(said) == record, said
    assert backend.bookings.get(digits) == record  # keyed on a phone: the digits alone
    other = "BK-100000" if digits != "100000" else "BK-100001"
    mistyped = record.reference[:-1] + str((int(record.reference[-1]) + 1) % 10)
    for said in (f"BK-{digits[:5]}", f"BK-{digits}9", f"APP-{digits}", f"booking {digits}", "", None, other, mistyped):
        assert backend.bookings.get(said) is None, said


def test_upcoming_for_phone_uses_the_normalised_phone_and_the_clock(clocked_backend) -> None:
    backend = clocked_backend(MOMENT)
    phone = "0412 345 678"
    wednesday = book(backend, "rent_subsidy", "housing_office", at(WED, "09:00"), phone=phone)
    tuesday = book(backend, "passport_renewal", "central_centre", at(TUE, "14:00"), phone="0412-345-678")
    dropped = book(backend, "passport_renewal", "central_centre", at(THU, "14:00"), phone=phone)
    backend.bookings.cancel(dropped.reference)
    book(backend, "passport_renewal", "central_centre", at(TUE, "14:00"), phone="0499 000 111")
    found = backend.bookings.upcoming_for_phone("(0412) 345.678")
    assert [r.reference for r in found] == [tuesday.reference, wednesday.reference]
    assert all(r.status == "booked" for r in found)
    later = clocked_backend(at(TUE, "20:00"))
    assert [r.reference for r in later.bookings.upcoming_for_phone(phone)] == [wednesday.reference]
    assert backend.bookings.upcoming_for_phone("0400 000 000") == []
    assert backend.bookings.upcoming_for_phone("not a phone") == []


# =========================================================================================
# Actions (SQLite, real clock): helpers
# =========================================================================================


def open_day(backend: ServiceBackend, office_id: str, skip: int = 0) -> date:
    """A day from tomorrow on with free slots at this office."""
    return backend.bookings.next_free(office_id, date.today() + timedelta(days=1), skip + 1)[skip].date()


def next_weekday(weekday: int) -> date:
    today = date.today()
    return today + timedelta(days=(weekday - today.weekday()) % 7 or 7)


def form_tracker(
    form: str,
    slots: Dict[str, Any],
    said: List[Tuple[str, Any]],
    requested: Optional[str] = None,
    channel: str = "rest",
    sender: str = "test-user",
):
    """A tracker as the form hands it to its validation action: the candidates are set
    and their SlotSet events come after the latest user message, in the given order."""
    tracker = make_tracker(
        {**slots, **dict(said), "requested_slot": requested}, active_loop=form, channel=channel, sender_id=sender
    )
    tracker.events.extend(SlotSet(name, value) for name, value in said)
    return tracker


def validate(
    action,
    domain,
    slots: Dict[str, Any],
    said: List[Tuple[str, Any]],
    form: Optional[str] = None,
    sender: str = "test-user",
    requested: Optional[str] = None,
):
    """(messages, {slot: value} of the SlotSet events returned); `requested`: the slot the form asked for."""
    tracker = form_tracker(form or action.form_name(), slots, said, requested=requested, sender=sender)
    messages, events = run_action(action, tracker, domain)
    assert all(e["event"] == "slot" for e in events)
    return messages, slot_events(events)


def payloads(message: Dict[str, Any]) -> List[str]:
    return [b["payload"] for b in message.get("buttons") or []]


def run(action, domain, slots: Dict[str, Any], active_loop: Optional[str] = None, channel: str = "rest"):
    return run_action(action, make_tracker(slots, active_loop=active_loop, channel=channel), domain)


BOOKING = {"service": "birth_registration", "office": "riverside_point"}


# =========================================================================================
# Actions: the appointment form's validators
# =========================================================================================


def test_validate_service(action_backend, domain) -> None:
    form = ValidateAppointmentForm()
    messages, slots = validate(form, domain, {}, [("service", "passport")])
    assert slots == {"service": None}
    assert messages[0]["text"] == "Do you mean New passport or Passport renewal or replacement?"
    assert payloads(messages[0]) == ['/inform{"service":"passport_new"}', '/inform{"service":"passport_renewal"}']

    messages, slots = validate(form, domain, {}, [("service", "Renew my passport!")])
    assert slots == {"service": "passport_renewal"} and messages == []
    messages, slots = validate(form, domain, {}, [("service", ["birth certificate", "passport"])])
    assert slots == {"service": "birth_registration"}

    messages, slots = validate(form, domain, {}, [("service", "senior bus pass")])
    assert slots == {"service": None}
    assert messages[0]["text"] == (
        "Senior travel card does not need an appointment. You can do it online, at the Riverton city portal, transport section."
    )
    messages, slots = validate(form, domain, {}, [("service", "a dragon licence")])
    assert slots == {"service": None}


def test_validate_office_by_name_district_or_list(action_backend, domain) -> None:
    form = ValidateAppointmentForm()
    # An office that does not offer the service: said; the form's question then lists the ones that do.
    messages, slots = validate(form, domain, {"service": "work_permit"}, [("office", "west service centre")], requested="office")
    assert slots == {"office": None}
    assert [m["text"] for m in messages] == ["The West Service Centre does not offer work permit."] and not messages[0]["buttons"]

    # A district with one office offering the service picks it.
    messages, slots = validate(form, domain, {"service": "passport_renewal"}, [("office", "South")], requested="office")
    assert slots == {"office": "south_centre"} and messages == []
    # A district with several: the form's question asks which, with buttons for just those (one question, not two).
    messages, slots = validate(form, domain, {"service": "passport_renewal"}, [("office", "north district")], requested="office")
    assert (messages, slots) == ([], {"office": None})
    asked = make_tracker(
        {"service": "passport_renewal", "requested_slot": "office"},
        active_loop="appointment_form",
        entities=[{"entity": "district", "value": "north district"}],
    )
    messages, _ = run_action(ActionAskOffice(), asked, domain)
    assert [m["text"] for m in messages] == ["Which of these offices?"]
    assert sorted(payloads(messages[0])) == ['/inform{"office":"immigration_office"}', '/inform{"office":"north_centre"}']
    messages, slots = validate(
        form, domain, {"service": "birth_registration"}, [("office", "registry office")], requested="office"
    )
    assert slots == {"office": "civil_registry"} and messages == []
    # No service yet: a named office is kept, to be checked once the service is known.
    assert validate(form, domain, {}, [("office", "central service centre")])[1] == {"office": "central_centre"}
    assert validate(form, domain, {}, [("office", "north district")])[1] == {"office": None}


def said_at(office_name: str) -> str:
    """The first sentence of the message saying which office a booking is for (the rest depends on the channel)."""
    return f"I will book it at the {office_name}"


def test_an_office_settled_before_the_form_asked_is_kept_and_said(action_backend, domain) -> None:
    form = ValidateAppointmentForm()
    # Named with the booking request, or settled earlier and validated as the form starts: said, not asked.
    messages, slots = validate(form, domain, {}, [("service", "passport renewal"), ("office", "north service centre")])
    assert slots == {"service": "passport_renewal", "office": "north_centre"}
    assert [m["text"].split(". ")[0] for m in messages] == [said_at("North Service Centre")]
    # Settled before the service was known: checked and said once the service is given.
    messages, slots = validate(form, domain, {"office": "east_centre"}, [("service", "passport renewal")], requested="service")
    assert slots == {"service": "passport_renewal"} and [m["text"].split(". ")[0] for m in messages] == [
        said_at("East Service Centre")
    ]
    # ...and dropped, with the reason, when it does not offer that service.
    offering = set(service_yml("work_permit")["offices"])
    elsewhere = next(o for o in ("west_centre", "east_centre", "north_centre") if o not in offering)
    messages, slots = validate(form, domain, {"office": elsewhere}, [("service", "work permit")], requested="service")
    assert slots == {"service": "work_permit", "office": None}
    assert [m["text"] for m in messages] == [f"The {office_yml(elsewhere)['name']} does not offer work permit."]


def test_validate_date(action_backend, domain) -> None:
    form = ValidateAppointmentForm()
    today = date.today()
    messages, slots = validate(form, domain, {}, [("appointment_date", "tomorrow")])
    assert slots == {"appointment_date": (today + timedelta(days=1)).isoformat()} and messages == []

    messages, slots = validate(form, domain, BOOKING, [("appointment_date", "31 february")])
    assert slots == {"appointment_date": None} and "does not exist" in messages[0]["text"]
    messages, slots = validate(form, domain, BOOKING, [("appointment_date", "whenever")])
    assert slots == {"appointment_date": None} and "did not understand the day" in messages[0]["text"]

    yesterday = (today - timedelta(days=1)).isoformat()
    messages, slots = validate(form, domain, {}, [("appointment_date", yesterday)])
    assert slots == {"appointment_date": None} and messages[0]["text"] == "That day has already passed."
    messages, slots = validate(form, domain, BOOKING, [("appointment_date", yesterday)])
    assert slots == {"appointment_date": None}
    assert messages[0]["text"].startswith("That day has already passed. The nearest free times are")
    first_free = action_backend.bookings.next_free("riverside_point", today)[0]
    assert spoken_datetime(first_free) in messages[0]["text"]
    assert payloads(messages[0])[0] == f'/inform{{"date":"{first_free.date().isoformat()}","time":"{first_free:%H:%M}"}}'

    sunday = next_weekday(6)
    messages, slots = validate(
        form, domain, {"service": "passport_renewal", "office": "central_centre"}, [("appointment_date", sunday.isoformat())]
    )
    assert slots == {"appointment_date": None}
    assert messages[0]["text"].startswith("The office is closed on that day.")
    offered = [date.fromisoformat(expect.matched(r'"date":"([\d-]+)"', p).group(1)) for p in payloads(messages[0])]
    assert offered and all(d > sunday and d.weekday() != 6 for d in offered)

    day = open_day(action_backend, "riverside_point")
    said = f"{day.day} {day.strftime('%B')}"
    messages, slots = validate(form, domain, BOOKING, [("appointment_date", said)])
    assert slots == {"appointment_date": day.isoformat()} and messages == []

    fill_day(action_backend, "birth_registration", "riverside_point", day)
    messages, slots = validate(form, domain, BOOKING, [("appointment_date", day.isoformat())])
    assert slots == {"appointment_date": None}
    assert messages[0]["text"].startswith("That day is fully booked. The nearest free times are")
    later = [date.fromisoformat(expect.matched(r'"date":"([\d-]+)"', p).group(1)) for p in payloads(messages[0])]
    assert later and all(d > day for d in later)


def test_validate_time(action_backend, domain) -> None:
    form = ValidateAppointmentForm()
    day = open_day(action_backend, "west_centre")
    slots_before = {"service": "passport_renewal", "office": "west_centre", "appointment_date": day.isoformat()}
    free = action_backend.bookings.free_slots("west_centre", day)
    assert free == expected_starts("west_centre", day)

    messages, slots = validate(form, domain, slots_before, [("appointment_time", "12:30")])
    assert slots == {"appointment_time": None}
    assert messages[0]["text"] == (
        "The office is not open at that time. The nearest free times are "
        f"{spoken_datetime(at(day, '11:30'))}, {spoken_datetime(at(day, '13:00'))} or {spoken_datetime(at(day, '13:30'))}."
    )
    assert [b["title"] for b in messages[0]["buttons"]] == [spoken_datetime(at(day, t)) for t in ("11:30", "13:00", "13:30")]
    messages, slots = validate(form, domain, slots_before, [("appointment_time", "7 pm")])
    assert slots == {"appointment_time": None} and messages[0]["text"].startswith("The office is not open at that time.")

    assert validate(form, domain, slots_before, [("appointment_time", "morning")])[1] == {"appointment_time": "08:30"}
    assert validate(form, domain, slots_before, [("appointment_time", "afternoon")])[1] == {"appointment_time": "13:00"}
    assert validate(form, domain, slots_before, [("appointment_time", "half past two")])[1] == {"appointment_time": "14:30"}
    assert validate(form, domain, slots_before, [("appointment_time", "10:10")])[1] == {"appointment_time": "10:00"}
    messages, slots = validate(form, domain, slots_before, [("appointment_time", "banana")])
    assert slots == {"appointment_time": None} and "did not understand the time" in messages[0]["text"]
    # Without a day there is nothing to check yet: asked again later, silently.
    assert validate(form, domain, {"service": "passport_renewal", "office": "west_centre"}, [("appointment_time", "10 am")]) == (
        [],
        {"appointment_time": None},
    )

    # A day that filled up meanwhile: the day is asked again too.
    riverside = open_day(action_backend, "riverside_point")
    fill_day(action_backend, "birth_registration", "riverside_point", riverside)
    messages, slots = validate(
        form, domain, {**BOOKING, "appointment_date": riverside.isoformat()}, [("appointment_time", "10 am")]
    )
    assert slots == {"appointment_time": None, "appointment_date": None}
    assert messages[0]["text"].startswith("That day is fully booked.")


def test_validate_name_and_phone(action_backend, domain) -> None:
    form = ValidateAppointmentForm()
    for said, expected in [
        ("my name is Ana Silva", "Ana Silva"),
        ("I'm  José   Núñez-García.", "José Núñez-García"),
        ("Seán O'Brien", "Seán O'Brien"),
        ("call me Li", "Li"),
    ]:
        messages, slots = validate(form, domain, {}, [("citizen_name", said)])
        assert slots == {"citizen_name": expected} and messages == [], said
    for said in ("<b>Ana</b>", "Ana <script>", "{{name}}", "Ana Silva 123", "R2D2", "0412 345 678", "x", "a" * 101):
        messages, slots = validate(form, domain, {}, [("citizen_name", said)])
        assert slots == {"citizen_name": None}, said
        assert messages[0]["text"] == "Please type the name for the appointment, using letters only.", said

    for said, expected in [
        ("0412 345-678", "0412345678"),
        ("+44 (20) 7946 0958", "+442079460958"),
        ("0412.345.678", "0412345678"),
    ]:
        messages, slots = validate(form, domain, {}, [("citizen_phone", said)])
        assert slots == {"citizen_phone": expected} and messages == [], said
    for said in ("12345", "call me maybe", "0412 345 678 9012 3456"):
        messages, slots = validate(form, domain, {}, [("citizen_phone", said)])
        assert slots == {"citizen_phone": None}, said
        assert messages[0]["text"].startswith("That does not look like a phone number."), said


def test_office_is_validated_before_the_date_that_came_with_it(action_backend, domain) -> None:
    form = ValidateAppointmentForm()
    day = open_day(action_backend, "west_centre")
    tracker = form_tracker(
        "appointment_form", {"service": "passport_renewal"}, [("appointment_date", day.isoformat()), ("office", "west")]
    )
    assert list(tracker.slots_to_validate()) == ["appointment_date", "office"], "the events really are in the wrong order"
    messages, events = run_action(form, tracker, domain)
    assert [m["text"].split(". ")[0] for m in messages] == [said_at("West Service Centre")]  # not asked: said
    assert slot_events(events) == {"office": "west_centre", "appointment_date": day.isoformat()}
    assert [e["name"] for e in events] == ["office", "appointment_date"]

    # The date is checked against the validated office: West is closed on Saturdays.
    saturday = next_weekday(5)
    messages, slots = validate(
        form, domain, {"service": "passport_renewal"}, [("appointment_date", saturday.isoformat()), ("office", "west")]
    )
    assert slots == {"office": "west_centre", "appointment_date": None}
    assert messages[-1]["text"].startswith("The office is closed on that day.")


def test_reschedule_form_checks_the_reference_before_the_date(action_backend, domain) -> None:
    day = open_day(action_backend, "riverside_point")
    start = action_backend.bookings.free_slots("riverside_point", day)[0]
    record = book(action_backend, "birth_registration", "riverside_point", start)
    monday = next_weekday(0)  # the rural point is closed on Mondays
    digits, proof = record.reference[3:], proof_of(action_backend, record.reference)
    messages, slots = validate(
        ValidateRescheduleForm(),
        domain,
        {"record_proof": proof},
        [("appointment_date", monday.isoformat()), ("appointment_reference", f"bk {digits}")],
    )
    assert slots == {
        "appointment_reference": record.reference,
        "record_proof": proof,
        "service": "birth_registration",
        "office": "riverside_point",
        "appointment_date": None,
    }
    assert messages[0]["text"].startswith("The office is closed on that day.")

    other = open_day(action_backend, "riverside_point", skip=1)
    messages, slots = validate(
        ValidateRescheduleForm(),
        domain,
        {"record_proof": proof},
        [("appointment_date", other.isoformat()), ("appointment_reference", record.reference)],
    )
    assert slots["appointment_date"] == other.isoformat() and messages == []


def test_validate_appointment_reference(action_backend, domain) -> None:
    day = open_day(action_backend, "central_centre")
    record = book(
        action_backend, "passport_renewal", "central_centre", action_backend.bookings.free_slots("central_centre", day)[0]
    )
    digits, proof = record.reference[3:], proof_of(action_backend, record.reference)
    wrong = f"{(int(proof) + 1) % 10000:04d}"
    for form in (ValidateCancelForm(), ValidateCheckAppointmentForm(), ValidateRescheduleForm()):
        me = form.form_name()  # a conversation each, so that their failures do not add up to the limit
        # a valid number alone reveals nothing: the form asks for the proof next
        messages, slots = validate(form, domain, {}, [("appointment_reference", f"bk {digits}")], sender=me)
        assert slots == {"appointment_reference": record.reference, "record_proof": None} and messages == []
        messages, slots = validate(
            form, domain, {"appointment_reference": record.reference}, [("record_proof", wrong)], sender=me
        )
        assert slots == {"record_proof": None}
        assert messages[0]["text"] == "Those digits do not match the phone number on this appointment. Please try again."
        messages, slots = validate(
            form, domain, {"appointment_reference": record.reference}, [("record_proof", f"it ends in {proof}")], sender=me
        )
        assert slots == {"record_proof": proof, "service": "passport_renewal", "office": "central_centre"} and messages == []
        messages, slots = validate(form, domain, {"appointment_reference": record.reference}, [("record_proof", "12")], sender=me)
        assert slots == {"record_proof": None} and messages[0]["text"].startswith("Please give four digits")
        messages, slots = validate(form, domain, {}, [("appointment_reference", "my number is 12")], sender=me)
        assert slots == {"appointment_reference": None}
        assert messages[0]["text"].startswith("That does not look like an appointment number.")
        swapped = record.reference[:-2] + record.reference[-1] + record.reference[-2]
        if swapped != record.reference:  # two equal last digits swap into the same number
            messages, slots = validate(form, domain, {}, [("appointment_reference", swapped)], sender=me)
            assert slots == {"appointment_reference": None} and messages[0]["text"].startswith("That number has a mistake")
        unknown = "BK-100000" if digits != "100000" else "BK-100001"
        messages, slots = validate(form, domain, {}, [("appointment_reference", unknown)], sender=me)
        assert slots == {"appointment_reference": None}
        assert messages[0]["text"] == "I could not find an appointment with that number. Please check it."

    action_backend.bookings.cancel(record.reference)
    messages, slots = validate(ValidateCancelForm(), domain, {}, [("appointment_reference", record.reference)])
    assert slots == {"appointment_reference": record.reference, "record_proof": None} and messages == []  # not even its status
    messages, slots = validate(
        ValidateCancelForm(), domain, {"appointment_reference": record.reference}, [("record_proof", proof)]
    )
    assert slots == {"record_proof": proof, "appointment_reference": None}
    assert messages[0]["text"] == "That appointment has already been cancelled."
    messages, slots = validate(
        ValidateCheckAppointmentForm(), domain, {"record_proof": proof}, [("appointment_reference", record.reference)]
    )
    assert slots["appointment_reference"] == record.reference and messages == []


# =========================================================================================
# Actions: the questions, built from real data
# =========================================================================================


def test_ask_service_stays_quiet_when_the_validation_just_offered_choices(action_backend, domain) -> None:
    """ "book a passport appointment": "Do you mean New passport or Passport renewal?" is the only question."""
    tracker = make_tracker({}, intent="book_appointment", active_loop="appointment_form")
    tracker.events.append(
        {
            "event": "bot",
            "text": "Do you mean New passport or Passport renewal or replacement?",
            "data": {"buttons": [{"title": "New passport", "payload": '/inform{"service":"passport_new"}'}]},
        }
    )
    assert run_action(ActionAskService(), tracker, domain) == ([], [])
    tracker.events.append({"event": "user", "text": "what", "parse_data": {"intent": {"name": "nlu_fallback"}}})
    messages, _ = run_action(ActionAskService(), tracker, domain)
    assert messages[0]["text"].startswith("Which service is the appointment for?"), "a later turn asks again"


def test_ask_service_and_office(action_backend, domain) -> None:
    messages, events = run(ActionAskService(), domain, {})
    assert events == [] and messages[0]["text"].startswith("Which service is the appointment for?")
    examples = ["passport_renewal", "id_card_renewal", "birth_registration", "marriage_registration", "pension_application"]
    assert payloads(messages[0]) == [f'/inform{{"service":"{s}"}}' for s in examples]
    assert [b["title"] for b in messages[0]["buttons"]] == [service_yml(s)["name"] for s in examples]

    messages, events = run(ActionAskOffice(), domain, {"service": "passport_renewal"})
    offices = service_yml("passport_renewal")["offices"]
    assert f"{len(offices)} offices offer passport renewal or replacement." in messages[0]["text"]
    shown = [expect.matched(r'"office":"(\w+)"', p).group(1) for p in payloads(messages[0])]
    assert sorted(shown) == sorted(offices)  # every office that offers it, none left out
    messages, _ = run(ActionAskOffice(), domain, {"service": "food_business_permit"})
    assert "1 office offers food business permit." in messages[0]["text"]
    assert payloads(messages[0]) == ['/inform{"office":"business_centre"}']


BOOKABLE = [s["id"] for s in _yaml("services.yml", "services").values() if s["bookable"]]


@pytest.mark.parametrize("service", BOOKABLE)
def test_every_office_offering_a_service_is_a_button_and_the_count_matches(action_backend, domain, service: str) -> None:
    offices = service_yml(service)["offices"]
    messages, _ = run(ActionAskOffice(), domain, {"service": service})
    shown = [expect.matched(r'"office":"(\w+)"', p).group(1) for p in payloads(messages[0])]
    assert sorted(shown) == sorted(offices)
    assert expect.matched(r"(\d+) offices? offers?", messages[0]["text"]).group(1) == str(len(shown))
    kinds = [office_yml(o)["kind"] for o in shown]
    assert "mobile_point" not in kinds or kinds[-1] == "mobile_point"  # the van, open a few hours a week, comes last

    messages, slots = validate(
        ValidateAppointmentForm(), domain, {"service": service}, [("office", "an office on the moon")], requested="office"
    )
    assert (messages, slots) == ([], {"office": None})  # the form asks again, with the buttons above: one question, not two


def test_moving_an_appointment_offers_other_days_than_its_own(action_backend, domain) -> None:
    first = action_backend.bookings.next_free("riverside_point", date.today(), 1)[0]
    record = book(action_backend, "birth_registration", "riverside_point", first)
    slots = {
        "office": "riverside_point",
        "appointment_reference": record.reference,
        "record_proof": proof_of(action_backend, record.reference),
    }
    messages, _ = run(ActionAskAppointmentDate(), domain, slots, "reschedule_form")
    offered = [date.fromisoformat(expect.matched(r'"date":"([\d-]+)"', p).group(1)) for p in payloads(messages[0])]
    assert len(offered) == 4 and first.date() not in offered
    assert (
        offered
        == [s.date() for s in action_backend.bookings.next_free("riverside_point", date.today(), 5) if s.date() != first.date()][
            :4
        ]
    )
    messages, _ = run(ActionAskAppointmentDate(), domain, {"office": "riverside_point"}, "appointment_form")
    assert f'/inform{{"date":"{first.date().isoformat()}"}}' in payloads(messages[0])  # a new booking may take that day


@pytest.mark.parametrize("weekday", [0, 2, 4])
def test_a_van_booking_gives_the_stop_of_its_day(action_backend, domain, weekday: int) -> None:
    van = office_yml("mobile_van")
    stop = van["stops"][("mon", "tue", "wed", "thu", "fri", "sat", "sun")[weekday]]
    day = next_weekday(weekday)
    start = action_backend.bookings.free_slots("mobile_van", day)[0]
    slots = {
        "service": "id_card_renewal",
        "office": "mobile_van",
        "appointment_date": day.isoformat(),
        "appointment_time": start.strftime("%H:%M"),
        "citizen_name": "Ana Silva",
        "citizen_phone": "0412345678",
        "booking_confirmed": True,
    }
    messages, _ = run(ActionBookAppointment(), domain, slots)
    assert f"at Mobile Service Van, {stop['place']}, on {spoken_datetime(start)}" in messages[0]["text"]
    assert messages[2]["custom"]["venue"] == {
        "latitude": stop["location"]["lat"],
        "longitude": stop["location"]["lon"],
        "title": van["name"],
        "address": stop["place"],
    }


def test_ask_date_offers_the_first_free_days(action_backend, domain) -> None:
    messages, events = run(ActionAskAppointmentDate(), domain, {"office": "riverside_point"}, "appointment_form")
    assert events == []
    expected = [s.date() for s in action_backend.bookings.next_free("riverside_point", date.today(), 4)]
    assert len(expected) == 4 and all(d.weekday() in (1, 3, 5) for d in expected)
    assert payloads(messages[0]) == [f'/inform{{"date":"{d.isoformat()}"}}' for d in expected]
    assert [b["title"] for b in messages[0]["buttons"]] == [spoken_date(d) for d in expected]
    assert all(spoken_date(d) in messages[0]["text"] for d in expected)

    # No free place in the whole booking horizon: the office is asked again.
    action_backend.bookings.horizon_days = 3
    today = date.today()
    for offset in range(4):
        fill_day(action_backend, "birth_registration", "riverside_point", today + timedelta(days=offset))
    messages, events = run(ActionAskAppointmentDate(), domain, {"office": "riverside_point"}, "appointment_form")
    assert "no free appointments" in messages[0]["text"]
    assert slot_events(events) == {"office": None}


def test_ask_time_offers_free_times_of_the_day(action_backend, domain) -> None:
    day = open_day(action_backend, "west_centre")
    taken = at(day, "08:30")
    book(action_backend, "passport_renewal", "west_centre", taken)
    book(action_backend, "passport_renewal", "west_centre", taken)
    book(action_backend, "passport_renewal", "west_centre", taken)  # three windows: now full
    free = action_backend.bookings.free_slots("west_centre", day)
    assert free[0] == at(day, "09:00")
    messages, events = run(ActionAskAppointmentTime(), domain, {"office": "west_centre", "appointment_date": day.isoformat()})
    assert events == []
    assert messages[0]["text"] == f"What time on {spoken_date(day)}? Free times start at 9 am, and the last is 4:30 pm."
    times = [expect.matched(r'"time":"([\d:]+)"', p).group(1) for p in payloads(messages[0])]
    assert [at(day, t) for t in times] == free, "every free time is offered (the phone pages them)"
    assert "08:30" not in times
    assert times == sorted(times) and len(set(times)) == len(times)
    assert times[-1] >= "14:00", "the buttons spread over the whole day, not just its first hours"

    riverside = open_day(action_backend, "riverside_point")
    fill_day(action_backend, "birth_registration", "riverside_point", riverside)
    messages, events = run(
        ActionAskAppointmentTime(), domain, {"office": "riverside_point", "appointment_date": riverside.isoformat()}
    )
    assert messages[0]["text"] == "That day has no free times left. Please choose another day."
    assert slot_events(events) == {"appointment_date": None}


def test_ask_confirmations_describe_the_appointment(action_backend, domain) -> None:
    day = open_day(action_backend, "central_centre")
    slots = {
        "service": "passport_renewal",
        "office": "central_centre",
        "appointment_date": day.isoformat(),
        "appointment_time": "10:15",
        "citizen_name": "Ana Silva",
    }
    messages, _ = run(ActionAskBookingConfirmed(), domain, slots, "appointment_form")
    assert messages[0]["text"] == (
        f"Please check: Passport renewal or replacement at Central Service Centre, on {spoken_date(day)} at 10:15 am, "
        "for Ana Silva. Shall I book it?"
    )
    assert payloads(messages[0]) == ["/affirm", "/deny"]
    messages, _ = run(ActionAskBookingConfirmed(), domain, {**slots, "appointment_reference": "BK-123456"}, "reschedule_form")
    assert messages[0]["text"] == f"Shall I move appointment BK-123456 to {spoken_date(day)} at 10:15 am?"

    record = book(action_backend, "passport_renewal", "central_centre", at(day, "11:00"))
    messages, _ = run(
        ActionAskCancelConfirmed(),
        domain,
        {"appointment_reference": record.reference, "record_proof": proof_of(action_backend, record.reference)},
        "cancel_form",
    )
    assert messages[0]["text"] == (
        f"Shall I cancel your appointment for Passport renewal or replacement at Central Service Centre on {spoken_date(day)} at 11 am?"
    )


# =========================================================================================
# Actions: what happens when a form is complete
# =========================================================================================


def _booking_slots(backend: ServiceBackend, office: str = "riverside_point", service: str = "birth_registration"):
    day = open_day(backend, office)
    start = backend.bookings.free_slots(office, day)[0]
    return start, {
        "service": service,
        "office": office,
        "appointment_date": day.isoformat(),
        "appointment_time": start.strftime("%H:%M"),
        "citizen_name": "Ana Silva",
        "citizen_phone": "0412345678",
        "booking_confirmed": True,
    }


RESET = {"appointment_date": None, "appointment_time": None, "booking_confirmed": None}


def test_book_appointment_books_and_confirms(action_backend, domain) -> None:
    start, slots = _booking_slots(action_backend)
    messages, events = run(ActionBookAppointment(), domain, slots, channel="telegram")
    reference = slot_events(events)["appointment_reference"]
    assert REFERENCE.match(reference)
    assert slot_events(events) == {**RESET, "appointment_reference": reference}
    text_ = messages[0]["text"]
    assert text_.startswith("Your appointment is booked. Birth registration at Riverside Service Point")
    assert reference in text_ and spoken_datetime(start) in text_
    documents = service_yml("birth_registration")["documents"]
    for number, document in enumerate(documents, start=1):
        assert f"{number}. {document}." in text_
    stored = stored_appointment(action_backend, reference)
    assert stored.status == "booked" and stored.slot.starts_at == start and stored.channel == "telegram"
    assert stored.citizen.phone == "0412345678" and stored.citizen.name == "Ana Silva"
    assert slot_row(action_backend, "riverside_point", start) == (1, 1)


def test_booking_sends_a_checklist_and_the_office_pin_for_channels_that_show_them(action_backend, domain) -> None:
    _, slots = _booking_slots(action_backend)
    messages, events = run(ActionBookAppointment(), domain, slots)
    reference = slot_events(events)["appointment_reference"]
    checklist, pin = messages[1]["custom"]["checklist"], messages[2]["custom"]["venue"]
    assert checklist["items"] == service_yml("birth_registration")["documents"]
    assert checklist["reference"] == reference and "Riverside Service Point" in checklist["title"]
    office = office_yml("riverside_point")
    assert (pin["latitude"], pin["longitude"]) == (office["location"]["lat"], office["location"]["lon"])
    assert pin["title"] == office["name"] and pin["address"] == office["address"]


def test_book_appointment_declined_books_nothing(action_backend, domain) -> None:
    start, slots = _booking_slots(action_backend)
    for confirmed in (False, None):
        messages, events = run(ActionBookAppointment(), domain, {**slots, "booking_confirmed": confirmed})
        assert "I have not booked anything" in messages[0]["text"]
        assert slot_events(events) == RESET
    assert appointment_count(action_backend) == 0
    assert start in action_backend.bookings.free_slots("riverside_point", start.date())


def test_book_appointment_when_the_slot_was_taken_meanwhile(action_backend, domain) -> None:
    start, slots = _booking_slots(action_backend)
    someone = book(action_backend, "birth_registration", "riverside_point", start, phone="0499 111 222")
    messages, events = run(ActionBookAppointment(), domain, slots)
    assert messages[0]["text"].startswith("That time is already taken. The nearest free times are")
    alternatives = action_backend.bookings.free_slots("riverside_point", start.date())[:3]
    assert [b["title"] for b in messages[0]["buttons"]] == [spoken_datetime(s) for s in alternatives]
    assert {"event": "followup", "name": "appointment_form"} in [
        {k: e[k] for k in ("event", "name")} for e in events if e["event"] == "followup"
    ]
    assert slot_events(events) == RESET and "appointment_reference" not in slot_events(events)
    assert appointment_count(action_backend) == 1
    assert stored_appointment(action_backend, someone.reference).status == "booked"
    assert slot_row(action_backend, "riverside_point", start) == (1, 1)


def test_reschedule_action_moves_or_sends_back_to_the_form(action_backend, domain) -> None:
    day = open_day(action_backend, "riverside_point")
    free = action_backend.bookings.free_slots("riverside_point", day)
    record = book(action_backend, "birth_registration", "riverside_point", free[0])
    new = free[2]
    slots = {
        "appointment_reference": record.reference,
        "appointment_date": day.isoformat(),
        "appointment_time": new.strftime("%H:%M"),
        "booking_confirmed": True,
        "record_proof": proof_of(action_backend, record.reference),
    }

    messages, events = run(ActionRescheduleAppointment(), domain, {**slots, "record_proof": None}, "reschedule_form")
    assert messages[0]["text"].startswith("For your security I cannot show or change this appointment here.")
    assert slot_events(events) == {**RESET, "record_proof": None}
    assert action_backend.bookings.get(record.reference).starts_at == free[0]

    messages, events = run(ActionRescheduleAppointment(), domain, {**slots, "booking_confirmed": False}, "reschedule_form")
    assert messages[0]["text"] == "All right, I have not changed your appointment."
    assert action_backend.bookings.get(record.reference).starts_at == free[0]

    messages, events = run(ActionRescheduleAppointment(), domain, slots, "reschedule_form")
    assert messages[0]["text"].startswith("Your appointment is moved.")
    assert record.reference in messages[0]["text"] and spoken_datetime(new) in messages[0]["text"]
    assert slot_events(events) == RESET
    assert stored_appointment(action_backend, record.reference).slot.starts_at == new
    assert slot_row(action_backend, "riverside_point", free[0]) == (0, 1)
    assert slot_row(action_backend, "riverside_point", new) == (1, 1)

    book(action_backend, "birth_registration", "riverside_point", free[1])
    messages, events = run(
        ActionRescheduleAppointment(), domain, {**slots, "appointment_time": free[1].strftime("%H:%M")}, "reschedule_form"
    )
    assert messages[0]["text"].startswith("That time is already taken.")
    assert any(e["event"] == "followup" and e["name"] == "reschedule_form" for e in events)
    assert stored_appointment(action_backend, record.reference).slot.starts_at == new


def test_cancel_action(action_backend, domain) -> None:
    start, _ = _booking_slots(action_backend)
    record = book(action_backend, "birth_registration", "riverside_point", start)
    mine = {"appointment_reference": record.reference, "record_proof": proof_of(action_backend, record.reference)}
    for proof in (None, "refused", "0000" if mine["record_proof"] != "0000" else "1111"):
        messages, events = run(ActionCancelAppointment(), domain, {**mine, "record_proof": proof, "cancel_confirmed": True})
        assert messages[0]["text"].startswith("For your security I cannot show or change this appointment here.")
        assert payloads(messages[0]) == ["/request_human", "/find_office"]
        assert slot_events(events) == {"cancel_confirmed": None, "record_proof": None}
        assert action_backend.bookings.get(record.reference).status == "booked"

    messages, events = run(ActionCancelAppointment(), domain, {**mine, "cancel_confirmed": False})
    assert messages[0]["text"] == "All right, your appointment is still booked."
    assert slot_events(events) == {"cancel_confirmed": None}
    assert action_backend.bookings.get(record.reference).status == "booked"

    messages, events = run(ActionCancelAppointment(), domain, {**mine, "cancel_confirmed": True})
    assert messages[0]["text"] == (
        f"Your appointment {record.reference} on {spoken_datetime(start)} is cancelled. The time is free for someone else now."
    )
    assert slot_events(events) == {"cancel_confirmed": None, "appointment_reference": None, "record_proof": None}
    assert stored_appointment(action_backend, record.reference).status == "cancelled"
    assert slot_row(action_backend, "riverside_point", start) == (0, 1)

    messages, events = run(ActionCancelAppointment(), domain, {**mine, "cancel_confirmed": True})
    assert messages[0]["text"] == "That appointment has already been cancelled."
    assert slot_events(events) == {"cancel_confirmed": None}


def test_check_appointment_action(action_backend, domain) -> None:
    start, _ = _booking_slots(action_backend, "central_centre", "passport_renewal")
    record = book(action_backend, "passport_renewal", "central_centre", start)
    mine = {"appointment_reference": record.reference, "record_proof": proof_of(action_backend, record.reference)}
    messages, events = run(ActionCheckAppointment(), domain, {"appointment_reference": record.reference})
    assert messages[0]["text"].startswith("For your security I cannot show or change this appointment here.")
    assert record.reference not in messages[0]["text"] and "Central" not in messages[0]["text"]
    messages, events = run(ActionCheckAppointment(), domain, mine)
    assert events == []
    assert messages[0]["text"] == (
        f"Appointment {record.reference}: Passport renewal or replacement at Central Service Centre, "
        f"1 Market Square, Central, on {spoken_datetime(start)}."
    )
    assert payloads(messages[0]) == [
        f'/reschedule_appointment{{"reference":"{record.reference}"}}',
        f'/cancel_appointment{{"reference":"{record.reference}"}}',
        '/ask_documents{"service":"passport_renewal"}',
    ]
    action_backend.bookings.cancel(record.reference)
    messages, _ = run(ActionCheckAppointment(), domain, mine)
    assert messages[0]["text"] == f"Appointment {record.reference} was cancelled. You can book a new one."
    messages, _ = run(ActionCheckAppointment(), domain, {**mine, "appointment_reference": "nonsense"})
    assert messages[0]["text"].startswith("For your security I cannot show or change this appointment here.")


def test_a_chat_linked_to_a_phone_picks_from_its_upcoming_appointments(action_backend, domain) -> None:
    day = open_day(action_backend, "riverside_point")
    free = action_backend.bookings.free_slots("riverside_point", day)
    mine = [book(action_backend, "birth_registration", "riverside_point", moment, phone="0412 999 000") for moment in free[:2]]
    book(action_backend, "birth_registration", "riverside_point", free[2], phone="0412 999 111")  # someone else's
    action_backend.citizens.link_identity("telegram", "4242", "0412 999 000")
    signed = {"sender_signature": sign_sender("telegram:4242")}
    tracker = make_tracker({}, active_loop="check_appointment_form", sender_id="telegram:4242", channel="rest", metadata=signed)
    messages, _ = run_action(ActionAskAppointmentReference(), tracker, domain)
    assert payloads(messages[0]) == [f'/inform{{"reference":"{r.reference}"}}' for r in mine]
    assert all(r.reference in messages[0]["text"] for r in mine)
    # the chat's identity proves the appointment is theirs: no digits asked for
    tracker = form_tracker("check_appointment_form", {}, [("appointment_reference", mine[0].reference)])
    tracker.sender_id, tracker.events[-2]["metadata"] = "telegram:4242", signed
    _, events = run_action(ValidateCheckAppointmentForm(), tracker, domain)
    assert slot_events(events) == {
        "appointment_reference": mine[0].reference,
        "record_proof": "linked",
        "service": "birth_registration",
        "office": "riverside_point",
    }


@pytest.mark.parametrize("signature", [None, "0" * 64, "forged"])
def test_a_sender_id_claimed_over_rest_is_not_a_linked_identity(action_backend, domain, signature: Optional[str]) -> None:
    day = open_day(action_backend, "riverside_point")
    theirs = book(
        action_backend,
        "birth_registration",
        "riverside_point",
        action_backend.bookings.free_slots("riverside_point", day)[0],
        phone="0412 999 000",
    )
    action_backend.citizens.link_identity("telegram", "4242", "0412 999 000")
    metadata = {"sender_signature": signature} if signature else {}
    tracker = make_tracker({}, active_loop="check_appointment_form", sender_id="telegram:4242", metadata=metadata)
    messages, _ = run_action(ActionAskAppointmentReference(), tracker, domain)
    assert not messages[0]["buttons"] and theirs.reference not in messages[0]["text"]
    tracker = make_tracker({"appointment_reference": theirs.reference}, sender_id="telegram:4242", metadata=metadata)
    messages, _ = run_action(ActionCheckAppointment(), tracker, domain)
    assert messages[0]["text"].startswith("For your security") and "Riverside" not in messages[0]["text"]


@pytest.mark.parametrize("form", ["check_appointment_form", "reschedule_form", "cancel_form"])
def test_a_known_citizen_without_upcoming_appointments_is_told_so_plainly(action_backend, domain, form: str) -> None:
    day = open_day(action_backend, "riverside_point")
    cancelled = book(
        action_backend,
        "birth_registration",
        "riverside_point",
        action_backend.bookings.free_slots("riverside_point", day)[0],
        phone="0412 777 000",
    )
    action_backend.bookings.cancel(cancelled.reference)  # a cancelled one is not upcoming
    book(
        action_backend,
        "birth_registration",
        "riverside_point",
        action_backend.bookings.free_slots("riverside_point", day)[0],
        phone="0412 777 111",
    )  # someone else's
    action_backend.citizens.link_identity("telegram", "7070", "0412 777 000")
    tracker = make_tracker(
        {}, active_loop=form, sender_id="telegram:7070", metadata={"sender_signature": sign_sender("telegram:7070")}
    )
    messages, events = run_action(ActionAskAppointmentReference(), tracker, domain)
    text_ = messages[0]["text"]
    assert text_.startswith("You have no upcoming appointments") and "appointment number" in text_ and "book" in text_
    assert [b["payload"] for b in messages[0]["buttons"]] == ["/main_menu", "/request_human"] and events == []
    assert cancelled.reference not in text_


@pytest.mark.parametrize("sender", ["telegram:5151", "someone-on-rest"])
def test_without_a_linked_phone_the_appointment_number_is_asked_for(action_backend, domain, sender: str) -> None:
    book(
        action_backend,
        "birth_registration",
        "riverside_point",
        action_backend.bookings.free_slots("riverside_point", open_day(action_backend, "riverside_point"))[0],
    )
    tracker = make_tracker({}, active_loop="check_appointment_form", sender_id=sender)
    messages, _ = run_action(ActionAskAppointmentReference(), tracker, domain)
    assert messages[0]["text"].startswith("What is your appointment number?") and not messages[0]["buttons"]
