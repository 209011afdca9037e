"""Conversation control: ActionStop leaves any task, ActionHandleLowConfidence asks to rephrase, then hands over to a person."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest

from actions.conversation import TASK_SLOTS, ActionHandleLowConfidence, ActionStop, trailing_fallbacks
from actions.menu import main_menu_buttons
from onewindow.backend import ServiceBackend
from tests import expect
from tests.action_harness import load_domain, make_tracker, run_action, slot_events


def user(intent: str, text: str = "...") -> Dict[str, Any]:
    return {"event": "user", "text": text, "parse_data": {"intent": {"name": intent, "confidence": 0.5}}}


def bot(text: str) -> Dict[str, Any]:
    return {"event": "bot", "text": text}


# --- ActionStop ---------------------------------------------------------------------------------


TASK_IN_PROGRESS = {
    "service": "passport_renewal",
    "office": "central_centre",
    "appointment_date": "tomorrow",
    "appointment_time": "10am",
    "booking_confirmed": None,
    "report_category": "pothole",
    "report_location": "Elm Street",
    "application_reference": "APP-100001",
    "requested_slot": "citizen_name",
}


def test_every_task_slot_is_a_slot_of_the_domain() -> None:
    assert set(TASK_SLOTS) <= set(load_domain()["slots"])


def test_stop_leaves_the_form_and_clears_every_task_slot() -> None:
    messages, events = run_action(
        ActionStop(), make_tracker(TASK_IN_PROGRESS, intent="stop", active_loop="appointment_form"), load_domain()
    )
    loops = [e for e in events if e["event"] == "active_loop"]
    assert len(loops) == 1 and loops[0]["name"] is None
    cleared = slot_events(events)
    assert cleared == {name: None for name in (*TASK_SLOTS, "requested_slot")}
    assert {
        "appointment_date",
        "appointment_time",
        "report_category",
        "report_location",
        "report_description",
        "application_reference",
        "booking_confirmed",
        "cancel_confirmed",
    } <= set(cleared)
    assert "Nothing was booked or sent" in messages[0]["text"]


def test_stop_keeps_what_the_conversation_is_about() -> None:
    _, events = run_action(ActionStop(), make_tracker(TASK_IN_PROGRESS, intent="stop", active_loop="report_form"), load_domain())
    assert "service" not in slot_events(events) and "office" not in slot_events(events)


def test_stop_without_a_task_still_answers() -> None:
    messages, events = run_action(ActionStop(), make_tracker({}, intent="stop"), load_domain())
    assert len(messages) == 1 and messages[0]["text"].startswith("All right, I have stopped.")
    assert all(e["value"] is None for e in events if e["event"] == "slot")


# --- ActionHandleLowConfidence -------------------------------------------------------------------


def handle(history: List[Dict[str, Any]], sender_id: str = "test-user") -> Dict[str, Any]:
    tracker = make_tracker({}, intent="nlu_fallback", text="blorp", events=history, sender_id=sender_id)
    messages, events = run_action(ActionHandleLowConfidence(), tracker, load_domain())
    assert len(messages) == 1
    handed_off = [{"event": "slot", "name": "handoff_active", "value": True, "timestamp": None}]
    assert events == (handed_off if hands_off(messages[0]) else [{"event": "rewind", "timestamp": None}])
    return messages[0]


def asks_to_rephrase(message: Dict[str, Any]) -> bool:
    return "Could you put it another way?" in message["text"] and not message["buttons"]


def hands_off(message: Dict[str, Any]) -> bool:
    """The handoff signal (actions/handoff.py) with the reason low_confidence."""
    return (message.get("custom") or {}).get("handoff", {}).get("reason") == "low_confidence"


def test_first_misunderstanding_asks_to_rephrase() -> None:
    message = handle([user("greet", "hi"), bot("Hello!")])
    assert asks_to_rephrase(message) and not hands_off(message)


def test_first_message_of_a_conversation_misunderstood_asks_to_rephrase() -> None:
    assert asks_to_rephrase(handle([]))


def test_second_misunderstanding_in_a_row_hands_over_to_a_person(module_action_backend: ServiceBackend) -> None:
    message = handle(
        [user("greet", "hi"), bot("Hello!"), user("nlu_fallback", "xyzzy"), bot("Sorry, I did not understand that.")], "lost-1"
    )
    assert hands_off(message) and not asks_to_rephrase(message)
    assert message["text"].startswith("I am still not sure what you need, so I have asked a person")
    assert expect.present(module_action_backend.handoffs.active("lost-1"), "a handoff").priority == 3


def test_third_misunderstanding_still_hands_over(module_action_backend: ServiceBackend) -> None:
    history = [user("nlu_fallback"), bot("Sorry"), user("nlu_fallback"), bot("Still not sure")]
    assert hands_off(handle(history, "lost-2"))


def test_understood_message_in_between_resets_the_count() -> None:
    history = [
        user("nlu_fallback", "xyzzy"),
        bot("Sorry, I did not understand that."),
        user("ask_fee", "how much is a passport"),
        bot("Which one?"),
    ]
    message = handle(history)
    assert asks_to_rephrase(message) and not hands_off(message)


@pytest.mark.parametrize(
    ("intents", "count"),
    [
        ([], 1),
        (["greet"], 1),
        (["nlu_fallback"], 2),
        (["nlu_fallback", "nlu_fallback"], 3),
        (["nlu_fallback", "greet"], 1),
        (["greet", "nlu_fallback"], 2),
    ],
)
def test_trailing_fallbacks_counts_only_the_latest_run(intents: List[str], count: int) -> None:
    history: List[Dict[str, Any]] = []
    for intent in intents:
        history += [user(intent), bot("reply"), {"event": "action", "name": "action_listen"}]
    assert trailing_fallbacks(make_tracker({}, intent="nlu_fallback", events=history)) == count


def test_the_message_being_handled_counts_whatever_its_intent() -> None:
    """The action also runs as the core fallback, for a message NLU read as an intent that no rule answers."""
    tracker = make_tracker({}, intent="inform", events=[user("greet"), bot("Hello!")])
    assert trailing_fallbacks(tracker) == 1


def test_a_message_no_rule_answered_counts_as_misunderstood() -> None:
    """ "🙏🙏🙏" reads as inform at 0.53; the core fallback ran for it: the next miss hands over."""
    earlier = [
        user("inform", "🙏🙏🙏"),
        {"event": "action", "name": "action_handle_low_confidence"},
        bot("Sorry"),
        {"event": "rewind"},
    ]
    assert trailing_fallbacks(make_tracker({}, intent="inform", events=earlier)) == 2


def test_first_misunderstanding_rewinds_the_message_so_the_conversation_stays_where_it_was() -> None:
    tracker = make_tracker(
        {"service": "passport_renewal", "requested_slot": "office"}, intent="inform", text="👍", active_loop="appointment_form"
    )
    messages, events = run_action(ActionHandleLowConfidence(), tracker, load_domain())
    assert events == [{"event": "rewind", "timestamp": None}]
    assert len(messages) == 1 and "answer my last question again" in messages[0]["text"]


def test_second_misunderstanding_inside_a_form_leaves_it_for_a_person(module_action_backend: ServiceBackend) -> None:
    earlier = [{"event": "user", "text": "blorf", "parse_data": {"intent": {"name": "nlu_fallback", "confidence": 0.3}}}]
    tracker = make_tracker(
        {"service": "passport_renewal"},
        intent="nlu_fallback",
        text="zong",
        events=earlier,
        active_loop="appointment_form",
        sender_id="lost-3",
    )
    messages, events = run_action(ActionHandleLowConfidence(), tracker)
    assert hands_off(messages[0])
    assert {"event": "active_loop", "name": None} in [{"event": e["event"], "name": e.get("name")} for e in events]
    assert slot_events(events) == {"requested_slot": None, "handoff_active": True}, "the slots already given are kept"


# --- the miss ladder on a call: rephrase, then the main menu, then a person ----------------------

CALLER = "phone:0412999001"


@pytest.mark.parametrize("speech", [True, False])
def test_on_a_call_the_second_miss_gives_the_main_menu_and_the_third_a_person(
    module_action_backend: ServiceBackend, speech: bool
) -> None:
    sender = f"{CALLER}{int(speech)}"
    history: List[Dict[str, Any]] = [user("greet", "hello")]
    answers = []
    for _ in range(3):
        tracker = make_tracker(
            {},
            intent="nlu_fallback",
            text="/nlu_fallback",
            events=history,
            sender_id=sender,
            metadata={"input": "voice", "speech": speech, "heard": ""},
        )
        messages, events = run_action(ActionHandleLowConfidence(), tracker, load_domain())
        answers.append((messages, events))
        history = tracker.events + [bot(messages[0]["text"])]
    (first, first_events), (second, second_events), (third, _) = answers
    assert first_events == [{"event": "rewind", "timestamp": None}] and first[0]["buttons"] == main_menu_buttons(), (
        "nothing was offered: the menu"
    )
    assert "another way" in first[0]["text"] if speech else "try again" in first[0]["text"]
    assert [b["payload"] for b in second[0]["buttons"]] == [b["payload"] for b in main_menu_buttons()]
    assert second_events[0] == {"event": "rewind", "timestamp": None}
    assert {"event": "active_loop", "name": None, "timestamp": None} in second_events
    assert (third[0].get("custom") or {}).get("handoff", {}).get("reason") == "not_understood"
    assert expect.present(module_action_backend.handoffs.active(sender), "a handoff").reason == "not_understood"


def test_a_miss_handed_over_inside_a_form_forgets_what_the_missed_message_filled(module_action_backend: ServiceBackend) -> None:
    earlier = [user("nlu_fallback", "/nlu_fallback"), user("nlu_fallback", "/nlu_fallback")]
    tracker = make_tracker(
        {"service": "passport_renewal", "requested_slot": "citizen_name", "citizen_name": "/nlu_fallback"},
        intent="nlu_fallback",
        text="/nlu_fallback",
        events=earlier,
        active_loop="appointment_form",
        sender_id=f"{CALLER}9",
        metadata={"speech": False},
    )
    _, events = run_action(ActionHandleLowConfidence(), tracker)
    assert slot_events(events)["citizen_name"] is None and "service" not in slot_events(events)


def test_stop_offers_the_main_menu() -> None:
    messages, _ = run_action(
        ActionStop(), make_tracker({}, intent="stop", sender_id=CALLER, metadata={"speech": False}), load_domain()
    )
    assert messages[0]["buttons"] == main_menu_buttons()


def test_a_turn_the_hotline_handled_itself_neither_counts_nor_resets_the_misses() -> None:
    repeat = {"event": "user", "text": "*", "metadata": {"input": "keypad", "handled": "repeat"}}
    history = [user("nlu_fallback", "/nlu_fallback"), bot("Sorry"), repeat, bot("Sorry")]
    assert trailing_fallbacks(make_tracker({}, intent="nlu_fallback", events=history)) == 2


def test_a_caller_not_understood_hears_the_last_choices_again() -> None:
    offered = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
    history = [user("book_appointment", "book"), {"event": "bot", "text": "Shall I book it?", "data": {"buttons": offered}}]
    tracker = make_tracker(
        {},
        intent="nlu_fallback",
        text="/nlu_fallback",
        events=history,
        sender_id=CALLER,
        metadata={"input": "keypad", "speech": False},
        active_loop="appointment_form",
    )
    messages, events = run_action(ActionHandleLowConfidence(), tracker, load_domain())
    assert messages[0]["buttons"] == offered and events == [{"event": "rewind", "timestamp": None}]
    assert "choose again" in messages[0]["text"]


def test_a_caller_not_understood_in_a_question_without_choices_gets_no_buttons() -> None:
    """Keys answer a question for digits: buttons would turn them into choices."""
    history = [user("check_status", "status"), bot("What is your application number?")]
    tracker = make_tracker(
        {},
        intent="nlu_fallback",
        text="/nlu_fallback",
        events=history,
        sender_id=CALLER,
        metadata={"input": "keypad", "speech": False},
        active_loop="status_form",
    )
    messages, _ = run_action(ActionHandleLowConfidence(), tracker, load_domain())
    assert not messages[0]["buttons"]
