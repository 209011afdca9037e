"""References to what the assistant just listed ("the rent one", "the second one"), resolved against its buttons."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from actions.choose_listed import ActionChooseListed
from actions.life_events import ActionLifeEvent
from actions.listed import COMMON, latest_listing, ordinal
from actions.offices import ActionAnswerOfficeQuestion
from actions.services import ActionAnswerServiceQuestion
from onewindow.backend import ServiceBackend
from onewindow.service_catalogue import Catalogue
from tests import expect
from tests.action_harness import make_tracker, run_action, slot_events

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth"]
# how the citizen goes on after a list; {ref} is the reference, the rest says what is asked
FOLLOW_UPS = {
    "ask_service_info": ["the {ref}, how do I get it", "ok and {ref}?", "tell me about {ref}"],
    "ask_documents": ["what documents for {ref}", "and for {ref}, what do I bring"],
    "ask_online": ["ok and {ref}, can I do that from home?", "can I do {ref} online"],
    "ask_fee": ["how much does {ref} cost"],
}


def bot_event(message: Dict[str, Any]) -> Dict[str, Any]:
    """The assistant's message as the tracker stores it."""
    return {"event": "bot", "text": message.get("text"), "data": {"buttons": message.get("buttons") or []}}


def bundle_events(event_id: str) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """The events of a conversation that just got a life event's list, and the slots it set."""
    messages, events = run_action(ActionLifeEvent(), make_tracker({"life_event": event_id}, intent="life_event"))
    return [bot_event(messages[0])], slot_events(events)


def distinctive_words(item: Dict[str, Any], others: List[Dict[str, Any]]) -> List[str]:
    """Words of the item's name or aliases that no other listed item's name or alias contains (nor their first
    five letters), other than the words that say what is asked (COMMON)."""

    def words(entry: Dict[str, Any]) -> List[str]:
        return re.findall(r"[a-z]+", " ".join([entry["name"].lower(), *entry["aliases"]]))

    other_text = " ".join(" ".join(words(o)) for o in others)
    return sorted({w for w in words(item) if len(w) > 3 and w not in COMMON and w[:5] not in other_text})


def answer(slots: Dict[str, Any], intent: str, text: str, events: List[Dict[str, Any]], entities: Optional[List] = None):
    tracker = make_tracker(slots, intent=intent, text=text, events=events, entities=entities)
    messages, returned = run_action(ActionAnswerServiceQuestion(), tracker)
    assert len(messages) == 1
    return messages[0], slot_events(returned)


def is_about(message: Dict[str, Any], name: str) -> bool:
    return name.lower() in message["text"].lower()


def test_a_word_of_a_listed_service_gets_that_service_answered(
    module_action_backend: ServiceBackend, catalogue: Catalogue
) -> None:
    services = {s["id"]: s for s in catalogue.services}

    @SETTINGS
    @given(event=st.sampled_from(catalogue.life_events), data=st.data())
    def check(event: Dict[str, Any], data: st.DataObject) -> None:
        listed = [services[step["service"]] for step in event["steps"]]
        item = data.draw(st.sampled_from(listed))
        words = distinctive_words(item, [s for s in listed if s is not item])
        assume(words)
        word = data.draw(st.sampled_from(words))
        intent = data.draw(st.sampled_from(sorted(FOLLOW_UPS)))
        text = data.draw(st.sampled_from(FOLLOW_UPS[intent])).format(
            ref=data.draw(st.sampled_from([f"the {word} one", f"the {word} thing", word]))
        )
        assume(
            ordinal(text) is None
        )  # "the first one", "the number one": an ordinal comes first ("first passport", "tax number")
        events, slots = bundle_events(event["id"])
        message, set_now = answer({**slots, "life_event": event["id"]}, intent, text, events)
        assert set_now["service"] == item["id"], (text, message["text"])
        assert is_about(message, item["name"]), (text, message["text"])

    check()


def test_an_ordinal_gets_that_item_of_the_list(module_action_backend: ServiceBackend, catalogue: Catalogue) -> None:
    @SETTINGS
    @given(event=st.sampled_from(catalogue.life_events), data=st.data())
    def check(event: Dict[str, Any], data: st.DataObject) -> None:
        position = data.draw(st.integers(1, len(event["steps"])))
        said = data.draw(
            st.sampled_from(
                [
                    f"the {ORDINALS[position - 1]} one",
                    f"number {position}",
                    f"the {ORDINALS[position - 1]}",
                    str(position),
                    *(["the last one"] if position == len(event["steps"]) else []),
                ]
            )
        )
        intent = data.draw(st.sampled_from(sorted(FOLLOW_UPS)))
        events, slots = bundle_events(event["id"])
        message, set_now = answer(slots, intent, f"and {said}?" if said[0].isalpha() else said, events)
        expected = event["steps"][position - 1]["service"]
        assert set_now["service"] == expected, (said, message["text"])

    check()


