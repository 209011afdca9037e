"""HandoffPolicy: while a person has the conversation the assistant stays quiet, and distress always reaches a person.

A Rasa policy (priority 7, above RulePolicy's 6) that predicts, with full confidence:
- `action_handle_distress` after any message with a `distress` entity, whatever the intent and
  even inside a form (nlu/regexes.yml: words about self-harm, violence or danger; a regex rather
  than an intent, so distress is caught in any sentence and the intent classifier is unchanged);
- `action_handoff_waiting` after any other message while the `handoff_active` slot is true, so
  no rule, form or fallback answers a conversation a person has taken over;
- `action_listen` after those two actions, and after any action while `handoff_active` is true.
Otherwise it predicts nothing and the other policies decide.

It reads only the tracker, no database: a new Rasa session (after an hour of silence, domain.yml)
gets the slot back from `action_session_start` (actions/session.py) when the conversation still has
an open handoff. Like every FixedPolicy (onewindow/rasa_plugins/fixed_policy.py) its predictions also
win over a form's happy path.
"""

from __future__ import annotations

from typing import Optional

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.trackers import DialogueStateTracker

from onewindow.backend.handoffs import HANDOFF_SLOT
from onewindow.rasa_plugins.fixed_policy import FixedPolicy

DISTRESS_ENTITY = "distress"
WAITING_ACTION = "action_handoff_waiting"
DISTRESS_ACTION = "action_handle_distress"


def next_action(tracker: DialogueStateTracker) -> Optional[str]:
    """The action this policy insists on, or None to leave the choice to the other policies."""
    handed_off = bool(tracker.get_slot(HANDOFF_SLOT))
    if tracker.latest_action_name == ACTION_LISTEN_NAME:
        entities = tracker.latest_message.entities if tracker.latest_message else []
        if any(entity.get("entity") == DISTRESS_ENTITY for entity in entities):
            return DISTRESS_ACTION
        return WAITING_ACTION if handed_off else None
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
