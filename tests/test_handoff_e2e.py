"""Handing over to a person end to end: the real Rasa server, model, action server and database over REST,
the staff desk on Rasa's HTTP API, a restart of the Rasa server, and a staff reply reaching a Telegram chat
(`python -m bot` against the local Bot API server, tests/telegram_api.py).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from datetime import datetime
from typing import Any, Dict, Iterator, List, Optional

import pytest
from sqlalchemy import select

from actions.handoff import KEPT_FOR_STAFF
from harness.stack import Stack
from onewindow.backend import ServiceBackend
from onewindow.backend.staff_desk import StaffDesk
from onewindow.backend.staff_hours import staff_hours, staff_hours_text, staff_working
from onewindow.channels.outbound import OutboundChannels
from onewindow.rasa_plugins.events_table import events as tracker_events
from onewindow.rasa_plugins.events_table import tracker_engine
from onewindow.storage import models
from tests.expect import present
from tests.telegram_api import LocalBotApi
from tests.test_telegram import bot_env, press, started
from tests.test_telegram import say as telegram_say
from tests.test_telegram import texts as telegram_texts
from tests.tracker_rows import age_conversation

pytestmark = pytest.mark.stack
senders = itertools.count(1)


@pytest.fixture(scope="module")
def backend(stack: Stack) -> ServiceBackend:
    return ServiceBackend.from_url(stack.database_url)


@pytest.fixture(scope="module")
def desk(stack: Stack, backend: ServiceBackend) -> StaffDesk:
    return StaffDesk(backend, stack.api_url, OutboundChannels(), stack.api_secret)


@pytest.fixture
def sender() -> str:
    return f"citizen-{next(senders)}"


def signal(responses: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    return next((r["custom"]["handoff"] for r in responses if "handoff" in (r.get("custom") or {})), None)


def sent_signal(responses: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The handoff signal of an answer that must carry one."""
    return present(signal(responses), f"a handoff signal in {responses}")


def texts(responses: List[Dict[str, Any]]) -> str:
    return " ".join(r["text"] for r in responses if r.get("text"))


def handed_off(stack: Stack, sender: str) -> bool:
    return bool(stack.tracker(sender)["slots"].get("handoff_active"))


def row(backend: ServiceBackend, sender: str) -> models.HandoffRequest:
    with backend.engine.connect() as connection:
        return connection.execute(select(models.HandoffRequest.__table__).where(models.HandoffRequest.sender_id == sender)).one()


def test_asking_for_a_person_puts_the_assistant_on_hold(stack: Stack, backend: ServiceBackend, sender: str) -> None:
    answer = stack.say(sender, "I want to talk to a person")
    assert "I have asked a person from the service centre" in texts(answer)
    assert sent_signal(answer)["state"] == "waiting" and handed_off(stack, sender)
    for question in ("how much does a passport renewal cost", "hello", "book an appointment for an id card"):
        follow_up = stack.say(sender, question)
        assert texts(follow_up).startswith(KEPT_FOR_STAFF), "no assistant answer, only the place in the queue"
        assert sent_signal(follow_up)["reference"] == sent_signal(answer)["reference"]
    assert (row(backend, sender).reason, row(backend, sender).priority) == ("citizen_request", 2)


@pytest.mark.parametrize(
    "message, metadata",
    [
        ("I want to talk to a person", {}),
        ("/request_human", {"channel": "phone", "input": "keypad"}),  # a caller pressing 0
    ],
)
def test_asking_for_a_person_tells_the_staff_hours_and_when_a_person_replies(
    stack: Stack, backend: ServiceBackend, message: str, metadata: Dict[str, Any]
) -> None:
    """At whatever time this runs: the staff hours, then within them the place and wait, outside them the next opening."""
    hours = staff_hours(backend.catalogue.city())
    sender = f"phone:04130000{next(senders):02d}" if metadata else f"citizen-{next(senders)}"
    before = datetime.now()
    answer = texts(stack.say(sender, message, metadata))
    after = datetime.now()
    told = [staff_hours_text(hours, moment) for moment in (before, after)]  # the clock may cross an opening meanwhile
    assert told[0] in answer or told[1] in answer, answer
    if staff_working(hours, before) and staff_working(hours, after):
        assert re.search(r"You are number \d+ in the queue, and the wait is about \d+ minutes?\.", answer)
    elif not staff_working(hours, before) and not staff_working(hours, after):
        assert "It is now outside those hours, so a person will reply " in answer and "wait is about" not in answer


