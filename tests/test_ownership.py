"""The ownership gate (onewindow/backend/ownership.py) on both databases, and that no action goes around it."""

from __future__ import annotations

import ast
import random
import re
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from onewindow.backend import BookingError, ServiceBackend
from onewindow.backend.ownership import MAX_FAILURES, NotYours, Ownership, Requester
from onewindow.backend.records import AppointmentRecord
from onewindow.backend.references import new_reference
from onewindow.infra.logs import pseudonym
from onewindow.storage import models
from onewindow.storage.db import make_sessionmaker
from tests import expect

ACTIONS = Path(__file__).resolve().parent.parent / "actions"
PHONE, OTHER_PHONE = "0412 555 0137", "0412 555 0842"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gate(module_backend: ServiceBackend, clock: Clock) -> Iterator[Ownership]:
    """The gate on the module's seeded database (SQLite and PostgreSQL), with no failures recorded yet."""
    sessions = make_sessionmaker(module_backend.engine)
    with sessions.begin() as session:
        session.execute(delete(models.RecordLookup))
    yield Ownership(sessions, module_backend.bookings, module_backend.applications, clock=clock)


def someone(proof: Optional[str] = None, identity: Optional[Tuple[str, str]] = None, channel: str = "rest") -> Requester:
    """A new conversation."""
    return Requester(f"{channel}-{uuid.uuid4().hex[:8]}", channel, identity, proof)


def booked(backend: ServiceBackend, phone: str = PHONE) -> AppointmentRecord:
    office = "riverside_point"
    start = backend.bookings.next_free(office, date.today() + timedelta(days=1), 1)[0]
    return backend.bookings.book("birth_registration", office, start, "Ana Silva", phone, "rest")


def test_the_last_four_digits_of_the_phone_on_the_booking_prove_it(module_backend: ServiceBackend, gate: Ownership) -> None:
    record = booked(module_backend)
    for proof in ("0137", " 0 1 3 7 ", "it ends in 0137"):
        verdict, shown = gate.appointment(record.reference.lower().replace("-", " "), someone(proof))
        assert verdict.reason == "proof" and shown == record, proof
    refused: List[Tuple[Optional[str], str]] = [
        (None, "needs_proof"),
        ("", "needs_proof"),
        ("0842", "wrong_proof"),
        ("137", "wrong_proof"),
        ("50137", "wrong_proof"),
    ]
    for offered, reason in refused:
        verdict, shown = gate.appointment(record.reference, someone(offered))
        assert (verdict.reason, shown) == (reason, None), offered


def test_a_linked_identity_proves_only_its_own_citizens_records(module_backend: ServiceBackend, gate: Ownership) -> None:
    phone, other_phone = (f"0413{random.randrange(10**6):06d}" for _ in range(2))
    mine, theirs = booked(module_backend, phone), booked(module_backend, other_phone)
    chat_id = uuid.uuid4().hex[:8]
    module_backend.citizens.link_identity("telegram", chat_id, phone)
    chat = someone(identity=("telegram", chat_id), channel="telegram")
    verdict, shown = gate.appointment(mine.reference, chat)
    assert verdict.reason == "linked" and shown == mine
    assert gate.appointment(theirs.reference, chat)[0].reason == "needs_proof"
    assert [r.reference for r in expect.present(gate.upcoming_appointments(chat), "the chat's appointments")] == [mine.reference]
    assert gate.upcoming_appointments(someone()) is None  # no identity vouched for: nobody known, nothing listed


def test_a_linked_identity_lists_only_its_own_citizens_applications(module_backend: ServiceBackend, gate: Ownership) -> None:
    module_backend.citizens.link_identity("phone", "0491570006", "0491 570 006")  # the sample APP-100001's number
    caller = someone(identity=("phone", "0491570006"), channel="phone")
    assert [a.reference for a in expect.present(gate.applications_of(caller), "the caller's applications")] == ["APP-100001"]
    assert gate.applications_of(someone()) is None
    stranger = uuid.uuid4().hex[:8]
    module_backend.citizens.link_identity("telegram", stranger, f"0413{random.randrange(10**6):06d}")
    assert gate.applications_of(someone(identity=("telegram", stranger), channel="telegram")) == []


