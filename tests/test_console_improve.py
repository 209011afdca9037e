"""Improving the assistant in the real console over HTTP: the misunderstood messages, picking the right
intent (CSRF required), and the corrections exported as NLU data that Rasa's own reader loads."""

from __future__ import annotations

import re
from typing import Dict, Iterator

import httpx
import pytest
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

from console.filters import domain_intents
from tests.console_server import RunningConsole
from tests.tracker_rows import console_with_samples, staff

ROW = re.compile(r'<tr data-event="(\d+)">\s*<td>[^<]*</td>\s*<td class="text">([^<]*)</td>')


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConsole]:
    with console_with_samples(tmp_path_factory.mktemp("console-improve")) as running:
        yield running


def listed(client: httpx.Client, query: str = "") -> Dict[str, int]:
    """The messages on the improve page: shown text -> event id."""
    page = client.get(f"/improve{query}")
    assert page.status_code == 200
    return {text: int(event) for event, text in ROW.findall(page.text)}


def test_the_misunderstood_messages_are_listed_masked_with_every_intent_to_pick(console: RunningConsole) -> None:
    with staff(console, "agent", landing="/improve") as agent:
        page = agent.get("/improve").text
        messages = listed(agent)
    assert set(messages) == {"&lt;script&gt;alert(1)&lt;/script&gt;", "zzz", "my number is •••• 78", "100% sure_thing"}
    assert "<script>alert(1)" not in page and "0412" not in page
    for intent in domain_intents():
        assert f'<option value="{intent}"' in page
    assert "not understood" in page and "low confidence" in page and "last message before a handoff" in page
    with httpx.Client(base_url=console.base_url) as anonymous:
        assert anonymous.get("/improve").status_code in (302, 303)
        assert anonymous.get("/improve/export.yml").status_code in (302, 303)
        assert anonymous.post("/improve/corrections", data={"event_id": "1", "intent": "greet"}).status_code == 401


def test_corrections_are_saved_and_exported_as_nlu_training_data(console: RunningConsole) -> None:
    with staff(console, "agent", landing="/improve") as agent:
        messages = listed(agent)
        number, hostile = messages["my number is •••• 78"], messages["&lt;script&gt;alert(1)&lt;/script&gt;"]
        csrf = agent.csrf_token
        forged = agent.post("/improve/corrections", data={"event_id": str(number), "intent": "inform"})
        unknown = agent.post("/improve/corrections", data={"event_id": str(number), "intent": "drop_tables", "csrf_token": csrf})
        missing = agent.post("/improve/corrections", data={"event_id": "x1", "intent": "inform", "csrf_token": csrf})
        saved = agent.post(
            "/improve/corrections",
            data={"event_id": str(number), "intent": "inform", "csrf_token": csrf, "back": "/improve?page=1"},
        )
        agent.post("/improve/corrections", data={"event_id": str(hostile), "intent": "out_of_scope", "csrf_token": csrf})
        remaining = listed(agent)
        everything = agent.get("/improve?all=1").text
        export = agent.get("/improve/export.yml")
    assert forged.status_code == 403 and unknown.status_code == 400 and missing.status_code == 400
    assert saved.status_code == 303 and saved.headers["location"] == "/improve?page=1"
    assert set(remaining) == {"zzz", "100% sure_thing"}
    assert "saved: inform" in everything and "saved: out_of_scope" in everything
    assert export.status_code == 200 and "attachment" in export.headers["content-disposition"]
    assert export.text.startswith('version: "3.1"\n') and "0412" not in export.text
    data = RasaYAMLReader().reads(export.text)
    assert {(m.get("intent"), m.get("text")) for m in data.intent_examples} == {
        ("inform", "my number is •••• 78"),
        ("out_of_scope", "<script>alert(1)</script>"),
    }


def test_the_page_parameter_is_checked(console: RunningConsole) -> None:
    with staff(console, "agent", landing="/improve") as agent:
        assert agent.get("/improve?page=abc").status_code == 400
        assert listed(agent, "?page=5") == {}
