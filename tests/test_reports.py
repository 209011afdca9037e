"""Reports of problems in the city: routing to the department, the report form's checks, and the ticket."""

from __future__ import annotations

import asyncio
import re
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions.reports import MAX_TEXT as FORM_MAX_TEXT
from actions.reports import ActionSubmitReport, ValidateReportForm, location_in
from onewindow.backend import ServiceBackend
from onewindow.backend import references as references_module
from onewindow.backend.reports import MAX_TEXT as BACKEND_MAX_TEXT
from onewindow.service_catalogue import Catalogue
from onewindow.storage import models
from onewindow.storage.db import make_sessionmaker
from tests.action_harness import load_domain, make_tracker, run_action, slot_events

REFERENCE = re.compile(r"^RPT-\d{6}$")


def stored(backend: ServiceBackend, reference: str) -> models.Report:
    with make_sessionmaker(backend.engine)() as session:
        return session.scalars(select(models.Report).where(models.Report.reference == reference)).one()


# --- backend.reports.submit ----------------------------------------------------------------


def test_every_category_goes_to_its_department(module_backend: ServiceBackend, catalogue: Catalogue) -> None:
    assert len(catalogue.report_categories) >= 5
    for category in catalogue.report_categories:
        record = module_backend.reports.submit(category["id"], "Elm Street 4", "It is broken", "rest", "sender-a")
        assert record.department == category["department"]
        assert record.category_name == category["name"]
        row = stored(module_backend, record.reference)
        assert (row.category_id, row.department, row.urgent) == (category["id"], category["department"], category["urgent"])


@pytest.mark.parametrize("category_id", ["water_leak", "fallen_tree", "pothole", "noise"])
def test_urgent_flag_comes_from_the_category(module_backend: ServiceBackend, catalogue: Catalogue, category_id: str) -> None:
    urgent = next(c["urgent"] for c in catalogue.report_categories if c["id"] == category_id)
    record = module_backend.reports.submit(category_id, "Mill Lane", "Please help", "rest", "sender-b")
    assert record.urgent is urgent
    assert stored(module_backend, record.reference).urgent is urgent


def test_catalogue_has_urgent_and_ordinary_categories(catalogue: Catalogue) -> None:
    assert {c["urgent"] for c in catalogue.report_categories} == {True, False}


def test_row_keeps_channel_sender_and_open_status(module_backend: ServiceBackend) -> None:
    record = module_backend.reports.submit("graffiti", " Station Road bridge ", " Tags on the wall ", "telegram", "chat-42")
    row = stored(module_backend, record.reference)
    assert (row.channel, row.sender_id, row.status) == ("telegram", "chat-42", "open")
    assert (row.location, row.description) == ("Station Road bridge", "Tags on the wall")


def test_references_look_right_and_are_unique(module_backend: ServiceBackend) -> None:
    references = [module_backend.reports.submit("rubbish", "Park Row", "Bins full", "rest", "s").reference for _ in range(25)]
    assert all(REFERENCE.match(r) for r in references)
    assert len(set(references)) == len(references)


