"""A new Rasa session keeps a conversation that a person has: `action_session_start` puts the hold back.

Rasa starts a new session after an hour of silence (domain.yml, session_config) and, as configured
there, without the previous session's slots, so `handoff_active` is gone. The service database's
handoffs are the truth: when the conversation still has an open or claimed handoff, the session
starts with `handoff_active` true, and from its first message onewindow/rasa_plugins/handoff_policy.py
sends every message to `action_handoff_waiting`. One indexed query per session, never per message;
a database the action cannot read counts as no handoff (logged as an error). Otherwise the events
are Rasa's own default session start: `session_started`, the slots carried over when
`carry_over_slots_to_new_session` is set, then `action_listen`.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError

from actions.shared import backend, call
from onewindow.backend.handoffs import HANDOFF_SLOT
from onewindow.infra.logs import log_event

logger = logging.getLogger(__name__)


def carried_over_slots(tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
    """The previous session's slot events (with their metadata) when the domain carries slots over, as Rasa's default does."""
    if not (domain.get("session_config") or {}).get("carry_over_slots_to_new_session"):
        return []
    return [
        {**SlotSet(event["name"], event.get("value")), "metadata": event.get("metadata")}
        for event in tracker.applied_events()
        if event.get("event") == "slot"
    ]


def held_by_a_person(sender_id: str) -> bool:
    """Whether the conversation has an open or claimed handoff; a database it cannot read counts as no handoff."""
    try:
        return backend().handoffs.is_held(sender_id)
    except SQLAlchemyError as error:
        log_event(logger, "session_start.database_unavailable", level=logging.ERROR, exc_info=error)
        return False


class ActionSessionStart(Action):
    """Rasa's session start, with the hold of a conversation a person still has."""

    def name(self) -> Text:
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        hold = [SlotSet(HANDOFF_SLOT, True)] if await call(held_by_a_person, tracker.sender_id) else []
        return [SessionStarted(), *carried_over_slots(tracker, domain), *hold, ActionExecuted("action_listen")]
