"""End to end over the REST channel: the real Rasa server, action server, model and database."""

from __future__ import annotations

import re
import threading
from datetime import date, datetime, time, timedelta
from typing import Any, Dict, List, Optional

import pytest
from sqlalchemy import func, select

from harness.stack import Stack
from onewindow.backend import ServiceBackend
from onewindow.storage import models
from tests import expect
from tests.fixtures_stack import RunningStack

pytestmark = pytest.mark.stack
REFERENCE = re.compile(r"\bBK-\d{5}-\d{5}\b")
PROOF = "5678"  # the last four digits of the phone number the booking was made with


@pytest.fixture(scope="module")
def stack(running_stack: RunningStack) -> Stack:
    return running_stack(instances=2)  # the default of `make run`: two instances behind HAProxy


@pytest.fixture(scope="module")
def backend(stack: Stack) -> ServiceBackend:
    return ServiceBackend.from_url(stack.database_url)


def texts(messages: List[Dict[str, Any]]) -> str:
    return " ".join(m.get("text", "") for m in messages)


def payloads(messages: List[Dict[str, Any]]) -> List[str]:
    return [b["payload"] for m in messages for b in m.get("buttons", [])]


def press(stack: Stack, sender: str, messages: List[Dict[str, Any]], contains: str = "", index: int = 0) -> List[Dict[str, Any]]:
    """Press a button the bot offered (the first whose payload contains `contains`)."""
    choices = [p for p in payloads(messages) if contains in p]
    assert choices, f"no button with {contains!r} in {payloads(messages)}"
    return stack.say(sender, choices[min(index, len(choices) - 1)])


def booking_request(service: str, office: str, day: date, at: Optional[time] = None) -> str:
    """A booking asked for in words (a hand-made "/book_appointment{...}" is read as text: only payloads the assistant offered count)."""
    return f"book an appointment for a {service} at the {office} on {day.isoformat()}" + (f" at {at:%H:%M}" if at else "")


def book_by_buttons(stack: Stack, sender: str) -> str:
    answer = stack.say(sender, "I would like to book an appointment for a passport renewal please")
    assert "Which office" in texts(answer)
    answer = press(stack, sender, answer, "north_centre")
    assert "Which day" in texts(answer)
    answer = press(stack, sender, answer, '"date"')
    assert "What time" in texts(answer)
    answer = press(stack, sender, answer, '"time"')
    assert "name" in texts(answer)
    answer = stack.say(sender, "Ana Silva")
    assert "phone" in texts(answer)
    answer = stack.say(sender, "0412 345 678")
    assert "Shall I book it?" in texts(answer) and "Ana Silva" in texts(answer)
    answer = press(stack, sender, answer, "/affirm")
    found = REFERENCE.search(texts(answer))
    assert found, texts(answer)
    return found.group(0)


def test_book_check_reschedule_and_cancel(stack: Stack, backend: ServiceBackend) -> None:
    reference = book_by_buttons(stack, "e2e-booker")
    booked = expect.booking(backend, reference)
    assert booked.status == "booked" and booked.office_id == "north_centre" and booked.service_id == "passport_renewal"

    answer = stack.say("e2e-checker", "can you check my appointment")
    assert "appointment number" in texts(answer)
    answer = stack.say("e2e-checker", reference.lower().replace("-", " "))
    assert "last four digits" in texts(answer) and "North Service Centre" not in texts(answer)
    answer = stack.say("e2e-checker", PROOF)
    assert reference in texts(answer) and "North Service Centre" in texts(answer)

    answer = stack.say("e2e-mover", f"I need to change my appointment {reference}")
    assert "last four digits" in texts(answer)
    answer = stack.say("e2e-mover", PROOF)
    assert "Which day" in texts(answer)
    answer = press(stack, "e2e-mover", answer, '"date"', index=1)
    answer = press(stack, "e2e-mover", answer, '"time"', index=1)
    assert "Shall I move" in texts(answer)
    answer = press(stack, "e2e-mover", answer, "/affirm")
    assert "moved" in texts(answer)
    moved = expect.booking(backend, reference)
    assert moved.starts_at != booked.starts_at and moved.status == "booked"

    answer = stack.say("e2e-canceller", f"please cancel appointment {reference}")
    assert "last four digits" in texts(answer)
    answer = stack.say("e2e-canceller", PROOF)
    assert "Shall I cancel" in texts(answer)
    answer = stack.say("e2e-canceller", "yes")
    assert "is cancelled" in texts(answer)
    assert expect.booking(backend, reference).status == "cancelled"


def test_question_in_the_middle_of_a_booking_is_answered_and_the_booking_goes_on(stack: Stack) -> None:
    sender = "e2e-digress"
    answer = stack.say(sender, "book an appointment for passport renewal")
    assert "Which office" in texts(answer)
    answer = stack.say(sender, "how much does it cost?")
    assert "100 dollars" in texts(answer)
    assert "Which office" in texts(answer), "the form must ask its question again"
    answer = stack.say(sender, "stop")
    assert "stopped" in texts(answer)
    assert stack.tracker(sender)["active_loop"] in ({}, None) or not stack.tracker(sender)["active_loop"].get("name")


def test_context_carries_over_to_the_next_question(stack: Stack) -> None:
    stack.say("e2e-context", "tell me about passport renewal")
    answer = stack.say("e2e-context", "how much is it?")
    assert "Passport renewal" in texts(answer) and "100 dollars" in texts(answer)