def test_choose_listed_answers_about_the_item(module_action_backend: ServiceBackend) -> None:
    events, slots = bundle_events("job_loss")
    for said, expected in (("the rent one", "rent_subsidy"), ("the second one", "unemployment_benefit")):
        tracker = make_tracker(slots, intent="choose_listed", text=said, events=events)
        messages, returned = run_action(ActionChooseListed(), tracker)
        name = expect.service(module_action_backend.catalogue, expected).name
        assert len(messages) == 1 and messages[0]["text"].startswith(f"{name}. "), said
        assert slot_events(returned)["service"] == expected


def test_choose_listed_of_a_question_still_waiting_answers_that_question(module_action_backend: ServiceBackend) -> None:
    """ "How much is a passport?" "Do you mean New passport or Passport renewal?" "The second one"."""
    messages, returned = run_action(ActionAnswerServiceQuestion(), make_tracker({"service": "passport"}, intent="ask_fee"))
    asked = slot_events(returned)
    second = expect.present(latest_listing([bot_event(messages[0])]), "the list just shown").ids[1]
    tracker = make_tracker(asked, intent="choose_listed", text="the second one", events=[bot_event(messages[0])])
    answered, _ = run_action(ActionChooseListed(), tracker)
    service = expect.service(module_action_backend.catalogue, second)
    assert answered[0]["text"].startswith(f"{service.name} costs")


def test_where_to_go_for_a_listed_service_lists_its_offices(module_action_backend: ServiceBackend) -> None:
    events, slots = bundle_events("job_loss")
    tracker = make_tracker(slots, intent="find_office", text="ok and where do I go for the rent one", events=events)
    messages, returned = run_action(ActionAnswerOfficeQuestion(), tracker)
    offices = module_action_backend.catalogue.offices(service_id="rent_subsidy")
    assert messages[0]["text"].startswith("Offices for rent subsidy: 1. ")
    assert expect.present(latest_listing([bot_event(messages[0])]), "the list just shown").ids == [o.id for o in offices]
    assert slot_events(returned)["service"] == "rent_subsidy"


def test_an_office_of_an_office_list_is_chosen_by_ordinal_or_name(module_action_backend: ServiceBackend) -> None:
    tracker = make_tracker({"service": "passport_renewal"}, intent="find_office", text="where do I go")
    messages, _ = run_action(ActionAnswerOfficeQuestion(), tracker)
    events = [bot_event(m) for m in messages if m.get("buttons")]
    offices = module_action_backend.catalogue.offices(service_id="passport_renewal")
    assert expect.present(latest_listing(events), "the list just shown").ids == [o.id for o in offices]
    for said, expected in (
        ("the second one", offices[1].id),
        ("the last one", offices[-1].id),
        (offices[2].name.split()[0], offices[2].id),
    ):
        shown, chosen = run_action(
            ActionChooseListed(), make_tracker({"service": "passport_renewal"}, intent="choose_listed", text=said, events=events)
        )
        assert slot_events(chosen)["office"] == expected, said
        office = expect.office(module_action_backend.catalogue, expected)
        assert shown[0]["text"].startswith(office.name), said


def test_a_reference_to_nothing_listed_asks_which_again_with_the_same_buttons(module_action_backend: ServiceBackend) -> None:
    events, slots = bundle_events("birth")
    messages, returned = run_action(
        ActionChooseListed(), make_tracker(slots, intent="choose_listed", text="the ninth one", events=events)
    )
    assert messages[0]["text"] == "Which one do you mean?" and messages[0]["buttons"] == events[0]["data"]["buttons"]
    assert returned == []


def test_a_named_service_comes_before_the_list(module_action_backend: ServiceBackend) -> None:
    events, slots = bundle_events("job_loss")
    entity = [{"entity": "service", "value": "passport renewal", "start": 0, "end": 1}]
    _, set_now = answer(
        {**slots, "service": "passport renewal"}, "ask_fee", "how much is the passport renewal, the second one", events, entity
    )
    assert set_now["service"] == "passport_renewal"


def test_the_list_no_longer_counts_once_the_conversation_moved_on(module_action_backend: ServiceBackend) -> None:
    """After the birth list, a question about a passport, then "how much is it for my child": still the passport."""
    events, _ = bundle_events("birth")
    _, set_now = answer({"service": "passport_renewal"}, "ask_fee", "how much is it for my child", events)
    assert set_now["service"] == "passport_renewal"


def test_words_of_no_item_or_of_two_leave_the_service_in_context(module_action_backend: ServiceBackend) -> None:
    events, slots = bundle_events("job_loss")
    _, set_now = answer({**slots, "service": "rent_subsidy"}, "ask_fee", "how much is it", events)
    assert set_now["service"] == "rent_subsidy"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("the second one", 2),
        ("number 3", 3),
        ("the 4th", 4),
        ("option two", 2),
        ("3", 3),
        ("the last one", -1),
        ("second one please", 2),
        ("i mean the second", 2),
        ("number one", 1),
        ("the rent one", None),
        ("I have 2 children", None),
        ("one", None),
        ("how long did it take last time", None),
    ],
)
def test_ordinals(text: str, expected: Optional[int]) -> None:
    assert ordinal(text) == expected
