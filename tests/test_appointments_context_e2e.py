"""A choice the citizen settled earlier in the conversation is not asked again when booking, over REST
against the real Rasa server, action server, model and database; offices and services are drawn from the catalogue.
"""

from __future__ import annotations

import itertools
import os
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.stack import Stack
from onewindow.backend import ServiceBackend
from onewindow.backend.records import OfficeRecord
from onewindow.service_catalogue import Catalogue

pytestmark = pytest.mark.stack
senders = itertools.count(1)
EXAMPLES = int(os.environ.get("ONEWINDOW_FUZZ_EXAMPLES", "80")) // 6


@pytest.fixture(scope="module")
def backend(stack: Stack) -> ServiceBackend:
    return ServiceBackend.from_url(stack.database_url)


@pytest.fixture(scope="module")
def bookable(backend: ServiceBackend, catalogue: Catalogue) -> List[Tuple[str, str, List[OfficeRecord]]]:
    """(service id, how citizens name it, the offices offering it) for every bookable service of the catalogue."""
    offices = backend.catalogue.offices()
    return [
        (entry["id"], entry["aliases"][0], [o for o in offices if entry["id"] in o.service_ids])
        for entry in catalogue.services
        if entry.get("bookable")
    ]


def texts(messages: List[Dict[str, Any]]) -> str:
    return " ".join(m.get("text", "") for m in messages if m.get("text"))


def press(stack: Stack, sender: str, messages: List[Dict[str, Any]], payload_part: str) -> List[Dict[str, Any]]:
    """Press the button the assistant offered whose payload contains `payload_part`."""
    offered = [b["payload"] for m in messages for b in m.get("buttons") or [] if payload_part in b["payload"]]
    assert offered, f"no button with {payload_part!r} in {messages}"
    return stack.say(sender, offered[0])


def slots(stack: Stack, sender: str) -> Dict[str, Any]:
    return stack.tracker(sender)["slots"]


def settle_office(stack: Stack, sender: str, how: str, office: OfficeRecord, service: str) -> None:
    """The citizen settles on `office` one way or another before booking (`service` is in context for some)."""
    if how == "opening hours":
        answer = stack.say(sender, f"what are the opening hours of the {office.name}")
    elif how == "where":
        answer = stack.say(sender, f"where is the {office.name}")
    elif how == "nearest":
        stack.say(sender, f"what documents do I need for a {service}")
        answer = stack.say(
            sender, "find the nearest office", {"location": {"latitude": office.latitude, "longitude": office.longitude}}
        )
    else:  # chosen from the list of offices for the service
        answer = press(stack, sender, stack.say(sender, f"which offices offer {service}"), f'"office":"{office.id}"')
    assert office.name in texts(answer), (how, texts(answer))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize="ONEWINDOW_FUZZ_RANDOM" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), how=st.sampled_from(["opening hours", "where", "nearest", "list", "in the request"]))
def test_an_office_settled_earlier_is_not_asked_again_when_booking(
    stack: Stack, bookable: List[Tuple[str, str, List[OfficeRecord]]], data: st.DataObject, how: str
) -> None:
    service_id, service, offices = data.draw(st.sampled_from([b for b in bookable if b[2]]), label="service")
    if how == "nearest":  # the nearest office to where it stands is itself, when no other stands there too
        offices = [
            o
            for o in offices
            if o.latitude is not None and sum((p.latitude, p.longitude) == (o.latitude, o.longitude) for p in offices) == 1
        ]
    office = data.draw(st.sampled_from(offices), label="office")
    sender = f"settled-{next(senders)}"
    if how == "in the request":
        answer = stack.say(sender, f"book an appointment for a {service} at the {office.name}")
    else:
        settle_office(stack, sender, how, office, service)
        answer = stack.say(
            sender, "book an appointment" if how in ("nearest", "list") else f"book an appointment for a {service}"
        )
    assert "Which office" not in texts(answer) and "Which day" in texts(answer), texts(answer)
    assert f"I will book it at the {office.name}. To use another office" in texts(
        answer
    )  # where it books, and that this can change
    assert (slots(stack, sender)["office"], slots(stack, sender)["service"]) == (office.id, service_id)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize="ONEWINDOW_FUZZ_RANDOM" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data(), question=st.sampled_from(["what documents do I need for a {}", "how long does a {} take"]))
def test_a_service_settled_earlier_is_not_asked_again_when_booking(
    stack: Stack, bookable: List[Tuple[str, str, List[OfficeRecord]]], data: st.DataObject, question: str
) -> None:
    service_id, service, _ = data.draw(st.sampled_from(bookable), label="service")
    sender = f"settled-{next(senders)}"
    stack.say(sender, question.format(service))
    answer = stack.say(sender, "book an appointment for it")
    assert "Which service" not in texts(answer) and "Which office" in texts(answer), texts(answer)
    assert slots(stack, sender)["service"] == service_id


def test_an_office_that_does_not_offer_the_service_is_said_and_asked_for(
    stack: Stack, backend: ServiceBackend, bookable: List[Tuple[str, str, List[OfficeRecord]]]
) -> None:
    offices = backend.catalogue.offices()
    service_id, service, offering = next((b for b in bookable if len(b[2]) < len(offices)))
    elsewhere = next(o for o in offices if o.id not in {p.id for p in offering})
    sender = f"settled-{next(senders)}"
    stack.say(sender, f"where is the {elsewhere.name}")
    assert slots(stack, sender)["office"] == elsewhere.id
    answer = texts(stack.say(sender, f"book an appointment for a {service}"))
    assert f"The {elsewhere.name} does not offer" in answer and "Which office" in answer
    assert slots(stack, sender)["service"] == service_id and slots(stack, sender)["office"] is None


def test_the_settled_office_can_be_changed_by_naming_another(stack: Stack) -> None:
    sender = f"settled-{next(senders)}"
    stack.say(sender, "where is the north service centre")
    assert "I will book it at the North Service Centre." in texts(stack.say(sender, "book an appointment for a passport renewal"))
    answer = texts(stack.say(sender, "at the east service centre instead"))
    assert "I will book it at the East Service Centre." in answer and "Which day" in answer
    assert slots(stack, sender)["office"] == "east_centre"


def test_a_district_with_several_offices_is_one_question_not_two(stack: Stack) -> None:
    sender = f"settled-{next(senders)}"
    assert "Which office" in texts(stack.say(sender, "I want to book an appointment for a passport renewal"))
    answer = stack.say(sender, "the north district")
    questions = [m for m in answer if m.get("buttons")]
    assert [m["text"] for m in questions] == ["Which of these offices?"], texts(answer)
    assert sorted(b["payload"] for b in questions[0]["buttons"]) == [
        '/inform{"office":"immigration_office"}',
        '/inform{"office":"north_centre"}',
    ]
