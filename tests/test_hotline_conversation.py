"""The hotline's conversation by keypad alone, over REST with the real stack (HAProxy, Rasa, action server, database).

Each message is what the gateway sends for a key: a button's payload, signed as the caller
"phone:<number>", with the metadata {"input": "keypad", "speech": false}. Every top task runs from
the main menu to its end without a word; the miss ladder and the handoff are the conversation side
of a caller nobody understands. Whole calls with audio and keys are tests/test_hotline_keypad.py.
"""

from __future__ import annotations

import json
import re
import urllib.request
from datetime import date
from typing import Any, Dict, Iterator, List

import pytest

from console.conversations import ConversationStore
from harness.stack import Stack
from onewindow.backend import ServiceBackend
from onewindow.channels.senders import sign_sender
from onewindow.rasa_plugins.events_table import tracker_engine
from tests import expect
from tests.fixtures_stack import RunningStack
from tests.telegram_api import LocalBotApi
from tests.test_channel_wording import FORBIDDEN

pytestmark = pytest.mark.stack
REFERENCE = re.compile(r"\bBK-\d{5}-\d{5}\b")
KEYPAD = {"input": "keypad", "speech": False}
Messages = List[Dict[str, Any]]


@pytest.fixture(scope="module")
def telegram() -> Iterator[LocalBotApi]:
    server = LocalBotApi().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(telegram: LocalBotApi, running_stack: RunningStack) -> Stack:
    """One instance, whose action server sends outbound messages to the local Bot API."""
    return running_stack(env={"TELEGRAM_TOKEN": telegram.token, "TELEGRAM_API_URL": telegram.base_url})


@pytest.fixture(scope="module")
def backend(stack: Stack) -> ServiceBackend:
    return ServiceBackend.from_url(stack.database_url)


def entities(button: Dict[str, str]) -> Dict[str, Any]:
    return json.loads("{" + button["payload"].partition("{")[2])


class Caller:
    """One caller on the keypad: every message a payload the assistant offered, signed like the gateway signs it."""

    def __init__(self, stack: Stack, number: str) -> None:
        self.stack, self.sender = stack, f"phone:{number}"
        self.last: Messages = []

    def send(self, message: str, **metadata: Any) -> Messages:
        body: Dict[str, Any] = {
            "sender": self.sender,
            "message": message,
            "metadata": {"channel": "phone", **KEYPAD, **metadata, "sender_signature": sign_sender(self.sender)},
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.stack.rasa_port}/webhooks/rest/webhook",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            self.last = json.loads(answer.read())
        mode = "voice" if body["metadata"]["speech"] else "keypad"
        assert not re.search(FORBIDDEN[mode], self.texts(), re.IGNORECASE), self.texts()
        return self.last

    def texts(self) -> str:
        return " ".join(m.get("text") or "" for m in self.last)

    def options(self) -> List[Dict[str, str]]:
        return [b for m in self.last for b in m.get("buttons") or []]

    def press(self, title: str = "", payload: str = "", index: int = 0) -> Messages:
        """Choose the offered button whose title starts with `title` (or whose payload contains `payload`)."""
        found = [b for b in self.options() if b["title"].startswith(title) and payload in b["payload"]]
        assert found, f"no button {title!r}/{payload!r} among {[b['title'] for b in self.options()]}"
        return self.send(found[index]["payload"])

    def choose_appointment(self, reference: str) -> None:
        """The caller's appointments are offered as buttons, unless the one just talked about is taken."""
        if any(b["title"].startswith(reference) for b in self.options()):
            self.press(reference)

    def key_in(self, digits: str) -> Messages:
        """Digits keyed in where the assistant asks for a number (the gateway sends them as text)."""
        return self.send(digits)

    def start(self) -> Messages:
        return self.send("/main_menu", input="call_start")


def test_a_call_starts_with_the_main_menu_of_every_top_task(stack: Stack) -> None:
    caller = Caller(stack, "0412100001")
    caller.start()
    assert [b["title"] for b in caller.options()] == [
        "Appointments",
        "Documents and fees",
        "Life events",
        "Offices and hours",
        "Application status",
        "Report a problem",
        "Talk to a person",
    ]
    assert "press" not in caller.texts().lower(), "keys are the gateway's"


