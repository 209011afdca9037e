"""Service questions (what, documents, fee, time, online) answered from the database by ActionAnswerServiceQuestion."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple

import pytest
from rasa_sdk import Tracker

from actions.services import POPULAR, ActionAnswerServiceQuestion
from onewindow import settings
from onewindow.__main__ import seed
from onewindow.backend import ServiceBackend
from onewindow.backend.catalogue import CatalogueQueries
from onewindow.backend.records import ServiceRecord
from onewindow.service_catalogue import Catalogue
from onewindow.storage.db import make_engine, make_sessionmaker
from tests import expect
from tests.action_harness import load_domain, make_tracker, run_action, slot_events
from tests.conftest import point_actions_at

ASPECT_INTENTS = ("ask_service_info", "ask_documents", "ask_fee", "ask_benefit_amount", "ask_processing_time", "ask_online")
PERIODS = {"week": "a week", "month": "a month", "year": "a year", "once": "as one payment"}


@pytest.fixture
def fresh_actions_db(seeded_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServiceBackend]:
    """The actions' backend on a database of its own, for tests that re-seed the catalogue."""
    yield from point_actions_at(seeded_url, monkeypatch)


def tracker(slots: Dict[str, Any], intent: str, **kwargs: Any) -> Tracker:
    """A tracker as Rasa sends it: the latest message also carries its intent ranking."""
    made = make_tracker(slots, intent=intent, **kwargs)
    made.latest_message["intent_ranking"] = [{"name": intent, "confidence": 0.99}]
    return made


