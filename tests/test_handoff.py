"""Handing over to a person: the trigger actions, the waiting action, the policy, the staff desk and outbound delivery.

Actions and the staff desk run against a real database (SQLite and PostgreSQL); the staff desk talks
HTTP to a local receiver standing in for Rasa's HTTP API and to the local Telegram Bot API server.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
import yaml
from rasa_sdk import Action, Tracker
from sqlalchemy import delete, select

from actions import handoff as handoff_actions
from actions.conversation import ActionHandleLowConfidence
from actions.handoff import (
    KEPT_FOR_STAFF,
    SUMMARY_TURNS,
    ActionHandleDistress,
    ActionHandoffWaiting,
    ActionRequestHuman,
)
from actions.reports import ActionSubmitReport
from onewindow.backend import ServiceBackend
from onewindow.backend import references as references_module
from onewindow.backend.staff_desk import HandoffNotFound, HandoffStateError, StaffDesk
from onewindow.channels.outbound import OutboundChannels
from onewindow.channels.senders import sign_sender
from onewindow.infra.api_auth import refusal
from onewindow.service_catalogue import Catalogue
from onewindow.settings import PROJECT_ROOT
from onewindow.storage import models
from onewindow.storage.db import make_sessionmaker
from tests.action_harness import load_domain, make_tracker, run_action, slot_events
from tests.telegram_api import LocalBotApi

WEDNESDAY_MORNING = datetime(2026, 11, 25, 10, 0)  # the hotline works 08:00-20:00 on weekdays
SUNDAY_MORNING = datetime(2026, 11, 29, 10, 0)  # the hotline is closed on Sundays
REFERENCE = re.compile(r"HO-\d{6}")
API_SECRET = secrets.token_urlsafe(32)  # the stand-in for Rasa's HTTP API checks the staff desk's token


@pytest.fixture
def actions_db(module_action_backend: ServiceBackend, monkeypatch: pytest.MonkeyPatch) -> ServiceBackend:
    """The actions' backend on the module's database, with no handoff requests yet and staff at work."""
    monkeypatch.setattr(handoff_actions, "now", lambda: WEDNESDAY_MORNING)
    monkeypatch.delenv("TELEGRAM_TOKEN", raising=False)
    with make_sessionmaker(module_action_backend.engine).begin() as session:
        session.execute(delete(models.HandoffMessage))
        session.execute(delete(models.HandoffRequest))
    return module_action_backend


def user(text: str, intent: str) -> Dict[str, Any]:
    return {"event": "user", "text": text, "parse_data": {"intent": {"name": intent, "confidence": 0.9}}}


def bot(text: str, custom: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    return {"event": "bot", "text": text, "data": {"custom": custom} if custom else {}}


def run(action: Action, tracker: Tracker) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    return run_action(action, tracker, load_domain())


def ask_for_person(
    sender_id: str = "citizen-1",
    slots: Optional[Dict[str, Any]] = None,
    events: Optional[List[Dict[str, Any]]] = None,
    active_loop: Optional[str] = None,
    channel: str = "rest",
    metadata: Optional[Dict[str, Any]] = None,
) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    tracker = make_tracker(
        slots or {},
        intent="request_human",
        text="I want to talk to a person",
        events=events,
        active_loop=active_loop,
        sender_id=sender_id,
        channel=channel,
        metadata=metadata,
    )
    messages, returned = run(ActionRequestHuman(), tracker)
    assert len(messages) == 1
    return messages[0], returned


def waiting_turn(
    sender_id: str,
    intent: str = "inform",
    text: str = "hello?",
    events: Optional[List[Dict[str, Any]]] = None,
    entities: Optional[List[Dict[str, Any]]] = None,
    signed: bool = True,
) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """One message while handed off; `signed`: the channel adapter vouched for the sender id, as the bot and the gateway do."""
    metadata = {"sender_signature": sign_sender(sender_id)} if signed else {}
    tracker = make_tracker(
        {"handoff_active": True},
        intent=intent,
        text=text,
        events=events,
        sender_id=sender_id,
        entities=entities,
        metadata=metadata,
    )
    return run(ActionHandoffWaiting(), tracker)


def rows(backend: ServiceBackend) -> List[models.HandoffRequest]:
    with make_sessionmaker(backend.engine)() as session:
        return list(session.scalars(select(models.HandoffRequest).order_by(models.HandoffRequest.id)))


def row_of(backend: ServiceBackend, sender_id: str) -> models.HandoffRequest:
    return next(r for r in rows(backend) if r.sender_id == sender_id)


# --- asking for a person ----------------------------------------------------------------------------


def test_request_is_recorded_with_reason_channel_priority_and_reference(actions_db: ServiceBackend) -> None:
    message, returned = ask_for_person(sender_id="telegram:77", channel="telegram")
    [row] = rows(actions_db)
    assert (row.sender_id, row.channel, row.reason, row.priority, row.status) == (
        "telegram:77",
        "telegram",
        "citizen_request",
        2,
        "open",
    )
    assert REFERENCE.fullmatch(row.reference)
    assert f"Your request number is {row.reference}" in message["text"]
    assert slot_events(returned) == {"handoff_active": True}
    assert row.notified_position == 1, "the citizen was told their place"


def test_summary_has_last_turns_intents_and_slots(actions_db: ServiceBackend) -> None:
    history = [
        user("hello", "greet"),
        bot("Hello! How can I help?"),
        user("what do I need for a passport renewal", "ask_documents"),
        bot("Please bring 3 things."),
        user("how much", "ask_fee"),
        bot("It costs 100 dollars."),
        user("book it", "book_appointment"),
        bot("Which office?"),
    ]
    ask_for_person(slots={"service": "passport_renewal", "office": "central_centre", "district": None}, events=history)
    [row] = rows(actions_db)
    summary = row.summary
    assert summary["slots"] == {"service": "passport_renewal", "office": "central_centre"}
    turns = summary["last_turns"]
    assert len(turns) == SUMMARY_TURNS
    assert turns[-1] == {"from": "citizen", "text": "I want to talk to a person"}
    assert {"from": "bot", "text": "Which office?"} in turns
    assert {"from": "citizen", "text": "hello"} not in turns, "only the last turns are kept"
    assert summary["intents"][-2:] == ["book_appointment", "request_human"]


def test_place_and_expected_wait_are_told(actions_db: ServiceBackend) -> None:
    first, _ = ask_for_person(sender_id="a")
    second, _ = ask_for_person(sender_id="b")
    assert "You are number 1 in the queue, and the wait is about 5 minutes." in first["text"]
    assert "You are number 2 in the queue, and the wait is about 10 minutes." in second["text"]
    assert second["custom"]["handoff"]["position"] == 2 and second["custom"]["handoff"]["wait_minutes"] == 10
    assert [row.sender_id for row in rows(actions_db)] == ["a", "b"]


def test_asking_twice_keeps_one_open_request(actions_db: ServiceBackend) -> None:
    first, _ = ask_for_person(sender_id="a")
    ask_for_person(sender_id="b")
    again, _ = ask_for_person(sender_id="a")
    assert first["custom"]["handoff"]["reference"] == again["custom"]["handoff"]["reference"]
    assert "You are number 1 in the queue" in again["text"]
    assert [row.sender_id for row in rows(actions_db)] == ["a", "b"]


def test_closed_request_no_longer_counts_in_the_queue(actions_db: ServiceBackend) -> None:
    ask_for_person(sender_id="a")
    with make_sessionmaker(actions_db.engine).begin() as session:
        session.execute(models.HandoffRequest.__table__.update().values(status="resolved"))
    message, _ = ask_for_person(sender_id="b")
    assert "You are number 1 in the queue" in message["text"]


def test_message_gives_hotline_number_says_staff_are_working_and_how_to_leave(
    actions_db: ServiceBackend, catalogue: Catalogue
) -> None:
    message, _ = ask_for_person()
    assert f"call the city hotline on {catalogue.city['hotline']['number']}" in message["text"]
    assert "Staff are working now" in message["text"] and "To leave the queue, type stop." in message["text"]
    assert not message["buttons"]


STAFF_HOURS = "Staff answer at these times. Monday to Friday: 8 am to 8 pm. Saturday: 9 am to 1 pm. Sunday: closed."


@pytest.mark.parametrize(
    "moment, expected",
    [
        (
            WEDNESDAY_MORNING,
            f"You are number 1 in the queue, and the wait is about 5 minutes. They will reply here, and they can see "
            f"what we talked about. {STAFF_HOURS} Staff are working now.",
        ),
        (SUNDAY_MORNING, f"{STAFF_HOURS} It is now outside those hours, so a person will reply tomorrow from 8 am."),
        (
            datetime(2026, 11, 28, 13, 0),
            f"{STAFF_HOURS} It is now outside those hours, so a person will reply on Monday from 8 am.",
        ),
        (
            datetime(2026, 11, 25, 7, 59, 30),
            f"{STAFF_HOURS} It is now outside those hours, so a person will reply today from 8 am.",
        ),
    ],
)
def test_asking_for_a_person_tells_the_staff_hours_and_when_a_person_replies(
    actions_db: ServiceBackend, monkeypatch: pytest.MonkeyPatch, moment: datetime, expected: str
) -> None:
    monkeypatch.setattr(handoff_actions, "now", lambda: moment)
    message, _ = ask_for_person()
    assert expected in message["text"]
    for word in ("type", "say,", "press", "click"):  # channel-neutral (the leave-the-queue hint is worded elsewhere)
        assert word not in message["text"].split("To leave the queue")[0].lower().split()


def test_asking_again_while_waiting_tells_the_place_and_the_staff_hours(sunday: ServiceBackend) -> None:
    ask_for_person(sender_id="again")
    [message], _ = waiting_turn("again", intent="request_human", text="is anyone there? I want a person")
    assert (
        message["text"]
        == f"You are number 1 in the queue. {STAFF_HOURS} It is now outside those hours, so a person will reply tomorrow from 8 am."
    )


def test_custom_payload_is_the_handoff_signal(actions_db: ServiceBackend) -> None:
    message, _ = ask_for_person()
    [row] = rows(actions_db)
    assert message["custom"]["handoff"] == {
        "state": "waiting",
        "reference": row.reference,
        "position": 1,
        "wait_minutes": 5,
        "reason": "citizen_request",
        "priority": 2,
    }


def test_a_caller_pressing_zero_is_recorded_as_keypad(actions_db: ServiceBackend) -> None:
    ask_for_person(sender_id="phone:0412000111", metadata={"input": "keypad"})
    assert row_of(actions_db, "phone:0412000111").reason == "keypad"
    ask_for_person(sender_id="phone:0412000222", metadata={"input": "voice"})
    assert row_of(actions_db, "phone:0412000222").reason == "citizen_request"


def test_active_form_is_left(actions_db: ServiceBackend) -> None:
    _, returned = ask_for_person(active_loop="appointment_form", slots={"requested_slot": "appointment_date"})
    loops = [e for e in returned if e["event"] == "active_loop"]
    assert len(loops) == 1 and loops[0]["name"] is None
    assert slot_events(returned) == {"requested_slot": None, "handoff_active": True}


def test_a_reference_already_used_is_never_given_again(actions_db: ServiceBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    first = actions_db.handoffs.request("a", "rest", "citizen_request", {}).reference
    offered = iter([first, first, "HO-000042"])
    monkeypatch.setattr(references_module, "new_reference", lambda kind: next(offered))
    second = actions_db.handoffs.request("b", "rest", "citizen_request", {})
    assert second.reference == "HO-000042"
    assert second.position_in_queue == 2


# --- outside staff hours: the offline path and a call back ---------------------------------------------


@pytest.fixture
def sunday(actions_db: ServiceBackend, monkeypatch: pytest.MonkeyPatch) -> ServiceBackend:
    monkeypatch.setattr(handoff_actions, "now", lambda: SUNDAY_MORNING)
    return actions_db


def test_out_of_hours_gives_staff_hours_an_office_the_hotline_and_offers_a_call_back(
    sunday: ServiceBackend, catalogue: Catalogue
) -> None:
    message, _ = ask_for_person(slots={"office": "north_centre"})
    text = message["text"]
    assert "It is now outside those hours, so a person will reply tomorrow from 8 am." in text
    assert "Monday to Friday: 8 am to 8 pm. Saturday: 9 am to 1 pm. Sunday: closed." in text
    assert "you can visit the North Service Centre, 45 Hillcrest Road" in text
    assert f"call the city hotline on {catalogue.city['hotline']['number']}" in text
    assert "wait is about" not in text and "You are number 1 in the queue." in text
    assert [b["payload"] for b in message["buttons"]] == ["/affirm", "/deny"]
    assert message["custom"]["handoff"]["asking"] == "callback"


def test_call_back_to_the_linked_phone_number(sunday: ServiceBackend) -> None:
    sunday.citizens.link_identity("telegram", "501", "0412 555 501")
    offer, _ = ask_for_person(sender_id="telegram:501", channel="telegram")
    messages, returned = waiting_turn("telegram:501", intent="affirm", text="yes", events=[bot(offer["text"], offer["custom"])])
    assert "call you on your number ending in 01" in messages[0]["text"] and returned == []
    row = row_of(sunday, "telegram:501")
    assert row.callback_requested and row.summary["slots"]["callback_phone"] == "0412555501"


def test_an_unsigned_sender_is_not_told_the_linked_numbers_digits(sunday: ServiceBackend) -> None:
    """A REST client claiming telegram:501 is asked for a number: two digits of the linked one would be half the proof."""
    sunday.citizens.link_identity("telegram", "501", "0412 555 501")
    offer, _ = ask_for_person(sender_id="telegram:501", channel="telegram")
    messages, _ = waiting_turn(
        "telegram:501", intent="affirm", text="yes", events=[bot(offer["text"], offer["custom"])], signed=False
    )
    assert "Which number should we call?" in messages[0]["text"] and "01" not in messages[0]["text"]
    assert not row_of(sunday, "telegram:501").callback_requested


def test_call_back_asks_for_a_number_when_none_is_linked(sunday: ServiceBackend) -> None:
    offer, _ = ask_for_person(sender_id="web-1")
    question, _ = waiting_turn("web-1", intent="affirm", text="yes", events=[bot(offer["text"], offer["custom"])])
    assert "Which number should we call?" in question[0]["text"] and not row_of(sunday, "web-1").callback_requested
    asked = [bot(question[0]["text"], question[0]["custom"])]
    answer, _ = waiting_turn("web-1", text="0413 222 333", events=asked, entities=[{"entity": "phone", "value": "0413 222 333"}])
    assert "number ending in 33" in answer[0]["text"]
    row = row_of(sunday, "web-1")
    assert row.callback_requested and row.summary["slots"]["callback_phone"] == "0413222333"


def test_no_call_back_and_no_number_record_nothing(sunday: ServiceBackend) -> None:
    offer, _ = ask_for_person(sender_id="web-2")
    declined, _ = waiting_turn("web-2", intent="deny", text="no", events=[bot(offer["text"], offer["custom"])])
    assert "A person will reply here tomorrow from 8 am." in declined[0]["text"]
    asked = [bot("Which number should we call? Please type it.", {"handoff": {"asking": "callback_number"}})]
    unclear, _ = waiting_turn("web-2", text="my usual one", events=asked)
    assert "could not find a phone number" in unclear[0]["text"]
    assert not row_of(sunday, "web-2").callback_requested


# --- the other triggers ------------------------------------------------------------------------------------


def test_distress_gives_the_emergency_line_and_hands_off_first_in_the_queue(actions_db: ServiceBackend) -> None:
    ask_for_person(sender_id="earlier")
    tracker = make_tracker(
        {},
        intent="out_of_scope",
        text="I am in danger",
        sender_id="scared",
        entities=[{"entity": "distress", "value": "in danger"}],
    )
    [message], returned = run(ActionHandleDistress(), tracker)
    assert message["text"].startswith(
        "If you or someone else is in danger or hurt right now, please call emergency services straight away."
    )
    assert "You are number 1 in the queue" in message["text"]
    row = row_of(actions_db, "scared")
    assert (row.reason, row.priority) == ("distress", 1)
    assert slot_events(returned) == {"handoff_active": True}
    assert [h.sender_id for h in actions_db.handoffs.waiting()] == ["scared", "earlier"]


def test_distress_while_waiting_makes_the_request_urgent(actions_db: ServiceBackend) -> None:
    ask_for_person(sender_id="other")
    first, _ = ask_for_person(sender_id="waiting")
    tracker = make_tracker({"handoff_active": True}, intent="request_human", text="he hits me", sender_id="waiting")
    [message], _ = run(ActionHandleDistress(), tracker)
    row = row_of(actions_db, "waiting")
    assert row.reference == first["custom"]["handoff"]["reference"] and (row.reason, row.priority) == ("distress", 1)
    assert "You are number 1 in the queue" in message["text"]


def test_second_misunderstanding_in_a_row_hands_off_with_low_priority(actions_db: ServiceBackend) -> None:
    history = [user("blorp", "nlu_fallback"), bot("Sorry, I did not understand that.")]
    tracker = make_tracker(
        {}, intent="nlu_fallback", text="zong", events=history, sender_id="puzzled", active_loop="appointment_form"
    )
    [message], returned = run(ActionHandleLowConfidence(), tracker)
    assert message["text"].startswith("I am still not sure what you need, so I have asked a person")
    row = row_of(actions_db, "puzzled")
    assert (row.reason, row.priority) == ("low_confidence", 3)
    assert slot_events(returned) == {"requested_slot": None, "handoff_active": True}
    assert [(e["event"], e.get("name")) for e in returned][0] == ("active_loop", None)


def test_an_urgent_report_hands_off_and_a_plain_one_does_not(actions_db: ServiceBackend) -> None:
    def report(sender: str, category: str) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
        slots = {"report_category": category, "report_location": "Oak Street 4", "report_description": "water everywhere"}
        return run(ActionSubmitReport(), make_tracker(slots, sender_id=sender))

    messages, returned = report("leak", "water_leak")
    assert "marked urgent" in messages[0]["text"] and "also asked a person" in messages[1]["text"]
    assert (row_of(actions_db, "leak").reason, row_of(actions_db, "leak").priority) == ("urgent_report", 1)
    assert slot_events(returned)["handoff_active"] is True
    messages, returned = report("pothole", "pothole")
    assert len(messages) == 1 and "handoff_active" not in slot_events(returned)
    assert [r.sender_id for r in rows(actions_db)] == ["leak"]


# --- while handed off ----------------------------------------------------------------------------------------


def test_waiting_is_never_silent_and_the_message_is_kept(actions_db: ServiceBackend) -> None:
    """ "are you there?" while waiting: the place in the queue, never silence, and no assistant answer."""
    ask_for_person(sender_id="a")
    messages, returned = waiting_turn("a", text="are you there?")
    assert len(messages) == 1 and messages[0]["custom"]["handoff"]["state"] == "waiting"
    assert messages[0]["text"].startswith(KEPT_FOR_STAFF) and "number 1 in the queue" in messages[0]["text"]
    assert returned == []


def test_waiting_is_told_the_new_place_once_when_the_queue_moved(actions_db: ServiceBackend) -> None:
    ask_for_person(sender_id="a")
    ask_for_person(sender_id="b")
    actions_db.handoffs.withdraw("a")
    [message], _ = waiting_turn("b")
    assert message["text"] == "You are number 1 in the queue, and the wait is about 5 minutes."
    assert message["custom"]["handoff"]["position"] == 1
    [again], _ = waiting_turn("b")
    assert again["text"] == f"{KEPT_FOR_STAFF} {message['text']}"


def test_asking_for_a_person_again_repeats_the_place(actions_db: ServiceBackend) -> None:
    ask_for_person(sender_id="a")
    [message], _ = waiting_turn("a", intent="request_human", text="a person please")
    assert message["text"].startswith("You are number 1 in the queue")


def test_with_staff_the_assistant_sends_only_the_payload(actions_db: ServiceBackend) -> None:
    ask_for_person(sender_id="a")
    reference = row_of(actions_db, "a").reference
    actions_db.handoffs.claim(reference, "maria")
    [message], returned = waiting_turn("a", text="thanks for taking this")
    assert message["text"] is None and message["custom"]["handoff"]["state"] == "with_staff"
    assert message["custom"]["handoff"]["position"] is None and returned == []


def test_stop_while_waiting_leaves_the_queue(actions_db: ServiceBackend) -> None:
    ask_for_person(sender_id="a")
    [message], returned = waiting_turn("a", intent="stop", text="stop")
    assert "you have left the queue" in message["text"]
    assert slot_events(returned) == {"handoff_active": False}
    assert row_of(actions_db, "a").status == "withdrawn"


def test_stop_with_a_person_does_not_end_the_handoff(actions_db: ServiceBackend) -> None:
    ask_for_person(sender_id="a")
    actions_db.handoffs.claim(row_of(actions_db, "a").reference, "maria")
    [message], returned = waiting_turn("a", intent="stop", text="stop")
    assert message["custom"]["handoff"]["state"] == "with_staff" and returned == []
    assert row_of(actions_db, "a").status == "claimed"


def test_a_handoff_closed_behind_the_assistants_back_hands_back_at_the_next_message(actions_db: ServiceBackend) -> None:
    ask_for_person(sender_id="a")
    actions_db.handoffs.close(row_of(actions_db, "a").reference, "maria", "resolved", "answered")
    [message], returned = waiting_turn("a")
    assert message["text"] == "You are back with the assistant. What can I do for you?"
    assert slot_events(returned) == {"handoff_active": False}


# --- the policy ------------------------------------------------------------------------------------------------


def policy_next(events: List[Dict[str, Any]], slots: Optional[Dict[str, Any]] = None) -> Optional[str]:
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import Event
    from rasa.shared.core.trackers import DialogueStateTracker

    from onewindow.rasa_plugins.handoff_policy import next_action

    domain = Domain.load("domain.yml")
    tracker = DialogueStateTracker.from_events("x", [Event.from_parameters(e) for e in events], domain.slots)
    for name, value in (slots or {}).items():
        tracker.update(Event.from_parameters({"event": "slot", "name": name, "value": value}))
    return next_action(tracker)


def said(text: str, intent: str, entities: Optional[List[Dict[str, Any]]] = None) -> List[Dict[str, Any]]:
    return [
        {"event": "action", "name": "action_listen"},
        {
            "event": "user",
            "text": text,
            "parse_data": {"intent": {"name": intent, "confidence": 0.9}, "entities": entities or []},
        },
    ]


def test_policy_stays_out_of_an_ordinary_conversation() -> None:
    assert policy_next(said("hello", "greet")) is None
    assert policy_next([*said("hello", "greet"), {"event": "action", "name": "utter_greet"}]) is None


def test_policy_sends_every_message_to_the_waiting_action_while_handed_off() -> None:
    for intent in ("greet", "book_appointment", "nlu_fallback", "stop"):
        assert policy_next(said("x", intent), {"handoff_active": True}) == "action_handoff_waiting"
    waited = [*said("x", "greet"), {"event": "action", "name": "action_handoff_waiting"}]
    assert policy_next(waited, {"handoff_active": True}) == "action_listen"
    assert policy_next(waited, {"handoff_active": False}) == "action_listen", "after leaving the queue, listen"
    assert (
        policy_next([*said("x", "request_human"), {"event": "action", "name": "action_request_human"}], {"handoff_active": True})
        == "action_listen"
    )


def test_policy_sends_distress_to_a_person_whatever_the_intent() -> None:
    distress = [{"entity": "distress", "value": "kill myself", "start": 10, "end": 21}]
    assert policy_next(said("I want to kill myself", "out_of_scope", distress)) == "action_handle_distress"
    assert policy_next(said("I want to kill myself", "inform", distress), {"handoff_active": True}) == "action_handle_distress"
    assert policy_next([*said("x", "inform", distress), {"event": "action", "name": "action_handle_distress"}]) == "action_listen"


def test_a_new_session_keeps_the_hold_that_its_start_put_back() -> None:
    """action_session_start (tests/test_session.py) sets the slot while the handoff is open; the policy reads no database."""
    started: List[Dict[str, Any]] = [{"event": "action", "name": "action_session_start"}, {"event": "session_started"}]
    held = [*started, {"event": "slot", "name": "handoff_active", "value": True}, *said("hello", "greet")]
    assert policy_next([*started, *said("hello", "greet")]) is None, "nothing open for this conversation"
    assert policy_next(held) == "action_handoff_waiting"
    later = [*held, {"event": "action", "name": "action_handoff_waiting"}, *said("again", "greet")]
    assert policy_next(later) == "action_handoff_waiting"


def distress_pattern() -> re.Pattern:
    data = yaml.safe_load((PROJECT_ROOT / "nlu" / "regexes.yml").read_text())
    [entry] = [r for r in data["nlu"] if r.get("regex") == "distress"]
    return re.compile(entry["examples"].strip()[2:], re.IGNORECASE)


@pytest.mark.parametrize(
    "text",
    [
        "I want to kill myself",
        "i feel suicidal",
        "I have been self-harming",
        "my husband hits me",
        "my partner is threatening to kill me",
        "someone is following me",
        "I am in danger",
        "I don't feel safe at home",
        "there is a man with a knife",
        "my dad is having a heart attack",
        "he can't breathe",
        "domestic violence",
        "I dont want to live anymore",
        "I'm scared for my life",
        "someone is stalking me",
    ],
)
def test_distress_words_are_found(text: str) -> None:
    assert distress_pattern().search(text)


@pytest.mark.parametrize(
    "text",
    [
        "my father passed away",
        "my father died",
        "register a death",
        "the pavement is cracked and dangerous",
        "the tree is in danger of falling",
        "the road is not safe for cyclists",
        "is it safe to pay online",
        "a dangerous pothole",
        "I need to renew my gun licence",
        "hit and run damage to a street light",
    ],
)
def test_everyday_city_words_are_not_distress(text: str) -> None:
    assert distress_pattern().search(text) is None


# --- the staff desk -------------------------------------------------------------------------------------------


class RasaApiStandIn:
    """A local HTTP server in place of Rasa's HTTP API: records the events appended to each conversation."""

    def __init__(self) -> None:
        self.appended: List[Tuple[str, List[Dict[str, Any]]]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if refusal(API_SECRET, self.headers.get("Authorization")):  # as Rasa with --jwt-secret
                    self.send_response(401)
                    self.end_headers()
                    return
                stand_in.appended.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events_for(self, sender_id: str) -> List[Dict[str, Any]]:
        return [e for path, body in self.appended if path == f"/conversations/{sender_id}/tracker/events" for e in body]


@pytest.fixture(scope="module")
def rasa_api() -> Iterator[RasaApiStandIn]:
    stand_in = RasaApiStandIn()
    yield stand_in
    stand_in.server.shutdown()


@pytest.fixture(scope="module")
def telegram() -> Iterator[LocalBotApi]:
    with LocalBotApi() as server:
        yield server


@pytest.fixture
def desk(actions_db: ServiceBackend, rasa_api: RasaApiStandIn, telegram: LocalBotApi) -> StaffDesk:
    rasa_api.appended.clear()
    return StaffDesk(actions_db, rasa_api.url, OutboundChannels(telegram.token, telegram.base_url), API_SECRET)


chat_ids = iter(range(9100, 9999))


def telegram_citizen(telegram: LocalBotApi, name: str = "") -> str:
    """A chat that has written to the bot (the Bot API only delivers to chats it knows), asking for a person."""
    chat = next(chat_ids)
    telegram.user_sends_text(chat, "hello")
    ask_for_person(sender_id=f"telegram:{chat}", channel="telegram")
    return f"telegram:{chat}"


def reference_of(backend: ServiceBackend, sender_id: str) -> str:
    return row_of(backend, sender_id).reference


def test_queue_is_open_and_claimed_highest_priority_first_then_oldest(desk: StaffDesk, actions_db: ServiceBackend) -> None:
    for sender, priority in (("low", 3), ("normal", 2), ("urgent", 1), ("normal-later", 2), ("gone", 2)):
        actions_db.handoffs.request(sender, "rest", "citizen_request", {"slots": {}}, priority)
    actions_db.handoffs.withdraw("gone")
    actions_db.handoffs.claim(reference_of(actions_db, "normal"), "maria")
    queue = asyncio.run(desk.queue())
    assert [(q.sender_id, q.status, q.position) for q in queue] == [
        ("urgent", "open", 1),
        ("normal", "claimed", None),
        ("normal-later", "open", 2),
        ("low", "open", 3),
    ]
    assert queue[1].claimed_by == "maria" and queue[1].claimed_at is not None
    gone = asyncio.run(desk.get(reference_of(actions_db, "gone")))
    assert gone.status == "withdrawn" and gone.position is None
    with pytest.raises(HandoffNotFound):
        asyncio.run(desk.get("HO-000000"))


def test_claim_errors(desk: StaffDesk, actions_db: ServiceBackend) -> None:
    actions_db.handoffs.request("a", "rest", "citizen_request", {})
    reference = reference_of(actions_db, "a")
    assert asyncio.run(desk.claim(reference, "maria")).claimed_by == "maria"
    assert asyncio.run(desk.claim(reference, "maria")).status == "claimed", "claiming again is harmless"
    with pytest.raises(HandoffStateError):
        asyncio.run(desk.claim(reference, "tom"))
    with pytest.raises(HandoffStateError):
        asyncio.run(desk.reply(reference, "tom", "Hello"))
    asyncio.run(desk.resolve(reference, "maria", "answered"))
    for attempt in (desk.claim(reference, "maria"), desk.reply(reference, "maria", "Hi"), desk.hand_back(reference, "maria")):
        with pytest.raises(HandoffStateError):
            asyncio.run(attempt)
    with pytest.raises(HandoffNotFound):
        asyncio.run(desk.claim("HO-000000", "maria"))


def test_reply_reaches_the_telegram_chat_and_the_transcript(
    desk: StaffDesk, actions_db: ServiceBackend, telegram: LocalBotApi, rasa_api: RasaApiStandIn
) -> None:
    sender = telegram_citizen(telegram)
    reference = reference_of(actions_db, sender)
    chat = int(sender.split(":")[1])
    assert asyncio.run(desk.reply(reference, "maria", "Hello, I am Maria. How can I help?")) is True
    assert telegram.sent_texts(chat)[-1] == "Hello, I am Maria. How can I help?"
    item = asyncio.run(desk.get(reference))
    assert item.status == "claimed" and item.claimed_by == "maria", "a reply claims an open handoff"
    assert [(m.kind, m.author, m.text, m.delivered) for m in item.messages] == [
        ("reply", "maria", "Hello, I am Maria. How can I help?", True)
    ]
    hold, event = rasa_api.events_for(sender)
    assert (hold["event"], hold["name"], hold["value"]) == ("slot", "handoff_active", True)
    assert (event["event"], event["text"], event["metadata"]) == ("bot", "Hello, I am Maria. How can I help?", {"staff": "maria"})


def test_reply_to_a_rest_conversation_is_recorded_but_not_delivered(
    desk: StaffDesk, actions_db: ServiceBackend, rasa_api: RasaApiStandIn
) -> None:
    actions_db.handoffs.request("web-9", "rest", "citizen_request", {})
    assert asyncio.run(desk.reply(reference_of(actions_db, "web-9"), "maria", "Hello")) is False
    assert [m.delivered for m in asyncio.run(desk.get(reference_of(actions_db, "web-9"))).messages] == [False]
    assert rasa_api.events_for("web-9")[-1]["text"] == "Hello", "the transcript has it all the same"
    with pytest.raises(ValueError):
        asyncio.run(desk.reply(reference_of(actions_db, "web-9"), "maria", "   "))
    with pytest.raises(ValueError):
        asyncio.run(desk.reply(reference_of(actions_db, "web-9"), "maria", "x" * 4001))


def test_a_note_is_never_sent(
    desk: StaffDesk, actions_db: ServiceBackend, rasa_api: RasaApiStandIn, telegram: LocalBotApi
) -> None:
    sender = telegram_citizen(telegram)
    before = telegram.mark()
    asyncio.run(desk.note(reference_of(actions_db, sender), "maria", "Sounds like a passport question"))
    assert not telegram.calls_to("sendMessage", since=before) and rasa_api.events_for(sender) == []
    [note] = asyncio.run(desk.get(reference_of(actions_db, sender))).messages
    assert (note.kind, note.delivered) == ("note", False)


def test_hand_back_and_resolve_tell_the_citizen_and_turn_the_assistant_back_on(
    desk: StaffDesk, actions_db: ServiceBackend, telegram: LocalBotApi, rasa_api: RasaApiStandIn
) -> None:
    back, done = telegram_citizen(telegram), telegram_citizen(telegram)
    asyncio.run(desk.hand_back(reference_of(actions_db, back), "maria"))
    asyncio.run(desk.claim(reference_of(actions_db, done), "tom"))
    with pytest.raises(ValueError):
        asyncio.run(desk.resolve(reference_of(actions_db, done), "tom", "sorted"))
    asyncio.run(desk.resolve(reference_of(actions_db, done), "tom", "booked"))
    assert (row_of(actions_db, back).status, row_of(actions_db, done).status, row_of(actions_db, done).outcome) == (
        "returned",
        "resolved",
        "booked",
    )
    assert telegram.sent_texts(int(back.split(":")[1]))[-1].startswith("You are back with the assistant")
    assert "has closed this conversation" in telegram.sent_texts(int(done.split(":")[1]))[-1]
    for sender in (back, done):
        slot, said_event = rasa_api.events_for(sender)
        assert slot == {**slot, "event": "slot", "name": "handoff_active", "value": False}
        assert said_event["event"] == "bot" and said_event["metadata"]["staff"] in ("maria", "tom")
    assert actions_db.handoffs.active(back) is None and actions_db.handoffs.active(done) is None


def test_when_the_queue_moves_the_others_are_told_their_new_place(
    desk: StaffDesk, actions_db: ServiceBackend, telegram: LocalBotApi
) -> None:
    first, second, third = (telegram_citizen(telegram) for _ in range(3))
    before = telegram.mark()
    asyncio.run(desk.claim(reference_of(actions_db, first), "maria"))
    told = {c.params["chat_id"]: c.params["text"] for c in telegram.calls_to("sendMessage", since=before)}
    one, two = desk.expected_wait_minutes(1), desk.expected_wait_minutes(2)  # the claim just made is now the history
    assert told == {
        int(
            second.split(":")[1]
        ): f"An update on your request: You are number 1 in the queue, and the wait is about {one} minute{'s' * (one > 1)}.",
        int(
            third.split(":")[1]
        ): f"An update on your request: You are number 2 in the queue, and the wait is about {two} minute{'s' * (two > 1)}.",
    }
    assert (row_of(actions_db, second).notified_position, row_of(actions_db, third).notified_position) == (1, 2)
    before = telegram.mark()
    asyncio.run(desk.reply(reference_of(actions_db, first), "maria", "Hello"))
    assert [c.params["chat_id"] for c in telegram.calls_to("sendMessage", since=before)] == [int(first.split(":")[1])], (
        "nobody else moved"
    )


def test_expected_wait_is_the_median_claim_wait_per_place(desk: StaffDesk, actions_db: ServiceBackend) -> None:
    assert [desk.expected_wait_minutes(p) for p in (1, 2, 3)] == [5, 10, 15], "5 minutes a place without history"
    now = datetime.utcnow()
    with make_sessionmaker(actions_db.engine).begin() as session:
        for number, minutes in enumerate((2, 3, 30)):
            session.add(
                models.HandoffRequest(
                    reference=f"HO-90000{number}",
                    sender_id=f"old-{number}",
                    channel="rest",
                    reason="citizen_request",
                    summary={},
                    status="resolved",
                    created_at=now - timedelta(minutes=minutes),
                    claimed_at=now,
                )
            )
    assert [desk.expected_wait_minutes(p) for p in (1, 2, 4)] == [3, 6, 12]


def test_queue_version_changes_with_every_change(desk: StaffDesk, actions_db: ServiceBackend) -> None:
    versions = [desk.queue_version()]
    actions_db.handoffs.request("v", "rest", "citizen_request", {})
    reference = reference_of(actions_db, "v")
    versions.append(desk.queue_version())
    for change in (
        desk.claim(reference, "maria"),
        desk.note(reference, "maria", "n"),
        desk.reply(reference, "maria", "r"),
        desk.resolve(reference, "maria", "answered"),
    ):
        asyncio.run(change)
        versions.append(desk.queue_version())
    assert len(set(versions)) == len(versions)
    assert desk.queue_version() == versions[-1], "stable while nothing changes"


def test_rasa_unreachable_still_closes_the_handoff(
    actions_db: ServiceBackend, telegram: LocalBotApi, capsys: pytest.CaptureFixture
) -> None:
    from harness.stack import free_port

    desk = StaffDesk(
        actions_db, f"http://127.0.0.1:{free_port()}", OutboundChannels(telegram.token, telegram.base_url), API_SECRET
    )
    sender = telegram_citizen(telegram)
    capsys.readouterr()
    asyncio.run(desk.hand_back(reference_of(actions_db, sender), "maria"))
    assert row_of(actions_db, sender).status == "returned"
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "staff_desk.rasa_unavailable" in line]
    assert logged and logged[0]["level"] == "error" and "Traceback" in logged[0]["traceback"]


