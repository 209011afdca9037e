"""Conversation control: stopping any task, and patience when the assistant does not understand (then a person)."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import hand_off
from actions.shared import TASK_SLOTS, leave_task  # noqa: F401 - TASK_SLOTS: what stop clears



LOW_CONFIDENCE_ACTION = "action_handle_low_confidence"
REPHRASE = "Sorry, I did not understand that. Could you say it another way? For example: what do I need for a passport renewal?"
REPHRASE_IN_TASK = "Sorry, I did not understand that. Please answer my last question again, or say stop to leave this task."


def missed_turns(events: List[Dict[Text, Any]]) -> List[bool]:
    """For each of the citizen's messages in `events`, whether the assistant did not understand it.

    A message was not understood when NLU said so (intent nlu_fallback) or when no rule or form
    could answer it and the low-confidence action ran instead (Rasa's core fallback): both count.
    """
    missed: List[bool] = []
    for event in events:
        if event.get("event") == "user":
            missed.append((event.get("parse_data", {}).get("intent") or {}).get("name") == "nlu_fallback")
        elif event.get("event") == "action" and event.get("name") == LOW_CONFIDENCE_ACTION and missed:
            missed[-1] = True
    return missed


def trailing_fallbacks(tracker: Tracker) -> int:
    """How many of the citizen's latest messages in a row the assistant did not understand (the current one included)."""
    turns = missed_turns(tracker.events)
    if turns:
        turns[-1] = True  # the message being handled now is not understood: this action runs for it
    count = 0
    for missed in reversed(turns):
        if not missed:
            break
        count += 1
    return count


class ActionStop(Action):
    """Leave whatever task is under way; nothing is booked or sent."""

    def name(self) -> Text:
        return "action_stop"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(text="All right, I have stopped. Nothing was booked or sent. What would you like to do now?")
        return leave_task()


class ActionHandleLowConfidence(Action):
    """First time: ask to rephrase. Twice in a row: hand the conversation to a person (reason low_confidence).

    This is the RulePolicy's core fallback (config.yml) as well as the answer to nlu_fallback. Asking to
    rephrase ends with UserUtteranceReverted, as Rasa's own fallback does: the conversation goes back to
    where it was before the message (a form stays at its question), so no rule is left to match and the
    policy does not pick this action again. Without it, a message no rule answers was apologised for
    ten times, until Rasa's circuit breaker stopped the turn without listening, after which every later
    message of the conversation was refused.
    """

    def name(self) -> Text:
        return LOW_CONFIDENCE_ACTION

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        if trailing_fallbacks(tracker) <= 1:
            dispatcher.utter_message(text=REPHRASE_IN_TASK if tracker.active_loop_name else REPHRASE)
            return [UserUtteranceReverted()]
        # a form in progress is left; what the citizen already gave stays filled in
        return await hand_off(
            dispatcher, tracker, "low_confidence", 3,
            "I am still not sure what you need, so I have asked a person from the service centre to help you.",
        )
