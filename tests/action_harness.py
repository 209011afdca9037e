"""Run custom actions the way the action server does, with a real tracker and dispatcher."""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Dict, List, Optional, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

DOMAIN_PATH = "domain.yml"


@functools.lru_cache(maxsize=1)
def load_domain() -> Dict[str, Any]:
    """The real domain.yml as the action server receives it (loaded once; do not modify the result)."""
    from rasa.shared.core.domain import Domain

    return Domain.load(DOMAIN_PATH).as_dict()


def make_tracker(
    slots: Optional[Dict[str, Any]] = None,
    intent: str = "inform",
    entities: Optional[List[Dict[str, Any]]] = None,
    text: str = "",
    events: Optional[List[Dict[str, Any]]] = None,
    active_loop: Optional[str] = None,
    sender_id: str = "test-user",
    channel: str = "rest",
    metadata: Optional[Dict[str, Any]] = None,
) -> Tracker:
    latest = {
        "intent": {"name": intent, "confidence": 0.99},
        "intent_ranking": [{"name": intent, "confidence": 0.99}],
        "entities": entities or [],
        "text": text,
    }
    user_event = {"event": "user", "text": text, "parse_data": latest, "input_channel": channel, "metadata": metadata or {}}
    return Tracker(
        sender_id=sender_id,
        slots=dict(slots or {}),
        latest_message=latest,
        events=[*(events or []), user_event],
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def run_action(
    action: Action, tracker: Tracker, domain: Optional[Dict[str, Any]] = None
) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """(messages sent, events returned)."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, domain or load_domain()))
    return dispatcher.messages, events


def slot_events(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