# --- outbound delivery ---------------------------------------------------------------------------------------


def test_outbound_routes_by_sender_and_logs_no_text_or_number(telegram: LocalBotApi, capsys: pytest.CaptureFixture) -> None:
    telegram.user_sends_text(9001, "hi")
    outbound = OutboundChannels(telegram.token, telegram.base_url)
    capsys.readouterr()
    results = {
        sender: asyncio.run(outbound.deliver(sender, "Secret words 0412 999 888"))
        for sender in ("telegram:9001", "phone:0412999888", "kiosk:hall", "web-user", "telegram:424242")
    }
    log = capsys.readouterr().err
    assert results == {
        "telegram:9001": True,
        "phone:0412999888": False,
        "kiosk:hall": False,
        "web-user": False,
        "telegram:424242": False,
    }
    assert telegram.sent_texts(9001)[-1] == "Secret words 0412 999 888"
    assert log.count("outbound.delivery") == 5
    for secret in ("Secret words", "0412999888", "999 888", "9001", telegram.token):
        assert secret not in log
    assert asyncio.run(OutboundChannels().deliver("telegram:9001", "x")) is False, "no token, no Telegram"


def test_outbound_reads_the_bots_settings() -> None:
    outbound = OutboundChannels.from_environment({"TELEGRAM_TOKEN": "1:abc", "TELEGRAM_API_URL": "http://127.0.0.1:9/bot"})
    assert (outbound.telegram_token, outbound.telegram_api_url) == ("1:abc", "http://127.0.0.1:9/bot")
    assert OutboundChannels.from_environment({}).telegram_token is None
