"""Answers that fit what the citizen asked, over the REST channel with the real model, servers and database:
benefit amounts, stated constraints (in person, from home) and references to what the assistant just listed."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Dict, List

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.stack import Stack
from onewindow.backend import ServiceBackend
from onewindow.service_catalogue import Catalogue
from tests import expect

pytestmark = pytest.mark.stack
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth"]
PERIODS = {"week": "a week", "month": "a month", "year": "a year", "once": "as one payment"}
senders = (f"fit-{number}" for number in itertools.count())


@pytest.fixture(scope="module")
def backend(stack: Stack) -> ServiceBackend:
    return ServiceBackend.from_url(stack.database_url)


def text_of(messages: List[Dict[str, Any]]) -> str:
    return " ".join(m.get("text") or "" for m in messages)


def service_entry(catalogue: Catalogue, service_id: str) -> Dict[str, Any]:
    return next(s for s in catalogue.services if s["id"] == service_id)


# --- benefit amounts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "said, service_id",
    [
        ("how much is child benefit per month", "child_benefit"),
        ("how much money will I get from the unemployment benefit", "unemployment_benefit"),
        ("what is the amount of the funeral grant", "funeral_subsidy"),
    ],
)
def test_how_much_do_i_get_is_the_amount_the_benefit_pays(stack: Stack, catalogue: Catalogue, said: str, service_id: str) -> None:
    entry = service_entry(catalogue, service_id)
    benefit = entry["benefit"]
    most = "up to " if benefit.get("up_to") else ""
    answer = text_of(stack.say(next(senders), said))
    assert f"{entry['name']} pays {most}{benefit['amount']:g} dollars {PERIODS[benefit['period']]}" in answer, answer
    assert f"{entry['name']} is free" not in answer


def test_how_much_does_a_paid_service_cost_is_still_its_fee(stack: Stack, catalogue: Catalogue) -> None:
    answer = text_of(stack.say(next(senders), "how much does a passport renewal cost"))
    assert f"costs {service_entry(catalogue, 'passport_renewal')['fee']:g} dollars" in answer, answer


# --- stated constraints ---------------------------------------------------------------------------


def test_must_go_to_the_office_gets_where_to_go_not_the_online_answer(stack: Stack, backend: ServiceBackend) -> None:
    answer = stack.say(next(senders), "wife say i must go to office for the pension money")
    text = text_of(answer)
    offices = backend.catalogue.offices(service_id="pension_application")
    assert "These offices offer it" in text and offices[0].name in text, text
    assert "fully online" not in text
    service = expect.service(backend.catalogue, "pension_application")
    assert all(document in text for document in service.documents)


def test_cannot_leave_the_house_gets_the_way_from_home(stack: Stack, backend: ServiceBackend) -> None:
    for service_id, said in (
        ("child_benefit", "I can't leave the house, how do I get the child benefit"),
        ("death_registration", "i am housebound, can i register a death from home"),
    ):
        service = expect.service(backend.catalogue, service_id)
        text = text_of(stack.say(next(senders), said))
        if service.online_available:
            assert f"from home, online, at the {service.online_where}" in text, text
        else:
            assert f"{service.name} cannot be done online or from home" in text, text


# --- references to what was just listed ---------------------------------------------------------


def test_the_rent_one_and_the_unemployment_money_after_losing_a_job(stack: Stack, backend: ServiceBackend) -> None:
    sender = next(senders)
    listed = text_of(stack.say(sender, "I lost my job"))
    assert "Rent subsidy" in listed and "Unemployment benefit" in listed
    rent = text_of(stack.say(sender, "the rent one, how do I get it"))
    assert rent.startswith("Rent subsidy."), rent
    unemployment = expect.service(backend.catalogue, "unemployment_benefit")
    online = text_of(stack.say(sender, "ok and the unemployment money, can I do that from home?"))
    expected = (
        f"from home, online, at the {unemployment.online_where}"
        if unemployment.online_available
        else "Unemployment benefit cannot be done online or from home"
    )
    assert expected in online, online
    where = text_of(stack.say(sender, "and where do I go for the rent one"))
    assert where.startswith("Offices for rent subsidy: 1. "), where


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_an_ordinal_after_a_life_event_gets_that_service(
    stack: Stack, backend: ServiceBackend, catalogue: Catalogue, data: st.DataObject
) -> None:
    sender = next(senders)
    menu = stack.say(sender, "I have a life event")
    offered = {b["payload"]: b for m in menu for b in m.get("buttons") or [] if '"life_event"' in b["payload"]}
    assert offered, text_of(menu)
    payload = data.draw(st.sampled_from(sorted(offered)))
    event = next(e for e in catalogue.life_events if f'"life_event":"{e["id"]}"' in payload)
    position = data.draw(st.integers(1, len(event["steps"])))
    said = data.draw(
        st.sampled_from(
            [f"the {ORDINALS[position - 1]} one", f"what about the {ORDINALS[position - 1]} one", f"number {position}"]
        )
    )
    listed = text_of(stack.say(sender, payload))
    assert event["summary"] in listed, listed
    text = text_of(stack.say(sender, said))
    service = expect.service(backend.catalogue, event["steps"][position - 1]["service"])
    assert text.startswith(service.name), (event["id"], said, text)


def synonyms(path: Path) -> Dict[str, List[str]]:
    """The NLU data's synonyms: value -> the phrases that mean it."""
    from ruamel.yaml import YAML

    blocks = YAML(typ="safe").load(path.read_text()).get("nlu", [])
    return {
        b["synonym"]: [line[2:].strip() for line in b["examples"].splitlines() if line.strip().startswith("- ")]
        for b in blocks
        if "synonym" in b
    }


MODE_PHRASES = [
    (phrase, value)
    for value, phrases in synonyms(Path(__file__).parent.parent / "nlu" / "services.yml").items()
    if value in ("in_person", "online")
    for phrase in phrases
]
TEMPLATES = [
    "I want to do the {service} {mode}",
    "my daughter says I have to do it {mode}, it is for the {service}",
    "{mode} please, for the {service}",
    "can I sort out the {service} {mode}?",
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_constraint_phrase_is_read_with_any_service(stack: Stack, catalogue: Catalogue, data: st.DataObject) -> None:
    phrase, value = data.draw(st.sampled_from(MODE_PHRASES))
    service = data.draw(st.sampled_from(catalogue.services))
    alias = data.draw(st.sampled_from(service["aliases"]))
    text = data.draw(st.sampled_from(TEMPLATES)).format(service=alias, mode=phrase)
    parsed = stack.api_post("/model/parse", {"text": text})
    modes = [e["value"] for e in parsed["entities"] if e["entity"] == "mode"]
    assert modes == [value], (text, parsed["entities"])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_how_much_is_any_benefit_per_period_says_what_it_pays(stack: Stack, catalogue: Catalogue, data: st.DataObject) -> None:
    entry = data.draw(st.sampled_from([s for s in catalogue.services if s.get("benefit")]))
    alias = data.draw(st.sampled_from(entry["aliases"]))
    asked = data.draw(
        st.sampled_from(
            ["how much is {} per month", "how much do I get from the {}", "what does the {} pay", "how much money is the {}"]
        )
    ).format(alias)
    answer = text_of(stack.say(next(senders), asked))
    benefit = entry["benefit"]
    assert f"{benefit['amount']:g} dollars {PERIODS[benefit['period']]}" in answer, (asked, answer)
