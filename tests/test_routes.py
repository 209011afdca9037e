"""A stated constraint (in person, from home) shapes the answers about how to get a service and life events."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actions.life_events import ActionLifeEvent
from actions.offices import MAX_LISTED
from actions.routes import IN_PERSON, MODES, ONLINE, stated_mode
from actions.services import ROUTE_ASPECTS, ActionAnswerServiceQuestion
from onewindow.backend import ServiceBackend
from onewindow.service_catalogue import Catalogue
from tests import expect
from tests.action_harness import make_tracker, run_action, slot_events

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def answer(slots: Dict[str, Any], intent: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    messages, events = run_action(ActionAnswerServiceQuestion(), make_tracker(slots, intent=intent))
    assert len(messages) == 1
    return messages[0], slot_events(events)


def pressed(message: Dict[str, Any]) -> List[Tuple[str, Dict[str, Any]]]:
    """Each button as (intent, entities)."""
    result = []
    for b in message.get("buttons", []):
        intent, _, entities = b["payload"][1:].partition("{")
        result.append((intent, json.loads("{" + entities) if entities else {}))
    return result


@pytest.fixture(scope="module")
def ids(catalogue: Catalogue) -> List[str]:
    """Every service id of the real catalogue."""
    return [s["id"] for s in catalogue.services]


def test_in_person_gives_where_to_go_what_to_bring_and_booking(module_action_backend: ServiceBackend, ids: List[str]) -> None:
    @SETTINGS
    @given(service_id=st.sampled_from(ids), aspect=st.sampled_from(ROUTE_ASPECTS), as_list=st.booleans())
    def check(service_id: str, aspect: str, as_list: bool) -> None:
        service = expect.service(module_action_backend.catalogue, service_id)
        offices = module_action_backend.catalogue.offices(service_id=service_id)
        message, slots = answer({"service": service_id, "mode": [IN_PERSON] if as_list else IN_PERSON}, aspect)
        text = message["text"]
        assert all(f"{n}. {o.name}" in text for n, o in enumerate(offices, start=1))
        assert all(o.address in text or o.stops for o in offices[:MAX_LISTED])
        assert all(document in text for document in service.documents)
        assert "fully online" not in text, "the online answer is not the answer to 'in person'"
        if service.online_available:
            assert text.index("in person") < text.index(service.online_where), "the online way is only an aside"
        buttons = pressed(message)
        assert [e["office"] for i, e in buttons if i == "find_office"] == [o.id for o in offices]
        assert (
            ("book_appointment", {"service": service_id}) in buttons
            if service.bookable
            else "book_appointment" not in dict(buttons)
        )
        assert slots["service"] == service_id

    check()


def test_from_home_gives_the_online_way_or_says_it_is_not_possible_and_offers_the_office(
    module_action_backend: ServiceBackend, ids: List[str]
) -> None:
    hotline = module_action_backend.catalogue.city().hotline_number

    @SETTINGS
    @given(service_id=st.sampled_from(ids), aspect=st.sampled_from(ROUTE_ASPECTS))
    def check(service_id: str, aspect: str) -> None:
        service = expect.service(module_action_backend.catalogue, service_id)
        offices = module_action_backend.catalogue.offices(service_id=service_id)
        message, _ = answer({"service": service_id, "mode": ONLINE}, aspect)
        text, buttons = message["text"], pressed(message)
        office_buttons = [e["office"] for i, e in buttons if i == "find_office"]
        if service.online_available:
            assert f"from home, online, at the {service.online_where}" in text
            assert "You do not need to go to an office" in text and not office_buttons
        else:
            assert f"{service.name} cannot be done online or from home" in text and hotline in text
            assert office_buttons == [o.id for o in offices] and all(o.name in text for o in offices)

    check()


@pytest.mark.parametrize("aspect", ["ask_documents", "ask_fee", "ask_processing_time", "ask_benefit_amount"])
def test_other_questions_are_answered_as_asked_whatever_the_constraint(
    module_action_backend: ServiceBackend, aspect: str
) -> None:
    for mode in MODES:
        with_mode, _ = answer({"service": "passport_renewal", "mode": mode}, aspect)
        without, _ = answer({"service": "passport_renewal"}, aspect)
        assert with_mode == without


def test_no_constraint_keeps_the_plain_online_answer(module_action_backend: ServiceBackend) -> None:
    message, _ = answer({"service": "passport_renewal"}, "ask_online")
    assert "fully online" in message["text"]


def test_the_constraint_waits_while_the_service_is_asked_for(module_action_backend: ServiceBackend) -> None:
    """ "I must go in person" without a service: the action asks which service and the constraint is kept for the answer."""
    message, slots = answer({"mode": IN_PERSON}, "ask_online")
    assert "mode" not in slots and slots["question"] == "ask_online"
    message, _ = answer({"mode": IN_PERSON, "question": "ask_online", "service": "pension_application"}, "inform")
    assert "in person" in message["text"] and "These offices offer it" in message["text"]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("in_person", IN_PERSON),
        (["online"], ONLINE),
        (["online", "in_person"], IN_PERSON),
        (None, None),
        ("by bus", None),
        ([], None),
    ],
)
def test_stated_mode_reads_the_slot(value: Any, expected: Any) -> None:
    assert stated_mode(value) == expected


# --- life events -------------------------------------------------------------------------------


def bundle(event_id: str, mode: Any) -> str:
    messages, _ = run_action(ActionLifeEvent(), make_tracker({"life_event": event_id, "mode": mode}, intent="life_event"))
    return messages[0]["text"]


def test_a_life_event_from_home_names_what_can_be_done_online_and_what_needs_a_visit(
    module_action_backend: ServiceBackend, catalogue: Catalogue
) -> None:
    for entry in catalogue.life_events:
        event = expect.life_event(module_action_backend.catalogue, entry["id"])
        text = bundle(entry["id"], ONLINE)
        online = [s.service.name for s in event.steps if s.service.online_available]
        visits = [s.service.name for s in event.steps if not s.service.online_available]
        tail = text[text.index("departments.") :]
        if online:
            assert "from home, online" in tail and all(name in tail.split("need a visit")[0] for name in online), entry["id"]
        if visits:
            assert all(name in tail.split("need a visit")[1] for name in visits), entry["id"]
        else:
            assert "You do not need to go to an office" in tail


def test_a_life_event_in_person_names_the_offices_that_offer_the_most_of_it(
    module_action_backend: ServiceBackend, catalogue: Catalogue
) -> None:
    offices = module_action_backend.catalogue.offices()
    for entry in catalogue.life_events:
        wanted = {step["service"] for step in entry["steps"]}
        best = max(len(wanted & set(o.service_ids)) for o in offices)
        first_best = next(o for o in offices if len(wanted & set(o.service_ids)) == best)
        text = bundle(entry["id"], IN_PERSON)
        share = "all of them" if best == len(wanted) else f"{best} of them"
        assert f"You can do {share} in person at " in text and first_best.name in text, entry["id"]
        assert "of these online" not in text