def test_cancel_and_reschedule_need_the_proof(module_backend: ServiceBackend, gate: Ownership) -> None:
    record = booked(module_backend)
    later = module_backend.bookings.next_free("riverside_point", record.starts_at.date() + timedelta(days=1), 1)[0]
    for stranger in (someone(), someone("0842"), someone(identity=("telegram", "9999"))):
        with pytest.raises(NotYours):
            gate.cancel_appointment(record.reference, stranger)
        with pytest.raises(NotYours):
            gate.reschedule_appointment(record.reference, stranger, later)
    assert module_backend.bookings.get(record.reference) == record
    moved = gate.reschedule_appointment(record.reference, someone("0137"), later)
    assert moved.starts_at == later
    assert gate.cancel_appointment(record.reference, someone("0137")).status == "cancelled"
    with pytest.raises(BookingError):
        gate.cancel_appointment(record.reference, someone("0137"))


def test_application_status_needs_the_proof(gate: Ownership) -> None:
    verdict, shown = gate.application("APP-100001", someone())
    assert (verdict.reason, shown) == ("needs_proof", None)
    verdict, shown = gate.application("app 100001", someone("0006"))
    assert verdict.reason == "proof" and shown is not None and shown.reference == "APP-100001" and shown.history
    assert gate.application("APP-100001", someone("0156"))[1] is None
    assert gate.check("application", "APP-48291-37508", someone("0110")).reason == "proof"
    assert gate.check("application", "APP-48291-37580", someone("0110")).reason == "mistyped"
    assert gate.check("application", "BK-48291-37508", someone("0110")).reason == "malformed"
    assert gate.check("appointment", "APP-100001", someone("0006")).reason == "malformed"


def test_an_application_without_an_owner_is_not_shown_remotely(module_backend: ServiceBackend, gate: Ownership) -> None:
    reference = new_reference("application")
    module_backend.applications.record(reference, "passport_new", [("received", datetime(2026, 11, 1), None)])
    assert gate.check("application", reference, someone("1234")).reason == "no_owner"


def test_five_failures_stop_a_conversation_then_the_window_passes(
    module_backend: ServiceBackend, gate: Ownership, clock: Clock
) -> None:
    record = booked(module_backend)
    me = someone()
    for attempt in range(MAX_FAILURES - 1):
        assert gate.check("appointment", f"BK-{100000 + attempt}", me).reason == "unknown"
    assert gate.check("appointment", record.reference, Requester(me.sender_id, me.channel, None, "9999")).reason == "limited"
    assert gate.check("appointment", record.reference, Requester(me.sender_id, me.channel, None, "0137")).reason == "limited"
    assert gate.check("appointment", record.reference, someone("0137")).reason == "proof"  # another conversation
    clock.now += timedelta(minutes=61)
    assert gate.check("appointment", record.reference, Requester(me.sender_id, me.channel, None, "0137")).reason == "proof"


def test_the_limit_holds_per_source_across_conversations(module_backend: ServiceBackend, gate: Ownership) -> None:
    booked(module_backend)
    caller = ("phone", "0412999000")
    for _ in range(MAX_FAILURES):
        assert gate.check("appointment", "BK-100000", someone(identity=caller, channel="phone")).reason == "unknown"
    assert gate.check("appointment", "BK-100001", someone(identity=caller, channel="phone")).reason == "limited"
    assert gate.check("appointment", "BK-100001", someone(identity=("phone", "0412999001"), channel="phone")).reason == "unknown"


def test_wrong_digits_from_many_conversations_lock_the_record_for_everyone(
    module_backend: ServiceBackend, gate: Ownership
) -> None:
    target, other = booked(module_backend), booked(module_backend, OTHER_PHONE)
    guesses = [f"{n:04d}" for n in range(1000, 1000 + MAX_FAILURES)]
    reasons = [gate.check("appointment", target.reference, someone(guess)).reason for guess in guesses]
    assert reasons == ["wrong_proof"] * (MAX_FAILURES - 1) + ["limited"]
    assert gate.check("appointment", target.reference, someone("0137")).reason == "limited"  # the owner goes to the office
    assert gate.check("appointment", other.reference, someone("0842")).reason == "proof"


