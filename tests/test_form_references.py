"""A task form takes "the second one", "number 2", "the north one" as the answer to its own question with buttons."""

from __future__ import annotations

import json
from typing import Any, Dict, List

from hypothesis import given
from hypothesis import strategies as st

from actions.forms import listed_answer
from actions.listed import NUMBER_WORDS, ORDINAL_WORDS
from tests.action_harness import load_domain, make_tracker

DOMAIN = load_domain()
ORDINALS = {v: k for k, v in ORDINAL_WORDS.items() if v > 0}
NUMBERS = {v: k for k, v in NUMBER_WORDS.items()}
# (asked slot, the entity its buttons carry, a title for the i-th button): every kind of form question with a list
QUESTIONS = {
    "office": (
        "office",
        lambda i: (
            f"{['North', 'South', 'East', 'West', 'Central', 'Harbour', 'Airport', 'Market', 'Old Town', 'Hill'][i]} Service Centre"
        ),
    ),
    "service": (
        "service",
        lambda i: [
            "Passport renewal",
            "Identity card",
            "Driving licence",
            "Birth certificate",
            "Marriage licence",
            "Residence permit",
            "Parking permit",
            "Business licence",
            "Pension",
            "Housing benefit",
        ][i],
    ),
    "appointment_date": (
        "date",
        lambda i: f"{['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'][i % 7]} {7 + i} December",
    ),
    "appointment_time": ("time", lambda i: f"{9 + i // 2}:{'30' if i % 2 else '00'} am"),
    "appointment_reference": (
        "reference",
        lambda i: (
            f"BK-4829{i}-3750{i}, {['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'][i % 7]} {7 + i} December"
        ),
    ),
    "report_category": (
        "report_category",
        lambda i: [
            "Pothole",
            "Broken street light",
            "Graffiti",
            "Rubbish",
            "Fallen tree",
            "Noise",
            "Water leak",
            "Abandoned vehicle",
            "Blocked drain",
            "Damaged sign",
        ][i],
    ),
}


def question(slot: str, count: int) -> List[Dict[str, Any]]:
    entity, title = QUESTIONS[slot]
    return [{"title": title(i), "payload": "/inform" + json.dumps({entity: f"value-{i}"})} for i in range(count)]


def tracker_after(
    buttons: List[Dict[str, Any]], slot: str, text: str, entities: Any = None, form: str = "appointment_form"
) -> Any:
    events: List[Dict[str, Any]] = [
        {"event": "user", "text": "earlier"},
        {"event": "bot", "text": "Which one?", "data": {"buttons": buttons}},
    ]
    return make_tracker(
        {"requested_slot": slot}, intent="choose_listed", text=text, entities=entities, events=events, active_loop=form
    )


def words_for(position: int, style: int) -> str:
    return [
        f"the {ORDINALS[position]} one",
        f"number {position}",
        f"option {NUMBERS[position]}",
        f"the {ORDINALS[position]}",
        f"{ORDINALS[position]} one please",
        f"The {ORDINALS[position].upper()} ONE",
        f"{ORDINALS[position]}",
        f"{position}{'st' if position == 1 else 'nd' if position == 2 else 'rd' if position == 3 else 'th'}",
        f"{ORDINALS[position].capitalize()} please.",
    ][style]


@given(slot=st.sampled_from(sorted(QUESTIONS)), data=st.data())
def test_an_ordinal_answers_the_question_with_that_button(slot: str, data: st.DataObject) -> None:
    count = data.draw(st.integers(2, 10))
    position = data.draw(st.integers(1, count))
    answer = listed_answer(tracker_after(question(slot, count), slot, words_for(position, data.draw(st.integers(0, 8)))), DOMAIN)
    assert answer == [{"event": "slot", "timestamp": None, "name": slot, "value": f"value-{position - 1}"}]


@given(slot=st.sampled_from(sorted(QUESTIONS)), count=st.integers(2, 10))
def test_the_last_one_is_the_last_button(slot: str, count: int) -> None:
    answer = listed_answer(tracker_after(question(slot, count), slot, "the last one"), DOMAIN)
    assert [event["value"] for event in answer] == [f"value-{count - 1}"]


@given(slot=st.sampled_from(["office", "appointment_date", "appointment_reference", "service"]), data=st.data())
def test_a_word_of_one_title_as_the_one_answers_with_that_button(slot: str, data: st.DataObject) -> None:
    count = data.draw(st.integers(2, 7))
    position = data.draw(st.integers(0, count - 1))
    word = QUESTIONS[slot][1](position).replace(",", "").split()[0 if slot != "appointment_reference" else 1]
    answer = listed_answer(tracker_after(question(slot, count), slot, f"the {word.lower()} one"), DOMAIN)
    assert [event["value"] for event in answer] == [f"value-{position}"]


def test_yes_and_no_buttons_answer_a_confirmation() -> None:
    buttons = [{"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]
    assert [e["value"] for e in listed_answer(tracker_after(buttons, "booking_confirmed", "the first one"), DOMAIN)] == [True]
    assert [e["value"] for e in listed_answer(tracker_after(buttons, "booking_confirmed", "the second one"), DOMAIN)] == [False]


def test_what_is_not_a_reference_to_the_buttons_is_left_to_the_form() -> None:
    offices, times = question("office", 5), question("appointment_time", 6)
    assert listed_answer(tracker_after(offices, "office", "number 7"), DOMAIN) == []  # no seventh office
    assert listed_answer(tracker_after(offices, "office", offices[1]["payload"]), DOMAIN) == []  # a pressed button
    named = [{"entity": "office", "value": "east_centre"}]
    assert listed_answer(tracker_after(offices, "office", "the east one", named), DOMAIN) == []  # it names the office itself
    assert listed_answer(tracker_after(times, "appointment_time", "10"), DOMAIN) == []  # ten o'clock, also a title's number
    districts = [
        {"title": f"Somewhere in {d}", "payload": "/inform" + json.dumps({"district": d.lower()})} for d in ("North", "South")
    ]
    # a free-text answer that shares a word with a button is the citizen's words, not the button
    assert (
        listed_answer(tracker_after(districts, "report_location", "near the north gate of the park", form="report_form"), DOMAIN)
        == []
    )
    assert (
        listed_answer(tracker_after(offices[:1], "office", "the first one"), DOMAIN) == []
    )  # one button: nothing to choose from
