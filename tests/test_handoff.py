"""Asking for a person: ActionRequestHuman records a handoff request, says the queue and the hotline, and signals staff."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Dict, List, Optional, Tuple

import pytest
from rasa_sdk import Tracker
from sqlalchemy import delete, select

from actions import handoff as handoff_actions
from actions.handoff import SUMMARY_TURNS, ActionRequestHuman
from onewindow import models
from onewindow.backend import ServiceBackend
from onewindow.backend import references as references_module
from onewindow.catalogue import Catalogue
from onewindow.db import make_sessionmaker
from tests.action_harness import load_domain, make_tracker, run_action

WEDNESDAY_MORNING = datetime(2026, 11, 25, 10, 0)  # the hotline works 08:00-20:00 on weekdays
SUNDAY_MORNING = datetime(2026, 11, 29, 10, 0)  # the hotline is closed on Sundays
REFERENCE = re.compile(r"HO-\d{6}")


@pytest.fixture
def actions_db(module_action_backend: ServiceBackend, monkeypatch: pytest.MonkeyPatch) -> ServiceBackend:
    """The actions' backend on the module's database, with no handoff requests yet and staff at work."""
    monkeypatch.setattr(handoff_actions, "now", lambda: WEDNESDAY_MORNING)
    with make_sessionmaker(module_action_backend.engine).begin() as session:
        session.execute(delete(models.HandoffRequest))
    return module_action_backend


def user(text: str, intent: str) -> Dict[str, Any]:
    return {"event": "user", "text": text, "parse_data": {"intent": {"name": intent, "confidence": 0.9}}}


def bot(text: str) -> Dict[str, Any]:
    return {"event": "bot", "text": text}


def ask_for_person(
    sender_id: str = "citizen-1",
    slots: Optional[Dict[str, Any]] = None,
    events: Optional[List[Dict[str, Any]]] = None,
    active_loop: Optional[str] = None,
    channel: str = "rest",
) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    tracker: Tracker = make_tracker(
        slots or {}, intent="request_human", text="I want to talk to a person", events=events,
        active_loop=active_loop, sender_id=sender_id, channel=channel,
    )
    messages, returned = run_action(ActionRequestHuman(), tracker, load_domain())
    assert len(messages) == 1
    return messages[0], returned


def rows(backend: ServiceBackend) -> List[models.HandoffRequest]:
    with make_sessionmaker(backend.engine)() as session:
        return list(session.scalars(select(models.HandoffRequest).order_by(models.HandoffRequest.id)))


def test_request_is_recorded_with_reason_channel_and_reference(actions_db: ServiceBackend) -> None:
    message, _ = ask_for_person(sender_id="tg-77", channel="telegram")
    [row] = rows(actions_db)
    assert (row.sender_id, row.channel, row.reason, row.status) == ("tg-77", "telegram", "citizen_request", "open")
    assert REFERENCE.fullmatch(row.reference)
    assert f"Your request number is {row.reference}" in message["text"]


def test_summary_has_last_turns_intents_and_slots(actions_db: ServiceBackend) -> None:
    history = [
        user("hello", "greet"), bot("Hello! How can I help?"),
        user("what do I need for a passport renewal", "ask_documents"), bot("Please bring 3 things."),
        user("how much", "ask_fee"), bot("It costs 100 dollars."),
        user("book it", "book_appointment"), bot("Which office?"),
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


def test_first_request_is_first_in_queue(actions_db: ServiceBackend) -> None:
    message, _ = ask_for_person(sender_id="a")
    assert "you are number 1 in the queue" in message["text"]


def test_second_conversation_is_second_in_queue(actions_db: ServiceBackend) -> None:
    ask_for_person(sender_id="a")
    message, _ = ask_for_person(sender_id="b")
    assert "you are number 2 in the queue" in message["text"]
    assert [row.sender_id for row in rows(actions_db)] == ["a", "b"]


def test_asking_twice_keeps_one_open_request(actions_db: ServiceBackend) -> None:
    first, _ = ask_for_person(sender_id="a")
    ask_for_person(sender_id="b")
    again, _ = ask_for_person(sender_id="a")
    references = [REFERENCE.search(m["text"]).group() for m in (first, again)]
    assert references[0] == references[1]
    assert "you are number 1 in the queue" in again["text"]
    assert [row.sender_id for row in rows(actions_db)] == ["a", "b"]


def test_closed_request_no_longer_counts_in_the_queue(actions_db: ServiceBackend) -> None:
    ask_for_person(sender_id="a")
    with make_sessionmaker(actions_db.engine).begin() as session:
        session.execute(models.HandoffRequest.__table__.update().values(status="closed"))
    message, _ = ask_for_person(sender_id="b")
    assert "you are number 1 in the queue" in message["text"]


def test_message_gives_hotline_number_and_says_staff_are_working(
    actions_db: ServiceBackend, catalogue: Catalogue
) -> None:
    message, _ = ask_for_person()
    assert f"call the city hotline on {catalogue.city['hotline']['number']}" in message["text"]
    assert "Staff are working now" in message["text"]


def test_out_of_hours_gives_the_staff_hours(
    actions_db: ServiceBackend, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert catalogue.city["hotline"]["hours"]["sun"] == "closed"
    monkeypatch.setattr(handoff_actions, "now", lambda: SUNDAY_MORNING)
    message, _ = ask_for_person()
    text = message["text"]
    assert "Staff are not working right now" in text
    assert "Monday to Friday: 8 am to 8 pm. Saturday: 9 am to 1 pm. Sunday: closed." in text
    assert catalogue.city["hotline"]["number"] in text


def test_custom_payload_carries_the_handoff_reference(actions_db: ServiceBackend) -> None:
    message, _ = ask_for_person()
    [row] = rows(actions_db)
    assert message["custom"]["handoff"] == {"reference": row.reference, "reason": "citizen_request", "priority": row.priority}


def test_active_form_is_left(actions_db: ServiceBackend) -> None:
    _, returned = ask_for_person(active_loop="appointment_form", slots={"requested_slot": "appointment_date"})
    loops = [e for e in returned if e["event"] == "active_loop"]
    assert len(loops) == 1 and loops[0]["name"] is None
    assert any(e["event"] == "slot" and e["name"] == "requested_slot" and e["value"] is None for e in returned)


def test_no_form_means_no_events(actions_db: ServiceBackend) -> None:
    _, returned = ask_for_person()
    assert returned == []


def test_a_reference_already_used_is_never_given_again(
    actions_db: ServiceBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = actions_db.handoffs.request("a", "rest", "citizen_request", {}).reference
    offered = iter([first, first, "HO-000042"])
    monkeypatch.setattr(references_module, "new_reference", lambda kind: next(offered))
    second = actions_db.handoffs.request("b", "rest", "citizen_request", {})
    assert second.reference == "HO-000042"
    assert second.position_in_queue == 2
