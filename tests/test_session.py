"""action_session_start (actions/session.py): Rasa's session start, plus the hold of a conversation a person still has.

Real database (SQLite and PostgreSQL), real rasa-sdk Tracker objects built from real Rasa trackers the way
the action server receives them, and Rasa's own default session start as the reference.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
from rasa.core.actions.action import ActionSessionStart as RasaSessionStart
from rasa.core.actions.action import RemoteAction, action_for_name_or_text
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import Event
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa.utils.endpoints import EndpointConfig
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import delete

from actions.session import ActionSessionStart
from onewindow.backend import ServiceBackend
from onewindow.storage import models
from onewindow.storage.db import make_sessionmaker
from tests.action_harness import load_domain
from tests.conftest import point_actions_at

SUMMARY: Dict[str, Any] = {"intents": [], "slots": {}, "last_turns": []}
PREVIOUS_SESSION: List[Dict[str, Any]] = [
    {"event": "action", "name": "action_session_start"},
    {"event": "session_started"},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "I want to talk to a person", "parse_data": {"intent": {"name": "request_human"}}},
    {"event": "action", "name": "action_request_human"},
    {"event": "slot", "name": "handoff_active", "value": True},
    {"event": "slot", "name": "service", "value": "passport_renewal", "metadata": {"source": "test"}},
    {"event": "action", "name": "action_listen"},
]


@pytest.fixture
def actions_db(module_action_backend: ServiceBackend) -> ServiceBackend:
    """The actions' backend on the module's database, with no handoffs yet."""
    with make_sessionmaker(module_action_backend.engine).begin() as session:
        session.execute(delete(models.HandoffMessage))
        session.execute(delete(models.HandoffRequest))
    return module_action_backend


@pytest.fixture
def unreadable_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServiceBackend]:
    """The actions' backend on a database without the service's tables."""
    yield from point_actions_at(f"sqlite:///{tmp_path / 'no-tables.db'}", monkeypatch)


def domain(carry_over_slots: bool = False) -> Domain:
    """The real domain.yml, with slots carried over to a new session or not."""
    loaded = load_domain()
    session_config = {**loaded["session_config"], "carry_over_slots_to_new_session": carry_over_slots}
    return Domain.from_dict({**loaded, "session_config": session_config})


def rasa_tracker(sender_id: str, events: List[Dict[str, Any]], of: Domain) -> DialogueStateTracker:
    return DialogueStateTracker.from_events(sender_id, [Event.from_parameters(e) for e in events], of.slots)


def session_start(
    sender_id: str, events: List[Dict[str, Any]] = PREVIOUS_SESSION, of: Optional[Domain] = None
) -> List[Dict[str, Any]]:
    """Our action's events, run on what Rasa sends the action server (tracker and domain as dicts), read back by Rasa."""
    of = of or domain()
    state = rasa_tracker(sender_id, events, of).current_state(EventVerbosity.ALL)
    returned = asyncio.run(ActionSessionStart().run(CollectingDispatcher(), Tracker.from_dict(state), of.as_dict()))
    return [without_timestamp(Event.from_parameters(e).as_dict()) for e in returned]


def rasa_default(sender_id: str, events: List[Dict[str, Any]], of: Domain) -> List[Dict[str, Any]]:
    """The events of Rasa's own `action_session_start` on the same tracker."""
    # Rasa's default uses neither the output channel nor the NLG
    returned = asyncio.run(RasaSessionStart().run(None, None, rasa_tracker(sender_id, events, of), of))
    return [without_timestamp(e.as_dict()) for e in returned]


def without_timestamp(event: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v for k, v in event.items() if k != "timestamp"}


def hold_slot(events: List[Dict[str, Any]]) -> List[Any]:
    return [e["value"] for e in events if e["event"] == "slot" and e["name"] == "handoff_active"]


@pytest.mark.parametrize("carry_over_slots", [False, True])
def test_without_a_handoff_the_session_starts_exactly_as_rasas_default(
    actions_db: ServiceBackend, carry_over_slots: bool
) -> None:
    of = domain(carry_over_slots)
    ours = session_start("nobody-waiting", of=of)
    assert ours == rasa_default("nobody-waiting", PREVIOUS_SESSION, of)
    assert ours[0]["event"] == "session_started" and ours[-1] == {**ours[-1], "event": "action", "name": "action_listen"}
    carried = {(e["name"], e["value"], str(e.get("metadata"))) for e in ours if e["event"] == "slot"}
    if carry_over_slots:
        assert ("service", "passport_renewal", str({"source": "test"})) in carried, "slots and their metadata carried over"
    else:
        assert carried == set(), "domain.yml: carry_over_slots_to_new_session is false"


def test_a_new_session_keeps_the_hold_while_the_handoff_is_open(actions_db: ServiceBackend) -> None:
    assert hold_slot(session_start("x")) == [], "nothing open for this conversation"
    actions_db.handoffs.request("x", "rest", "citizen_request", SUMMARY)
    events = session_start("x")
    assert [e["event"] for e in events] == ["session_started", "slot", "action"]
    assert hold_slot(events) == [True] and events[-1]["name"] == "action_listen"
    assert hold_slot(session_start("someone-else")) == [], "only this conversation's handoffs count"


def test_a_claimed_handoff_keeps_the_hold_and_a_closed_one_does_not(actions_db: ServiceBackend) -> None:
    reference = actions_db.handoffs.request("y", "rest", "citizen_request", SUMMARY).reference
    actions_db.handoffs.claim(reference, "maria")
    assert hold_slot(session_start("y")) == [True], "a person is on it"
    actions_db.handoffs.close(reference, "maria", "returned")
    assert hold_slot(session_start("y")) == [], "handed back to the assistant"


def test_the_hold_is_set_after_slots_carried_over(actions_db: ServiceBackend) -> None:
    """With slots carried over, the database has the last word on the hold (the slot set last wins)."""
    actions_db.handoffs.request("z", "rest", "citizen_request", SUMMARY)
    events = session_start("z", [*PREVIOUS_SESSION, {"event": "slot", "name": "handoff_active", "value": False}], domain(True))
    assert hold_slot(events)[-1] is True


def test_a_database_it_cannot_read_counts_as_no_handoff(unreadable_db: ServiceBackend, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="actions.session"):
        events = session_start("x")
    assert hold_slot(events) == [] and [e["event"] for e in events] == ["session_started", "action"]
    [record] = [r for r in caplog.records if r.getMessage() == "session_start.database_unavailable"]
    assert record.levelno == logging.ERROR and record.exc_info is not None, "logged with its traceback"


def test_the_domain_hands_the_session_start_to_the_action_server() -> None:
    action = action_for_name_or_text("action_session_start", domain(), EndpointConfig("http://127.0.0.1:5055/webhook"))
    assert isinstance(action, RemoteAction), "domain.yml lists action_session_start, so Rasa's default is not used"
