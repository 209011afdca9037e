"""HandoffPolicy: while a person has the conversation the assistant stays quiet, and distress always reaches a person.

A Rasa policy (priority 7, above RulePolicy's 6) that predicts, with full confidence:
- `action_handle_distress` after any message with a `distress` entity, whatever the intent and
  even inside a form (nlu/regexes.yml: words about self-harm, violence or danger; a regex rather
  than an intent, so distress is caught in any sentence and the intent classifier is unchanged);
- `action_handoff_waiting` after any other message while the `handoff_active` slot is true, so
  no rule, form or fallback answers a conversation a person has taken over;
- `action_listen` after those two actions, and after any action while `handoff_active` is true.
Otherwise it predicts nothing and the other policies decide.

A new Rasa session (after an hour of silence, domain.yml) starts without the slot, so at the first
message of a session the policy asks the service database whether the conversation still has an
open handoff; if so it predicts `action_handoff_waiting`, which puts the slot back. That is one
indexed query per session, never per message; a database it cannot read counts as no handoff.
Like every FixedPolicy (onewindow/rasa_plugins/fixed_policy.py) its predictions also win over a form's happy path.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Optional

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.exc import SQLAlchemyError

from onewindow.backend.handoffs import HANDOFF_SLOT, Handoffs
from onewindow.infra.logs import log_event
from onewindow.rasa_plugins.fixed_policy import FixedPolicy

DISTRESS_ENTITY = "distress"
WAITING_ACTION = "action_handoff_waiting"
DISTRESS_ACTION = "action_handle_distress"

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def service_handoffs() -> Handoffs:
    """The service database's handoffs (DATABASE_URL), opened once per Rasa server."""
    from onewindow.backend import ServiceBackend

    return ServiceBackend.from_url().handoffs


def first_message_of_session(tracker: DialogueStateTracker) -> bool:
    """Whether the latest user message is the first one since the session started."""
    messages = 0
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            messages += 1
        elif isinstance(event, SessionStarted):
            return messages == 1
    return False


def held_by_a_person(sender_id: str) -> bool:
    """Whether the conversation has an open or claimed handoff in the service database."""
    try:
        return service_handoffs().is_held(sender_id)
    except SQLAlchemyError as error:
        log_event(logger, "handoff_policy.database_unavailable", level=logging.ERROR, exc_info=error)
        return False


def next_action(tracker: DialogueStateTracker) -> Optional[str]:
    """The action this policy insists on, or None to leave the choice to the other policies."""
    handed_off = bool(tracker.get_slot(HANDOFF_SLOT))
    if tracker.latest_action_name == ACTION_LISTEN_NAME:
        entities = tracker.latest_message.entities if tracker.latest_message else []
        if any(entity.get("entity") == DISTRESS_ENTITY for entity in entities):
            return DISTRESS_ACTION
        if handed_off or (first_message_of_session(tracker) and held_by_a_person(tracker.sender_id)):
            return WAITING_ACTION
        return None
    if handed_off or tracker.latest_action_name in (WAITING_ACTION, DISTRESS_ACTION):
        return ACTION_LISTEN_NAME
    return None


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True)
class HandoffPolicy(FixedPolicy):
    @staticmethod
    def get_default_config() -> dict:
        return {"priority": 7}

    def next_action(self, tracker: DialogueStateTracker) -> Optional[str]:
        return next_action(tracker)