def test_book_check_move_and_cancel_an_appointment_by_keypad_alone(stack: Stack, backend: ServiceBackend) -> None:
    caller = Caller(stack, "0412100002")
    caller.start()
    caller.press("Appointments")
    caller.press("Book an appointment")
    bookable = [s for s in backend.catalogue.services() if s.bookable]
    assert len(caller.options()) == len(bookable), "every bookable service can be chosen"
    caller.press("Passport renewal")
    caller.press("North Service Centre")
    days = caller.options()
    assert len(days) > 8, "every free day is offered: the phone pages them"
    caller.press(payload='"date"', index=1)
    free = backend.bookings.free_slots("north_centre", date.fromisoformat(entities(days[1])["date"]))
    assert [entities(b)["time"] for b in caller.options()] == [start.strftime("%H:%M") for start in free], (
        "every free time is offered"
    )
    caller.press(payload='"time"', index=len(free) - 1)  # the last free time: beyond the first page
    assert "What name" in caller.texts()
    caller.press("Book under the number you are calling from")
    assert "Shall I book it?" in caller.texts() and "ending in 0 0 0 2" in caller.texts()
    caller.press("Yes")
    reference = expect.matched(REFERENCE, caller.texts()).group(0)
    booked = expect.booking(backend, reference)
    assert booked.status == "booked" and booked.starts_at == free[-1]
    assert "name at the counter" in caller.texts()

    caller.start()
    caller.press("Appointments")
    caller.press("Check an appointment")
    assert reference in caller.texts() and "last four digits" not in caller.texts(), (
        "the caller's number is linked by the booking"
    )
    caller.choose_appointment(reference)
    assert "North Service Centre" in caller.texts()

    caller.start()
    caller.press("Appointments")
    caller.press("Move an appointment")
    caller.choose_appointment(reference)
    caller.press(payload='"date"', index=2)
    caller.press(payload='"time"')
    assert "Shall I move" in caller.texts()
    caller.press("Yes")
    assert "moved" in caller.texts() and expect.booking(backend, reference).starts_at != booked.starts_at

    caller.start()
    caller.press("Appointments")
    caller.press("Cancel an appointment")
    caller.choose_appointment(reference)
    assert "Shall I cancel" in caller.texts()
    caller.press("Yes, cancel it")
    assert expect.booking(backend, reference).status == "cancelled"


def test_documents_fee_and_time_of_any_service_by_keypad(stack: Stack, backend: ServiceBackend) -> None:
    caller = Caller(stack, "0412100003")
    service = expect.service(backend.catalogue, "child_benefit")
    caller.start()
    caller.press("Documents and fees")
    caller.press(service.department)
    caller.press(service.name)
    assert all(document in caller.texts() for document in service.documents)
    assert "working days" in caller.texts()


def test_a_life_event_and_an_offices_hours_by_keypad(stack: Stack, backend: ServiceBackend) -> None:
    caller = Caller(stack, "0412100004")
    caller.start()
    caller.press("Life events")
    assert len(caller.options()) == len(backend.catalogue.life_events()), "every life event can be chosen"
    caller.press("Death in the family")
    assert all(step.service.name in caller.texts() for step in expect.life_event(backend.catalogue, "death").steps)
    caller.start()
    caller.press("Offices and hours")
    assert len([b for b in caller.options() if "ask_opening_hours" in b["payload"]]) == len(backend.catalogue.offices())
    caller.press("West Service Centre")
    assert "opening hours" in caller.texts()


def test_a_linked_caller_chooses_their_application_with_one_key(stack: Stack, backend: ServiceBackend) -> None:
    caller = Caller(stack, "0491570006")  # the number on the sample application APP-100001
    backend.citizens.link_identity("phone", "0491570006", "0491570006")  # the gateway links a caller's number
    caller.start()
    caller.press("Application status")
    caller.press("APP-100001")
    assert "ready for collection" in caller.texts() and "last four digits" not in caller.texts()


def test_application_status_by_keypad(stack: Stack) -> None:
    caller = Caller(stack, "0412100005")
    caller.start()
    caller.press("Application status")
    caller.key_in("100001")  # the sample application APP-100001, its digits keyed in
    assert "last four digits" in caller.texts()
    caller.key_in("0006")
    assert "ready for collection" in caller.texts()


