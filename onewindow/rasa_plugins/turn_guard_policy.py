"""TurnGuardPolicy: every turn ends by listening, before Rasa's circuit breaker and without repeating itself.

Rasa predicts actions until one of them is `action_listen`. When the policies keep predicting
something else, Rasa stops after 10 actions ("Circuit breaker tripped") without logging
`action_listen`; it then counts the same actions again at every later message of the
conversation, so the conversation never gets an answer again. This policy (priority 8, above
every other) predicts `action_listen` with full confidence when the current turn
- has already run the action that just ran (a second run would say the same thing again or
  change nothing: a policy that predicts it twice would predict it forever), or
- has run MAX_ACTIONS_PER_TURN actions (below Rasa's limit of 10).
Otherwise it predicts nothing and the other policies decide. A turn it stops is logged as
`turn_guard.stopped` with the actions' names, so the rule or action that looped can be found;
the dialogue's own design (rules, forms, the fallback's rewind) should never need it.
"""

from __future__ import annotations

import logging
from typing import List, Optional

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.events import ActionExecuted
from rasa.shared.core.trackers import DialogueStateTracker

from onewindow.rasa_plugins.fixed_policy import FixedPolicy

MAX_ACTIONS_PER_TURN = 8

logger = logging.getLogger(__name__)


def actions_this_turn(tracker: DialogueStateTracker) -> List[str]:
    """The actions run since the assistant last listened (or the session started), oldest first."""
    names: List[str] = []
    for event in reversed(tracker.events):
        if isinstance(event, ActionExecuted) and event.action_name:
            if event.action_name in (ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME):
                break
            names.append(event.action_name)
    return names[::-1]


def must_listen(actions: List[str]) -> bool:
    """Whether a turn that has run `actions` must end now."""
    return bool(actions) and (len(actions) >= MAX_ACTIONS_PER_TURN or actions[-1] in actions[:-1])


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True)
class TurnGuardPolicy(FixedPolicy):
    @staticmethod
    def get_default_config() -> dict:
        return {"priority": 8}

    def next_action(self, tracker: DialogueStateTracker) -> Optional[str]:
        actions = actions_this_turn(tracker)
        if not must_listen(actions):
            return None
        if tracker.sender_id:  # not while Rasa trains or tests stories, where trackers have no sender
            logger.warning("turn_guard.stopped: %s", " ".join(actions), extra={"fields": {"actions": actions}})
        return ACTION_LISTEN_NAME