def test_staff_see_every_failure_without_personal_data(module_backend: ServiceBackend, gate: Ownership, clock: Clock) -> None:
    record = booked(module_backend)
    stranger = Requester("telegram:555", "telegram", None, "0842")
    gate.check("appointment", record.reference, stranger)
    clock.now += timedelta(minutes=1)
    gate.check("application", "APP-999999", stranger)
    rows = gate.failed_lookups()
    assert [(r.kind, r.reason, r.channel) for r in rows] == [
        ("application", "unknown", "telegram"),
        ("appointment", "wrong_proof", "telegram"),
    ]
    assert rows[0].at == clock.now and rows[1].at == clock.now - timedelta(minutes=1)
    assert {r.conversation_key for r in rows} == {pseudonym("telegram:555")}
    assert [r.record_key for r in rows] == [pseudonym("APP-999999"), pseudonym(record.reference)]
    assert {r.source_key for r in rows} == {pseudonym(stranger.source())}
    for row in rows:  # pseudonyms (salted hashes) and closed vocabularies only: no sender, number, digits or reference
        assert all(re.fullmatch(r"[0-9a-f]{12}", key) for key in (row.conversation_key, row.source_key, row.record_key))
    assert gate.failed_lookups(since=clock.now) == rows[:1]


def test_staff_see_who_keeps_failing(module_backend: ServiceBackend, gate: Ownership, clock: Clock) -> None:
    start = clock.now
    guesser, slip = someone(), someone()
    for n in range(MAX_FAILURES + 2):
        clock.now += timedelta(seconds=10)
        gate.check("appointment", f"BK-{200000 + n}", guesser)
    gate.check("appointment", "BK-299999", slip)  # one slip is not repeated
    [repeated] = gate.repeated_failures(since=start)
    assert (repeated.source_key, repeated.channel) == (pseudonym(guesser.source()), "rest")
    assert (repeated.failures, repeated.limited) == (MAX_FAILURES + 2, 2)
    assert (repeated.first_at, repeated.last_at) == (start + timedelta(seconds=10), clock.now)
    assert [r.source_key for r in gate.repeated_failures(since=start, at_least=1)] == [
        pseudonym(guesser.source()),
        pseudonym(slip.source()),
    ]
    assert gate.repeated_failures(since=clock.now + timedelta(seconds=1)) == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet="0123456789 -", min_size=0, max_size=8))
@example("0137")
@example("0 1-3 7")
def test_only_the_right_four_digits_open_the_record(module_backend: ServiceBackend, gate: Ownership, said: str) -> None:
    record = booked(module_backend)
    with make_sessionmaker(module_backend.engine).begin() as session:
        session.execute(delete(models.RecordLookup))  # each example starts below the limits
    granted = gate.check("appointment", record.reference, someone(said)).granted
    assert granted == ("".join(ch for ch in said if ch.isdigit()) == "0137")


# --- no action goes around the gate ---------------------------------------------------------------------

UNGUARDED = {
    ("bookings", "get"),
    ("bookings", "cancel"),
    ("bookings", "reschedule"),
    ("bookings", "upcoming_for_phone"),
    ("applications", "status"),
    ("citizens", "phone_for_identity"),
}
GUARDED_MODULES = ("appointments.py", "applications.py", "reports.py", "ownership.py", "shared.py")


def unguarded_calls(source: str) -> List[str]:
    """`x.bookings.get`-style look-ups of personal records that do not go through `ownership`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            if (node.value.attr, node.attr) in UNGUARDED:
                found.append(f"{node.value.attr}.{node.attr}")
    return found


def test_the_check_finds_a_call_around_the_gate() -> None:
    assert unguarded_calls("record = await call(backend().bookings.get, code)") == ["bookings.get"]
    assert unguarded_calls("backend().ownership.appointment(code, who)") == []


@pytest.mark.parametrize("module", GUARDED_MODULES)
def test_actions_see_and_change_records_only_through_the_gate(module: str) -> None:
    assert unguarded_calls((ACTIONS / module).read_text()) == []
