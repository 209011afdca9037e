"""The main menu (actions/menu.py): every top task is reachable by choosing, with every choice a button."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

from actions.menu import ActionMainMenu, main_menu_buttons
from actions.shared import TASK_SLOTS
from onewindow.backend import ServiceBackend
from tests import expect
from tests.action_harness import load_domain, make_tracker, run_action, slot_events

PHONE_KEYPAD: Dict[str, Any] = {"sender_id": "phone:0412345678", "metadata": {"input": "keypad", "speech": False}}


def menu(submenu: str = "", **entities: str) -> List[Dict[str, Any]]:
    found = [{"entity": "menu", "value": submenu}] if submenu else []
    found += [{"entity": name, "value": value} for name, value in entities.items()]
    messages, _ = run_action(ActionMainMenu(), make_tracker({}, intent="main_menu", entities=found, **PHONE_KEYPAD))
    return messages


def payloads(messages: List[Dict[str, Any]]) -> List[str]:
    return [b["payload"] for m in messages for b in m.get("buttons") or []]


def entities_of(payload: str) -> Dict[str, Any]:
    _, _, body = payload.partition("{")
    return json.loads("{" + body) if body else {}


def test_the_main_menu_offers_every_top_task(module_action_backend: ServiceBackend) -> None:
    offered = payloads(menu())
    assert [p.split("{")[0] for p in offered] == [
        "/main_menu",
        "/main_menu",
        "/life_event",
        "/main_menu",
        "/check_status",
        "/report_issue",
        "/request_human",
    ]
    assert offered == [b["payload"] for b in main_menu_buttons()]


def test_the_appointments_submenu_books_checks_moves_and_cancels(module_action_backend: ServiceBackend) -> None:
    offered = payloads(menu("appointments"))
    assert offered[:4] == ["/book_appointment", "/check_appointment", "/reschedule_appointment", "/cancel_appointment"]
    assert offered[-1] == "/main_menu"


def test_every_service_is_reached_through_its_department(module_action_backend: ServiceBackend) -> None:
    reached = set()
    for department in [entities_of(p)["department"] for p in payloads(menu("services")) if "department" in p]:
        for payload in payloads(menu("department", department=department)):
            if entities_of(payload).get("menu") == "service":
                reached.add(entities_of(payload)["service"])
    assert reached == {s.id for s in module_action_backend.catalogue.services()}


def test_a_service_chosen_gives_its_documents_fee_and_time(module_action_backend: ServiceBackend) -> None:
    service = expect.service(module_action_backend.catalogue, "passport_renewal")
    messages, events = run_action(
        ActionMainMenu(),
        make_tracker(
            {},
            intent="main_menu",
            entities=[{"entity": "menu", "value": "service"}, {"entity": "service", "value": service.id}],
            **PHONE_KEYPAD,
        ),
    )
    text = messages[0]["text"]
    assert all(document in text for document in service.documents)
    assert "100 dollars" in text and "working days" in text
    assert slot_events(events)["service"] == service.id
    assert '/book_appointment{"service":"passport_renewal"}' in payloads(messages)


def test_offices_and_hours_lists_every_office(module_action_backend: ServiceBackend) -> None:
    offered = payloads(menu("offices"))
    offices = module_action_backend.catalogue.offices()
    assert [entities_of(p)["office"] for p in offered if p.startswith("/ask_opening_hours")] == [o.id for o in offices]


@pytest.mark.parametrize("submenu", ["", "appointments", "services", "offices"])
def test_the_menu_leaves_any_task_under_way(module_action_backend: ServiceBackend, submenu: str) -> None:
    found = [{"entity": "menu", "value": submenu}] if submenu else []
    tracker = make_tracker(
        {"report_category": "pothole", "requested_slot": "report_location"},
        intent="main_menu",
        entities=found,
        active_loop="report_form",
    )
    _, events = run_action(ActionMainMenu(), tracker, load_domain())
    assert any(e["event"] == "active_loop" and e["name"] is None for e in events)
    assert {name: None for name in TASK_SLOTS}.items() <= slot_events(events).items()


def test_an_unknown_department_or_service_falls_back_to_the_departments(module_action_backend: ServiceBackend) -> None:
    for messages in (menu("department", department="Ministry of Silly Walks"), menu("service", service="no_such_service")):
        assert any(entities_of(p).get("menu") == "department" for p in payloads(messages))