def test_a_reference_already_used_is_never_given_again(module_backend: ServiceBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    first = module_backend.reports.submit("noise", "Quay Street", "Loud music", "rest", "s1").reference
    offered = iter([first, first, "RPT-000017"])
    monkeypatch.setattr(references_module, "new_reference", lambda kind: next(offered))
    second = module_backend.reports.submit("noise", "Quay Street", "Loud music again", "rest", "s2").reference
    assert second == "RPT-000017"
    assert stored(module_backend, first).sender_id == "s1"


def test_long_text_is_truncated(module_backend: ServiceBackend) -> None:
    long_text = "x" * (BACKEND_MAX_TEXT + 500)
    record = module_backend.reports.submit("pothole", long_text, long_text, "rest", "s")
    row = stored(module_backend, record.reference)
    assert len(row.location) == BACKEND_MAX_TEXT and len(row.description) == BACKEND_MAX_TEXT


@pytest.mark.parametrize("category_id", ["dragon", "", "Pothole"])
def test_unknown_category_is_refused(module_backend: ServiceBackend, category_id: str) -> None:
    with pytest.raises(LookupError):
        module_backend.reports.submit(category_id, "Anywhere", "Something", "rest", "s")


# --- ValidateReportForm ------------------------------------------------------------------------


def validate(slot: str, value: Any) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker({"requested_slot": slot}, active_loop="report_form")
    method = getattr(ValidateReportForm(), f"validate_{slot}")
    result = asyncio.run(method(value, dispatcher, tracker, load_domain()))
    return result, dispatcher.messages


@pytest.mark.parametrize(
    ("said", "category_id"),
    [
        ("hole in the road", "pothole"),
        ("Street Light", "street_light"),
        ("burst pipe", "water_leak"),
        ("pothole", "pothole"),
        (["tree down", "noise"], "fallen_tree"),
        ("Broken street light", "street_light"),
    ],
)
def test_category_is_resolved_from_alias_name_or_id(module_action_backend: ServiceBackend, said: Any, category_id: str) -> None:
    result, messages = validate("report_category", said)
    assert result == {"report_category": category_id}
    assert messages == []


@pytest.mark.parametrize("said", ["dragon", "the thing", "passport"])
def test_unknown_category_is_asked_again(module_action_backend: ServiceBackend, said: str) -> None:
    result, messages = validate("report_category", said)
    assert result == {"report_category": None}
    assert "what kind of problem" in messages[0]["text"]


@pytest.mark.parametrize("slot", ["report_location", "report_description"])
@pytest.mark.parametrize("said", ["", "a", " - ! ", "ab"])
def test_too_short_text_is_asked_again(module_action_backend: ServiceBackend, slot: str, said: str) -> None:
    result, messages = validate(slot, said)
    assert result == {slot: None}
    assert len(messages) == 1


@pytest.mark.parametrize("slot", ["report_location", "report_description"])
def test_text_is_tidied(module_action_backend: ServiceBackend, slot: str) -> None:
    result, messages = validate(slot, "  12   Elm\n Street  ")
    assert result == {slot: "12 Elm Street"}
    assert messages == []


@pytest.mark.parametrize("slot", ["report_location", "report_description"])
def test_long_form_text_is_cut(module_action_backend: ServiceBackend, slot: str) -> None:
    result, _ = validate(slot, "word " * 1000)
    assert len(result[slot]) == FORM_MAX_TEXT
    assert result[slot].startswith("word word")


# --- ActionSubmitReport ------------------------------------------------------------------------------


def submit(slots: Dict[str, Any], sender_id: str, channel: str = "rest") -> Tuple[str, List[Dict[str, Any]]]:
    messages, events = run_action(ActionSubmitReport(), make_tracker(slots, sender_id=sender_id, channel=channel), load_domain())
    assert len(messages) == 1
    return messages[0]["text"], events


def test_submit_names_department_and_ticket_and_stores_the_report(
    module_action_backend: ServiceBackend, catalogue: Catalogue
) -> None:
    slots = {"report_category": "pothole", "report_location": "Elm Street 12", "report_description": "Deep hole"}
    text, events = submit(slots, sender_id="citizen-7", channel="telegram")
    department = next(c["department"] for c in catalogue.report_categories if c["id"] == "pothole")
    assert f"has gone to the {department}" in text
    [reference] = re.findall(r"RPT-\d{6}", text)
    row = stored(module_action_backend, reference)
    assert (row.category_id, row.location, row.description) == ("pothole", "Elm Street 12", "Deep hole")
    assert (row.sender_id, row.channel, row.department) == ("citizen-7", "telegram", department)
    assert "urgent" not in text
    assert slot_events(events) == {"report_category": None, "report_location": None, "report_description": None}


def test_submit_urgent_report_says_so(module_action_backend: ServiceBackend) -> None:
    slots = {"report_category": "water_leak", "report_location": "Harbour Street", "report_description": "Water everywhere"}
    messages, _ = run_action(ActionSubmitReport(), make_tracker(slots, sender_id="citizen-8"), load_domain())
    report, handoff = messages  # an urgent report also goes to a person (tests/test_handoff.py)
    [reference] = re.findall(r"RPT-\d{6}", report["text"])
    assert stored(module_action_backend, reference).urgent is True
    assert "marked urgent" in report["text"] and handoff["custom"]["handoff"]["reason"] == "urgent_report"


# --- where the problem is, said before it is asked (actions.reports.location_in) -------------------

STREET_NAMES = st.sampled_from(
    ["cedar", "oak", "maple", "elm", "river", "king", "mill", "church", "green", "high", "queen victoria"]
)
STREET_KINDS = st.sampled_from(
    ["lane", "street", "road", "avenue", "drive", "way", "close", "court", "crescent", "terrace", "st", "rd"]
)
PLACES = st.sampled_from(
    [
        "on {street}",
        "at {n} {street}",
        "on {street} outside number {n}",
        "near number {n} {street}",
        "outside the school on {street}",
        "in front of the library on {street}",
        "opposite {n} {street}",
        "at the corner of {street}",
        "by the bus stop on {street}",
    ]
)
PROBLEMS = st.sampled_from(
    [
        "i want to report a broken street light",
        "there is a pothole",
        "rubbish dumped",
        "report graffiti",
        "a fallen tree",
        "a water leak",
    ]
)
AFTER = st.sampled_from(["", ".", ", it is dangerous", " and it has been there for weeks", "! please fix it", " since monday"])


@given(
    problem=PROBLEMS,
    place=PLACES,
    name=STREET_NAMES,
    kind=STREET_KINDS,
    n=st.sampled_from(["4", "12", "four", "twenty one"]),
    after=AFTER,
)
def test_a_place_said_with_the_problem_is_found_without_what_follows(
    problem: str, place: str, name: str, kind: str, n: str, after: str
) -> None:
    said = place.format(street=f"{name} {kind}", n=n)
    assert location_in(f"{problem} {said}{after}") == said


@given(
    problem=PROBLEMS,
    after=st.sampled_from(
        ["", " at 10 pm", " in the morning", " for 3 weeks", " since monday", " on friday", " in my area", " again"]
    ),
)
def test_a_message_without_a_place_gives_none(problem: str, after: str) -> None:
    assert location_in(problem + after) is None