def test_a_report_by_keypad_goes_to_the_department_with_the_part_of_the_city(stack: Stack, backend: ServiceBackend) -> None:
    caller = Caller(stack, "0412100006")
    caller.start()
    caller.press("Report a problem")
    assert len(caller.options()) == len(backend.reports.categories()), "every kind of problem can be chosen"
    caller.press("Broken street light")
    caller.press("Somewhere in North")
    caller.press("Send the report as it is")
    assert "ticket number" in caller.texts() and "call you on the number you are calling from" in caller.texts()


def test_a_caller_not_understood_gets_the_menu_then_a_person_and_every_turn_is_kept(
    stack: Stack, telegram: LocalBotApi, backend: ServiceBackend
) -> None:
    caller = Caller(stack, "0412100007")
    telegram.state.chat(7007)
    backend.citizens.link_identity("telegram", "7007", "0412100007")
    caller.start()
    caller.send("/nlu_fallback", input="voice", speech=True, heard="", confidence=0.0)
    assert "another way" in caller.texts() and caller.options()[0]["title"] == "Appointments", "the last choices again"
    caller.send("/nlu_fallback", input="voice", speech=True, heard="blorf", confidence=0.2)
    assert "Here is the main menu" in caller.texts() and caller.options()[0]["title"] == "Appointments", (
        "the second miss gives the main menu"
    )
    caller.send("/nlu_fallback", input="voice", speech=True, heard="zong", confidence=0.1)
    handoff = next(m["custom"]["handoff"] for m in caller.last if "handoff" in (m.get("custom") or {}))
    assert handoff["reason"] == "not_understood" and handoff["reference"] in caller.texts()
    assert caller.texts().count(handoff["reference"]) == 1
    said = [e for e in stack.tracker(caller.sender)["events"] if e["event"] == "user"]
    assert [e["text"] for e in said] == ["/main_menu", "/nlu_fallback", "/nlu_fallback", "/nlu_fallback"]
    assert [e["metadata"].get("heard") for e in said[1:]] == ["", "blorf", "zong"]
    tracker = tracker_engine(url=stack.tracker_database_url)
    transcript = expect.present(ConversationStore(tracker, backend.engine).transcript(caller.sender), "the call's transcript")
    tracker.dispose()
    assert [t.citizen.text for t in transcript.turns() if t.citizen] == [
        "/main_menu",
        "(not understood)",
        "(not understood) blorf",
        "(not understood) zong",
    ], "staff see every turn of the call, with what was heard"
    telegram.wait_for("sendMessage", chat_id=7007)
    assert handoff["reference"] in telegram.sent_texts(7007)[-1]


def test_silence_hands_over_with_its_reason(stack: Stack, backend: ServiceBackend) -> None:
    caller = Caller(stack, "0412100008")
    caller.start()
    caller.send("/request_human", input="silence")
    assert expect.present(backend.handoffs.active(caller.sender), "a handoff of the call").reason == "silence"


def test_a_linked_caller_is_booked_under_the_name_on_record_and_confirms_the_number_with_one_key(
    stack: Stack, backend: ServiceBackend
) -> None:
    caller = Caller(stack, "0412100009")
    backend.citizens.link_identity("phone", "0412100009", "0412100009", name="Rosa Diaz")
    caller.start()
    caller.press("Appointments")
    caller.press("Book an appointment")
    caller.press("ID card renewal")
    caller.press("Central Service Centre")
    caller.press(payload='"date"')
    caller.press(payload='"time"')
    assert "What name" not in caller.texts() and "What phone number" in caller.texts()
    caller.press("The number you are calling from, ending in 0 0 0 9")
    assert "for Rosa Diaz" in caller.texts()
    caller.press("Yes")
    assert REFERENCE.search(caller.texts())


def test_a_caller_without_a_number_books_under_a_number_keyed_in(stack: Stack, backend: ServiceBackend) -> None:
    caller = Caller(stack, "3f2a9c10-call-without-number")  # the exchange passed no caller number: the call id names the caller
    caller.start()
    caller.press("Appointments")
    caller.press("Book an appointment")
    caller.press("Birth registration")
    caller.press("Central Service Centre")
    caller.press(payload='"date"')
    caller.press(payload='"time"')
    caller.press("Book under a phone number instead of a name")
    assert "What phone number" in caller.texts() and not caller.options()
    caller.key_in("0412100010")
    assert "under the number ending in 0 0 1 0" in caller.texts()
    caller.press("Yes")
    reference = expect.matched(REFERENCE, caller.texts()).group(0)
    assert expect.booking(backend, reference).status == "booked"