def test_two_misunderstandings_in_a_row_hand_over(stack: Stack, backend: ServiceBackend, sender: str) -> None:
    first = stack.say(sender, "qwerty uiop zxcv")
    assert "another way" in texts(first) and signal(first) is None
    second = stack.say(sender, "blorf snargle wib")
    assert "I am still not sure what you need, so I have asked a person" in texts(second)
    assert (row(backend, sender).reason, row(backend, sender).priority) == ("low_confidence", 3)
    assert handed_off(stack, sender)


def test_an_urgent_report_hands_over_with_the_highest_priority(stack: Stack, backend: ServiceBackend, sender: str) -> None:
    assert "Where is it" in texts(stack.say(sender, "I want to report a burst pipe"))
    assert "describe the problem" in texts(stack.say(sender, "Oak Street, near number 4"))
    answer = stack.say(sender, "water is pouring across the road")
    assert "marked urgent" in texts(answer) and "also asked a person" in texts(answer)
    assert (row(backend, sender).reason, row(backend, sender).priority) == ("urgent_report", 1)


def test_distress_words_hand_over_with_the_emergency_line(stack: Stack, backend: ServiceBackend, sender: str) -> None:
    answer = stack.say(sender, "please help my partner hits me and I am scared")
    assert texts(answer).startswith("If you or someone else is in danger or hurt right now, please call emergency services")
    assert (row(backend, sender).reason, row(backend, sender).priority) == ("distress", 1)
    assert sent_signal(answer)["priority"] == 1


def test_distress_inside_a_form_still_reaches_a_person(stack: Stack, backend: ServiceBackend, sender: str) -> None:
    assert "Which service" in texts(stack.say(sender, "I want to book an appointment"))
    answer = stack.say(sender, "I want to kill myself")
    assert "call emergency services" in texts(answer) and row(backend, sender).reason == "distress"


def test_a_caller_pressing_zero_is_recorded_as_keypad(stack: Stack, backend: ServiceBackend) -> None:
    caller = f"phone:04120000{next(senders):02d}"
    answer = stack.say(caller, "/request_human", {"channel": "phone", "input": "keypad"})
    assert sent_signal(answer)["reason"] == "keypad"
    assert (row(backend, caller).reason, row(backend, caller).channel) == ("keypad", "phone")


def test_staff_reply_restart_and_hand_back(stack: Stack, backend: ServiceBackend, desk: StaffDesk, sender: str) -> None:
    reference = sent_signal(stack.say(sender, "can I speak to someone"))["reference"]
    asyncio.run(desk.claim(reference, "maria"))
    assert asyncio.run(desk.reply(reference, "maria", "Hello, this is Maria from the north centre.")) is False  # REST: no push
    staff_turns = [e for e in stack.tracker(sender)["events"] if e["event"] == "bot" and (e.get("metadata") or {}).get("staff")]
    assert [(e["text"], e["metadata"]["staff"]) for e in staff_turns] == [
        ("Hello, this is Maria from the north centre.", "maria")
    ]
    answer = stack.say(sender, "thank you Maria")
    assert texts(answer) == "" and sent_signal(answer)["state"] == "with_staff"

    stack.restart("rasa server 1")
    assert handed_off(stack, sender), "the hold survives a restart of the Rasa server"
    answer = stack.say(sender, "how much does a passport renewal cost")
    assert texts(answer) == "" and sent_signal(answer)["state"] == "with_staff"

    asyncio.run(desk.hand_back(reference, "maria"))
    assert not handed_off(stack, sender) and row(backend, sender).status == "returned"
    assert "costs" in texts(stack.say(sender, "how much does a passport renewal cost")), "the assistant answers again"