def test_life_event_gets_every_related_service(stack: Stack, backend: ServiceBackend) -> None:
    answer = stack.say("e2e-life", "my father passed away last week, what do I have to do")
    event = expect.life_event(backend.catalogue, "death")
    for step in event.steps:
        assert step.service.name in texts(answer)


def test_application_status_by_reference(stack: Stack) -> None:
    answer = stack.say("e2e-status", "what is the status of my application APP-100001")
    assert "last four digits" in texts(answer) and "ready for collection" not in texts(answer)
    answer = stack.say("e2e-status", "0006")  # the sample application's phone number ends in 0006
    assert "ready for collection" in texts(answer)
    answer = stack.say("e2e-status-2", "check the status of my application")
    assert "application number" in texts(answer)
    answer = stack.say("e2e-status-2", "APP-12")
    assert "does not look like an application number" in texts(answer)
    answer = stack.say("e2e-status-2", "APP-999999")
    assert "could not find" in texts(answer)


def test_two_misunderstandings_in_a_row_hand_over_to_a_person(stack: Stack) -> None:
    first = stack.say("e2e-lost", "blorf wibble zong")
    assert "another way" in texts(first)
    second = stack.say("e2e-lost", "zorp quux flib")
    assert [r["custom"]["handoff"]["reason"] for r in second if "custom" in r] == ["low_confidence"]  # tests/test_handoff_e2e.py


@pytest.mark.parametrize(
    "message",
    [
        "",
        "   \n\t ",
        "please help " * 900,
        "😀😀😀🙏",
        "我想办护照",
        "'; DROP TABLE appointments; --",
        "<script>alert('x')</script><b>hi</b>",
        "BK-12",
    ],
    ids=["empty", "whitespace", "10000-chars", "emoji", "not-english", "sql", "markup", "malformed-ref"],
)
def test_bad_input_gets_a_clear_reply_and_breaks_nothing(stack: Stack, backend: ServiceBackend, message: str) -> None:
    with backend.engine.connect() as connection:
        before = connection.scalar(select(func.count()).select_from(models.Office))
    answer = stack.say(f"e2e-bad-{abs(hash(message))}", message)
    assert answer and all(m.get("text") for m in answer)
    assert "<script>" not in texts(answer)
    assert stack.say("e2e-bad-after", "hello"), "the server still answers"
    with backend.engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(models.Office)) == before


def test_two_conversations_booking_the_last_place_at_once_get_one_booking(stack: Stack, backend: ServiceBackend) -> None:
    day = backend.bookings.next_free("central_centre", date.today() + timedelta(days=2), 1)[0].date()
    start = backend.bookings.free_slots("central_centre", day)[-1]
    slot_filter = (models.AppointmentSlot.office_id == "central_centre", models.AppointmentSlot.starts_at == start)
    with backend.engine.connect() as connection:
        capacity = connection.scalar(select(models.AppointmentSlot.capacity).where(*slot_filter))
    for n in range(capacity - 1):
        backend.bookings.book("id_card_renewal", "central_centre", start, f"Filler {n}", f"04000000{n:02d}", "test")
    senders = ["e2e-race-a", "e2e-race-b"]
    for number, sender in enumerate(senders):
        stack.say(sender, booking_request("id card renewal", "central service centre", day, start.time()))
        stack.say(sender, f"Racer {'AB'[number]}")
        answer = stack.say(sender, f"04111111{number:02d}")
        assert "Shall I book it?" in texts(answer)
    results: Dict[str, str] = {}
    barrier = threading.Barrier(len(senders))

    def confirm(sender: str) -> None:
        barrier.wait()
        results[sender] = texts(stack.say(sender, "/affirm"))

    threads = [threading.Thread(target=confirm, args=(s,)) for s in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    booked = [s for s, text in results.items() if REFERENCE.search(text)]
    assert len(booked) == 1, results
    loser = next(s for s in senders if s not in booked)
    assert "taken" in results[loser]
    with backend.engine.connect() as connection:
        assert connection.scalar(select(models.AppointmentSlot.booked).where(*slot_filter)) == capacity


def test_booking_in_the_past_or_outside_hours_gets_a_clear_reply(stack: Stack) -> None:
    past = date.today() - timedelta(days=3)
    answer = stack.say("e2e-past", booking_request("passport renewal", "north service centre", past))
    assert "already passed" in texts(answer)
    day = (datetime.now() + timedelta(days=7 - datetime.now().weekday())).date()  # next Monday
    answer = stack.say("e2e-late", booking_request("passport renewal", "north service centre", day, time(21, 0)))
    assert "not open at that time" in texts(answer)


def test_a_booking_goes_on_when_the_instance_it_started_on_stops(stack: Stack) -> None:
    """The instances share the tracker store: the other one continues the conversation where it was. HAProxy keeps
    the conversation on one instance; stopping each in turn stops the one it is on at least once."""
    sender = "e2e-failover"
    answer = stack.say(sender, "I would like to book an appointment for a passport renewal please")
    answer = press(stack, sender, answer, "north_centre")
    assert "Which day" in texts(answer)
    stack.halt("rasa server 1")
    try:
        answer = press(stack, sender, answer, '"date"')
        assert "What time" in texts(answer), "the form goes on at the step it had reached"
    finally:
        stack.resume("rasa server 1")
    stack.halt("rasa server 2")
    try:
        answer = stack.say(sender, "how much is it?")
        assert "100 dollars" in texts(answer) and "What time" in texts(answer)
    finally:
        stack.resume("rasa server 2")
    answer = stack.say(sender, "stop")
    assert "stopped" in texts(answer)