def ask(slots: Dict[str, Any], intent: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Run the action; return the one message it sent and the slots it set."""
    messages, events = run_action(ActionAnswerServiceQuestion(), tracker(slots, intent), load_domain())
    assert len(messages) == 1
    return messages[0], slot_events(events)


def payload(button: Dict[str, str]) -> Tuple[str, Dict[str, Any]]:
    """'/ask_fee{"service":"x"}' -> ("ask_fee", {"service": "x"})."""
    text = button["payload"]
    assert text.startswith("/")
    intent, _, entities = text[1:].partition("{")
    return intent, json.loads("{" + entities) if entities else {}


def fee_words(service: ServiceRecord) -> str:
    return "free" if service.fee == 0 else f"{service.fee:g} dollars"


# --- each aspect, from the database -----------------------------------------------------


def test_documents_lists_every_document_of_the_service(module_action_backend: ServiceBackend) -> None:
    service = expect.service(module_action_backend.catalogue, "passport_renewal")
    message, slots = ask({"service": "renew my passport"}, "ask_documents")
    assert len(service.documents) >= 2
    for document in service.documents:
        assert document in message["text"]
    assert f"{len(service.documents)} things" in message["text"]
    assert slots == {"question": None, "service": "passport_renewal"}


@pytest.mark.parametrize("service_id", ["birth_registration", "death_registration", "business_licence", "pension_application"])
def test_documents_for_other_services(module_action_backend: ServiceBackend, service_id: str) -> None:
    service = expect.service(module_action_backend.catalogue, service_id)
    message, _ = ask({"service": service_id}, "ask_documents")
    assert all(document in message["text"] for document in service.documents)
    visit = "one visit is enough" if service.one_visit else "come back once"
    assert visit in message["text"]


@pytest.mark.parametrize("service_id", ["passport_renewal", "birth_registration", "business_licence"])
def test_fee_in_dollars_or_free(module_action_backend: ServiceBackend, service_id: str) -> None:
    service = expect.service(module_action_backend.catalogue, service_id)
    message, _ = ask({"service": service_id}, "ask_fee")
    assert f"{service.name} {'is' if service.fee == 0 else 'costs'} {fee_words(service)}" in message["text"]
    if service.fee_note:
        assert service.fee_note in message["text"]


# --- what a benefit pays ("how much do I get") and what it costs -----------------------------


def pays_words(benefit: Dict[str, Any]) -> str:
    """What the catalogue's benefit field says, as the answer must word it."""
    most = "up to " if benefit.get("up_to") else ""
    return f"pays {most}{benefit['amount']:g} dollars {PERIODS[benefit['period']]}. {benefit['basis']}"


def test_every_service_answers_how_much_you_get_from_its_catalogue_entry(
    module_action_backend: ServiceBackend, catalogue: Catalogue
) -> None:
    for entry in catalogue.services:
        service = expect.service(module_action_backend.catalogue, entry["id"])
        message, slots = ask({"service": entry["id"]}, "ask_benefit_amount")
        if entry.get("benefit"):
            assert message["text"].startswith(f"{service.name} {pays_words(entry['benefit'])}"), entry["id"]
            assert "free to apply" in message["text"] if entry["fee"] == 0 else fee_words(service) in message["text"]
            assert "not a payment" not in message["text"]
        else:
            assert message["text"].startswith(f"{service.name} is not a payment"), entry["id"]
            assert f"{service.name} {'is' if service.fee == 0 else 'costs'} {fee_words(service)}" in message["text"]
        assert slots == {"question": None, "service": entry["id"]}


def test_a_benefit_asked_what_it_costs_is_free_to_apply_and_says_what_it_pays(
    module_action_backend: ServiceBackend, catalogue: Catalogue
) -> None:
    benefits = [e for e in catalogue.services if e.get("benefit") and e["fee"] == 0]
    assert len(benefits) >= 10
    for entry in benefits:
        message, _ = ask({"service": entry["id"]}, "ask_fee")
        assert message["text"].startswith(f"It is free to apply for {entry['name'].lower()}."), entry["id"]
        assert pays_words(entry["benefit"]) in message["text"]
        assert f"{entry['name']} is free" not in message["text"], "a benefit is not 'free': it pays"


def test_money_follow_up_is_how_much_you_get_for_a_benefit_and_the_cost_otherwise(
    module_action_backend: ServiceBackend,
) -> None:
    for service_id, money_intent in (("child_benefit", "ask_benefit_amount"), ("passport_renewal", "ask_fee")):
        message, _ = ask({"service": service_id}, "ask_documents")
        intents = [payload(b)[0] for b in message["buttons"]]
        assert money_intent in intents and {"ask_fee", "ask_benefit_amount"} - {money_intent} - set(intents)


def test_changed_amount_in_catalogue_changes_the_answer(
    fresh_actions_db: ServiceBackend, seeded_url: str, tmp_path: Path
) -> None:
    before, _ = ask({"service": "child_benefit"}, "ask_benefit_amount")
    assert "pays 150 dollars a month" in before["text"]
    seed(seeded_url, folder=_catalogue_with_fee(tmp_path / "cat", "child_benefit", "amount: 150\n", "amount: 162.5\n"))
    fresh_actions_db.catalogue.refresh()
    after, _ = ask({"service": "child_benefit"}, "ask_benefit_amount")
    assert "pays 162.5 dollars a month" in after["text"] and "150" not in after["text"]


def test_catalogue_has_both_free_and_paid_services(module_action_backend: ServiceBackend) -> None:
    fees = {s.fee for s in module_action_backend.catalogue.services()}
    assert 0 in fees and any(fee > 0 for fee in fees)


@pytest.mark.parametrize("service_id", ["passport_renewal", "birth_registration", "unemployment_benefit"])
def test_processing_time(module_action_backend: ServiceBackend, service_id: str) -> None:
    service = expect.service(module_action_backend.catalogue, service_id)
    message, _ = ask({"service": service_id}, "ask_processing_time")
    days = service.processing_days
    expected = "the same day" if days == 0 else "one working day" if days == 1 else f"about {days} working days"
    assert message["text"] == f"{service.name} takes {expected}."


def test_online_when_available_says_where(module_action_backend: ServiceBackend) -> None:
    online = [s for s in module_action_backend.catalogue.services() if s.online_available]
    assert online
    service = online[0]
    message, _ = ask({"service": service.id}, "ask_online")
    assert service.online_where and service.online_where in message["text"]
    assert "fully online" in message["text"] and "cannot" not in message["text"]


def test_online_when_not_available_says_go_to_an_office(module_action_backend: ServiceBackend) -> None:
    offline = [s for s in module_action_backend.catalogue.services() if not s.online_available]
    assert offline
    message, _ = ask({"service": offline[0].id}, "ask_online")
    assert "cannot be done fully online" in message["text"]


def test_service_info_gives_the_overview(module_action_backend: ServiceBackend) -> None:
    service = expect.service(module_action_backend.catalogue, "birth_registration")
    message, slots = ask({"service": "register a birth"}, "ask_service_info")
    for part in (service.name, service.description, service.eligibility, fee_words(service)):
        assert part in message["text"]
    assert slots["service"] == "birth_registration"


@pytest.mark.parametrize("intent", ASPECT_INTENTS)
def test_follow_up_buttons_keep_the_service_and_skip_the_question_just_answered(
    module_action_backend: ServiceBackend, intent: str
) -> None:
    message, _ = ask({"service": "passport_renewal"}, intent)
    buttons = [payload(b) for b in message["buttons"]]
    assert buttons and all(entities == {"service": "passport_renewal"} for _, entities in buttons)
    assert intent not in [i for i, _ in buttons]
    assert "book_appointment" in [i for i, _ in buttons]  # passport renewal is bookable


def test_no_book_button_for_a_service_that_cannot_be_booked(module_action_backend: ServiceBackend) -> None:
    unbookable = [s for s in module_action_backend.catalogue.services() if not s.bookable]
    if not unbookable:
        pytest.skip("every service in the catalogue is bookable")
    message, _ = ask({"service": unbookable[0].id}, "ask_fee")
    assert "book_appointment" not in [payload(b)[0] for b in message["buttons"]]


# --- ambiguity, missing service, carry-over -------------------------------------------------


@pytest.mark.parametrize("intent", ASPECT_INTENTS)
def test_ambiguous_passport_asks_which_with_same_intent(module_action_backend: ServiceBackend, intent: str) -> None:
    candidates = module_action_backend.catalogue.resolve("service", "passport")
    assert len(candidates) >= 2
    message, slots = ask({"service": "passport"}, intent)
    assert message["text"].startswith("Do you mean")
    names = [expect.service(module_action_backend.catalogue, c).name for c in candidates]
    assert all(name in message["text"] for name in names)
    buttons = [payload(b) for b in message["buttons"]]
    assert sorted(e["service"] for _, e in buttons) == sorted(candidates)
    assert {i for i, _ in buttons} == {intent}
    assert slots == {"question": intent, "service": None}


def test_no_service_asks_which_and_remembers_the_question(module_action_backend: ServiceBackend) -> None:
    message, slots = ask({}, "ask_fee")
    assert "Which service" in message["text"]
    buttons = [payload(b) for b in message["buttons"]]
    assert [e["service"] for _, e in buttons[:-1]] == POPULAR
    assert {i for i, _ in buttons[:-1]} == {"ask_fee"}
    assert buttons[-1] == ("main_menu", {"menu": "services"}), "every other service through its department"
    assert slots == {"question": "ask_fee", "service": None}


def test_unknown_service_says_so(module_action_backend: ServiceBackend) -> None:
    message, slots = ask({"service": "dragon licence"}, "ask_documents")
    assert "do not know a service called dragon licence" in message["text"]
    assert slots["question"] == "ask_documents"


def test_inform_with_service_answers_the_pending_question(module_action_backend: ServiceBackend) -> None:
    _, first = ask({}, "ask_fee")
    service = expect.service(module_action_backend.catalogue, "passport_renewal")
    message, slots = ask({"question": first["question"], "service": "renew my passport"}, "inform")
    assert message["text"].startswith(f"{service.name} costs {fee_words(service)}")
    assert slots == {"question": None, "service": "passport_renewal"}


def test_inform_after_ambiguity_answers_the_pending_question(module_action_backend: ServiceBackend) -> None:
    _, first = ask({"service": "passport"}, "ask_documents")
    service = expect.service(module_action_backend.catalogue, "passport_new")
    message, _ = ask({"question": first["question"], "service": "passport_new"}, "inform")
    assert all(document in message["text"] for document in service.documents)


def test_service_in_context_answers_follow_up_without_entity(module_action_backend: ServiceBackend) -> None:
    """ "How much is it?" after talking about passport renewal: the slot is still set, no entity."""
    service = expect.service(module_action_backend.catalogue, "passport_renewal")
    messages, events = run_action(
        ActionAnswerServiceQuestion(),
        tracker({"service": "passport_renewal"}, "ask_fee", text="how much is it?"),
        load_domain(),
    )
    assert messages[0]["text"].startswith(f"{service.name} costs {fee_words(service)}")
    assert slot_events(events)["service"] == "passport_renewal"


def test_inform_without_pending_question_gives_the_overview(module_action_backend: ServiceBackend) -> None:
    service = expect.service(module_action_backend.catalogue, "child_benefit")
    message, _ = ask({"service": "child benefit"}, "inform")
    assert service.description in message["text"]


# --- the answer comes from the database ---------------------------------------------------------


def _catalogue_with_fee(folder: Path, service_id: str, old: str, new: str) -> Path:
    shutil.copytree(settings.PROJECT_ROOT / "catalogue", folder)
    path = folder / "services.yml"
    text = path.read_text(encoding="utf-8")
    start = text.index(f"- id: {service_id}\n")
    position = text.index(old, start)
    path.write_text(text[:position] + new + text[position + len(old) :], encoding="utf-8")
    return folder


def test_changed_fee_in_catalogue_changes_the_answer(fresh_actions_db: ServiceBackend, seeded_url: str, tmp_path: Path) -> None:
    before, _ = ask({"service": "passport_renewal"}, "ask_fee")
    assert "costs 100 dollars" in before["text"]
    seed(seeded_url, folder=_catalogue_with_fee(tmp_path / "cat", "passport_renewal", "fee: 100\n", "fee: 137.5\n"))
    fresh_actions_db.catalogue.refresh()  # what the running server does when its copy is older than the TTL
    after, _ = ask({"service": "passport_renewal"}, "ask_fee")
    assert "costs 137.5 dollars" in after["text"]
    assert "100 dollars" not in after["text"]


def test_service_made_free_in_catalogue_is_answered_as_free(
    fresh_actions_db: ServiceBackend, seeded_url: str, tmp_path: Path
) -> None:
    seed(seeded_url, folder=_catalogue_with_fee(tmp_path / "cat", "passport_renewal", "fee: 100\n", "fee: 0\n"))
    fresh_actions_db.catalogue.refresh()
    message, _ = ask({"service": "passport_renewal"}, "ask_fee")
    assert message["text"].startswith("Passport renewal or replacement is free.")


def test_a_running_backend_sees_a_reseeded_catalogue_once_its_copy_expires(seeded_url: str, tmp_path: Path) -> None:
    engine = make_engine(seeded_url)
    now = [0.0]
    catalogue = CatalogueQueries(make_sessionmaker(engine), ttl_seconds=30, clock=lambda: now[0])
    assert expect.service(catalogue, "passport_renewal").fee == 100
    seed(seeded_url, folder=_catalogue_with_fee(tmp_path / "cat", "passport_renewal", "fee: 100\n", "fee: 90\n"))
    now[0] = 29.0
    assert expect.service(catalogue, "passport_renewal").fee == 100, "the in-memory copy is kept within its TTL"
    now[0] = 31.0
    assert expect.service(catalogue, "passport_renewal").fee == 90
    engine.dispose()