def test_the_hold_outlasts_the_session(stack: Stack, backend: ServiceBackend, sender: str) -> None:
    """After an hour of silence Rasa starts a new session without the slot; the open handoff keeps the hold."""
    reference = sent_signal(stack.say(sender, "I want to talk to a person"))["reference"]
    age_conversation(stack, sender, 2 * 3600)
    answer = stack.say(sender, "how much does a passport renewal cost")
    assert texts(answer).startswith(KEPT_FOR_STAFF), "no assistant answer in the new session"
    assert sent_signal(answer)["reference"] == reference
    events = stack.tracker(sender)["events"]
    assert any(e["event"] == "session_started" for e in events), "a new session did start"
    started = max(i for i, e in enumerate(events) if e["event"] == "session_started")
    first_message = next(i for i, e in enumerate(events) if e["event"] == "user" and i > started)
    hold = [e for e in events[started:first_message] if e["event"] == "slot" and e["name"] == "handoff_active"]
    assert [e["value"] for e in hold] == [True], "action_session_start put the hold back before the first message"
    assert handed_off(stack, sender)
    assert row(backend, sender).status == "open"


def test_stop_while_waiting_leaves_the_queue(stack: Stack, backend: ServiceBackend, sender: str) -> None:
    stack.say(sender, "I want to talk to a person")
    assert "you have left the queue" in texts(stack.say(sender, "stop"))
    assert row(backend, sender).status == "withdrawn" and not handed_off(stack, sender)
    assert "costs" in texts(stack.say(sender, "how much does a passport renewal cost"))


# --- Telegram ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[LocalBotApi]:
    server = LocalBotApi().start()
    stack.spawn_bot("handoff", bot_env(server, VOSK_MODEL_PATH=""))
    yield started(server)
    stack.halt("bot handoff")
    server.stop()


def wait_for_action(stack: Stack, sender: str, text: str, action: str, timeout: float = 30) -> None:
    """Wait until the assistant has run `action` after the message `text`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = stack.tracker(sender).get("events", [])
        said = [i for i, e in enumerate(events) if e["event"] == "user" and e.get("text") == text]
        if said and any(e["event"] == "action" and e.get("name") == action for e in events[said[-1] :]):
            return
        time.sleep(0.2)
    raise AssertionError(f"{action} did not run after {text!r}")


def test_a_staff_reply_reaches_the_telegram_chat(stack: Stack, backend: ServiceBackend, api: LocalBotApi) -> None:
    chat = 8801
    sender = f"telegram:{chat}"
    assert "I have asked a person from the service centre" in telegram_texts(telegram_say(api, chat, "/human"))
    before = api.mark()
    api.user_sends_text(chat, "is anyone there?")
    wait_for_action(stack, sender, "is anyone there?", "action_handoff_waiting")
    api.wait_quiet(1.0)
    waiting = [c.params["text"] for c in api.calls_to("sendMessage", chat_id=chat, since=before)]
    assert len(waiting) == 1 and waiting[0].startswith(KEPT_FOR_STAFF), "the place in the queue, no assistant answer, no apology"

    desk = StaffDesk(backend, stack.api_url, OutboundChannels(api.token, api.base_url), stack.api_secret)
    reference = row(backend, sender).reference
    assert asyncio.run(desk.reply(reference, "maria", "Hello, this is Maria. How can I help?")) is True
    assert api.sent_texts(chat)[-1] == "Hello, this is Maria. How can I help?"
    asyncio.run(desk.hand_back(reference, "maria"))
    assert api.sent_texts(chat)[-1].startswith("You are back with the assistant")
    assert "costs" in telegram_texts(telegram_say(api, chat, "how much does a passport renewal cost"))

    telegram_say(api, chat, "/forget")
    press(api, chat, "forget:yes")
    tracker = tracker_engine(url=stack.tracker_database_url)
    with tracker.connect() as connection:
        assert connection.execute(select(tracker_events.c.id).where(tracker_events.c.sender_id == sender)).first() is None
    tracker.dispose()
