"""Application status by reference: the backend query on both databases, the status form and its answer."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any, Dict, List, Optional, Tuple

import pytest
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import func, select

from actions.applications import ActionCheckStatus, ValidateStatusForm
from onewindow.backend import ServiceBackend
from onewindow.backend.citizens import normalise_phone
from onewindow.backend.references import normalise_reference
from onewindow.storage import models
from onewindow.storage.db import make_sessionmaker
from onewindow.storage.demo_data import SAMPLE_APPLICATIONS, load_sample_applications
from onewindow.text.dates import spoken_date
from tests import expect
from tests.action_harness import load_domain, make_tracker, run_action, slot_events

SAMPLES = {reference: (service_id, changes) for reference, service_id, _, changes in SAMPLE_APPLICATIONS}
PHONES = {reference: phone for reference, _, phone, _ in SAMPLE_APPLICATIONS}


# --- backend.applications.status ----------------------------------------------------------


def test_sample_applications_have_old_and_new_references_and_an_owner() -> None:
    assert sorted(SAMPLES) == [f"APP-10000{n}" for n in range(1, 6)] + ["APP-48291-37508"]
    assert all(normalise_reference(reference, "application") == reference for reference in SAMPLES)
    assert all(
        expect.present(normalise_phone(phone), f"a phone number in {phone!r}").startswith("0491570") for phone in PHONES.values()
    )


def test_every_sample_application_is_found_with_its_history(module_backend: ServiceBackend) -> None:
    for reference, (service_id, changes) in SAMPLES.items():
        record = module_backend.applications.status(reference)
        assert record is not None, reference
        assert record.reference == reference
        assert record.service_name == expect.service(module_backend.catalogue, service_id).name
        assert record.status == changes[-1][0]
        assert [(c.status, c.note) for c in record.history] == [(s, note) for s, _, note in changes]
        assert record.submitted_at == record.history[0].changed_at


def test_history_is_in_time_order(module_backend: ServiceBackend) -> None:
    record = expect.present(module_backend.applications.status("APP-100001"), "application APP-100001")
    times = [change.changed_at for change in record.history]
    assert len(times) == 4 and times == sorted(times) and times[0] < times[-1]


@pytest.mark.parametrize(
    "said,reference",
    [
        ("app-100002", "APP-100002"),
        ("APP100002", "APP-100002"),
        ("app100002", "APP-100002"),
        ("APP 100002", "APP-100002"),
        (" APP-100002 ", "APP-100002"),
        ("app 4829137508", "APP-48291-37508"),
        ("APP 48291 37508", "APP-48291-37508"),
        ("a.p.p-4829-1375-08", None),
        ("4829137508", "APP-48291-37508"),
    ],
)
def test_reference_case_and_dash_do_not_matter(module_backend: ServiceBackend, said: str, reference: Any) -> None:
    record = module_backend.applications.status(said)
    assert (record.reference if record else None) == reference


@pytest.mark.parametrize("said", ["APP-999999", "APP-100006", "APP-48291-37508x"])
def test_unknown_reference_is_none(module_backend: ServiceBackend, said: str) -> None:
    assert module_backend.applications.status(said) is None


@pytest.mark.parametrize("said", ["", None, "APP-12", "APP-1000011", "BK-100001", "hello", "APP-48291-37580", "APP-48219-37508"])
def test_malformed_reference_is_none(module_backend: ServiceBackend, said: Any) -> None:
    assert module_backend.applications.status(said) is None


def test_loading_samples_again_adds_nothing(module_backend: ServiceBackend) -> None:
    load_sample_applications(module_backend, datetime.now())
    with make_sessionmaker(module_backend.engine)() as session:
        assert session.scalar(select(func.count()).select_from(models.Application)) == len(SAMPLES)
        changes = sum(len(c) for _, c in SAMPLES.values())
        assert session.scalar(select(func.count()).select_from(models.ApplicationStatusChange)) == changes


# --- ValidateStatusForm: the reference, then the proof -------------------------------------------


def validate(
    slot: str, value: Any, slots: Optional[Dict[str, Any]] = None, sender: str = ""
) -> Tuple[Dict[str, Any], List[Dict[str, Any]]]:
    """(slots set, messages) when the status form validates `slot`; each call its own conversation unless `sender` is given."""
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(
        {**(slots or {}), "requested_slot": slot}, active_loop="status_form", sender_id=sender or uuid.uuid4().hex
    )
    method = getattr(ValidateStatusForm(), f"validate_{slot}")
    result = asyncio.run(method(value, dispatcher, tracker, load_domain()))
    return result, dispatcher.messages


def last_four(reference: str) -> str:
    return expect.present(normalise_phone(PHONES[reference]), f"a phone number on {reference}")[-4:]


def test_a_known_reference_alone_shows_nothing_and_asks_for_proof(module_action_backend: ServiceBackend) -> None:
    result, messages = validate("application_reference", "app 100003")
    assert result == {"application_reference": "APP-100003", "record_proof": None}
    assert messages == []


def test_the_last_four_digits_of_the_phone_prove_it(module_action_backend: ServiceBackend) -> None:
    for reference in SAMPLES:
        result, messages = validate("record_proof", last_four(reference), {"application_reference": reference})
        assert result == {"record_proof": last_four(reference)} and messages == [], reference
    result, messages = validate("record_proof", "0000", {"application_reference": "APP-100001"})
    assert result == {"record_proof": None}
    assert messages[0]["text"] == "Those digits do not match the phone number on this application. Please try again."


def test_validate_takes_the_first_of_several_entities(module_action_backend: ServiceBackend) -> None:
    result, _ = validate("application_reference", ["APP-100004", "APP-100001"])
    assert result == {"application_reference": "APP-100004", "record_proof": None}


@pytest.mark.parametrize("said", ["12345", "my application", "APP-12"])
def test_validate_rejects_a_malformed_reference(module_action_backend: ServiceBackend, said: str) -> None:
    result, messages = validate("application_reference", said)
    assert result == {"application_reference": None}
    assert "does not look like an application number" in messages[0]["text"]
    assert "appointment number" not in messages[0]["text"]


def test_validate_catches_a_mistyped_reference(module_action_backend: ServiceBackend) -> None:
    result, messages = validate("application_reference", "APP-48291-37580")
    assert result == {"application_reference": None}
    assert messages[0]["text"].startswith("That number has a mistake")


def test_validate_explains_an_appointment_number_was_given(module_action_backend: ServiceBackend) -> None:
    result, messages = validate("application_reference", "BK-123456")
    assert result == {"application_reference": None}
    assert "That is an appointment number" in messages[0]["text"]


def test_validate_says_an_unknown_reference_was_not_found(module_action_backend: ServiceBackend) -> None:
    result, messages = validate("application_reference", "app-999999")
    assert result == {"application_reference": None}
    assert "could not find application APP-999999" in messages[0]["text"]


# --- ActionCheckStatus ---------------------------------------------------------------------------


def check(reference: Any, proof: Any = None) -> Tuple[str, Dict[str, Any]]:
    tracker = make_tracker({"application_reference": reference, "record_proof": proof}, sender_id=uuid.uuid4().hex)
    messages, events = run_action(ActionCheckStatus(), tracker, load_domain())
    assert len(messages) == 1
    return messages[0]["text"], slot_events(events)


@pytest.mark.parametrize("reference", sorted(SAMPLES))
def test_status_message_has_service_status_date_and_note(module_action_backend: ServiceBackend, reference: str) -> None:
    record = expect.present(module_action_backend.applications.status(reference), f"application {reference}")
    text, slots = check(reference, last_four(reference))
    latest = record.history[-1]
    assert f"Application {reference}, {record.service_name}" in text
    assert f"sent on {spoken_date(record.submitted_at.date())}" in text
    assert f"Its status is: {record.status} since {spoken_date(latest.changed_at.date())}." in text
    if latest.note:
        assert text.endswith(latest.note)
    assert slots == {"application_reference": None, "record_proof": None}


@pytest.mark.parametrize("proof", [None, "refused", "linked", "1234"])
def test_without_proof_the_status_is_not_shown(module_action_backend: ServiceBackend, proof: Any) -> None:
    text, slots = check("APP-100004", proof)
    assert text.startswith("For your security I cannot show or change this application here.")
    assert "business" not in text.lower() and "rejected" not in text
    assert slots == {"application_reference": None, "record_proof": None}


def test_rejected_application_gives_the_reason(module_action_backend: ServiceBackend) -> None:
    _, changes = SAMPLES["APP-100004"]
    text, _ = check("APP-100004", last_four("APP-100004"))
    assert "rejected" in text and expect.present(changes[-1][2], "the reason of the rejection") in text


def test_status_of_unknown_application(module_action_backend: ServiceBackend) -> None:
    text, slots = check("APP-999999", "1234")
    assert text.startswith("For your security")
    assert slots == {"application_reference": None, "record_proof": None}
