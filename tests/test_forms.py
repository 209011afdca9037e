"""A message that asks something else while a form waits for an answer rejects the form's turn (actions/forms.py)."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from actions.appointments import ValidateAppointmentForm
from actions.forms import SUBJECT_CHANGES, changes_subject
from tests.action_harness import load_domain, make_tracker, run_action

LISTENED = [{"event": "action", "name": "action_listen"}]
FORM_RUNNING = {"event": "action", "name": "appointment_form"}  # Rasa shows the form as run while it validates


def tracker_for(intent: str, before: List[Dict[str, Any]], active_loop: str = "appointment_form") -> Any:
    tracker = make_tracker(
        {"requested_slot": "service"},
        intent=intent,
        events=before,
        active_loop=active_loop,
        entities=[{"entity": "office", "value": "mobile_van"}],
    )
    tracker.events.append(FORM_RUNNING)
    return tracker


@pytest.mark.parametrize("intent", sorted(SUBJECT_CHANGES))
def test_a_question_while_the_form_asks_rejects_the_form(intent: str) -> None:
    tracker = tracker_for(intent, LISTENED)
    assert changes_subject(tracker, "appointment_form")
    _, events = run_action(ValidateAppointmentForm(), tracker, load_domain())
    assert events == [
        {"event": "action_execution_rejected", "name": "appointment_form", "policy": None, "confidence": None, "timestamp": None}
    ]


@pytest.mark.parametrize("intent", ["inform", "affirm", "deny", "book_appointment", "nlu_fallback"])
def test_an_answer_is_validated_as_usual(intent: str) -> None:
    assert not changes_subject(tracker_for(intent, LISTENED), "appointment_form")


def test_the_form_coming_back_after_the_answer_is_not_rejected_again() -> None:
    answered = [*LISTENED, {"event": "action", "name": "action_answer_office_question"}, {"event": "bot", "text": "Mobile van"}]
    assert not changes_subject(tracker_for("find_office", answered), "appointment_form")


def test_a_form_starting_on_a_question_is_not_rejected() -> None:
    assert not changes_subject(tracker_for("find_office", LISTENED, active_loop=""), "appointment_form")


def test_another_forms_question_is_not_this_forms_business() -> None:
    assert not changes_subject(tracker_for("ask_fee", LISTENED, active_loop="report_form"), "appointment_form")


@pytest.mark.parametrize("requested", ["citizen_name", "report_location"])
def test_the_hotlines_nothing_heard_is_never_an_answer(requested: str) -> None:
    tracker = make_tracker(
        {"requested_slot": requested, requested: "/nlu_fallback"},
        intent="nlu_fallback",
        text="/nlu_fallback",
        events=LISTENED,
        active_loop="appointment_form",
    )
    tracker.events.append(FORM_RUNNING)
    _, events = run_action(ValidateAppointmentForm(), tracker, load_domain())
    assert [e["event"] for e in events] == ["action_execution_rejected"]
