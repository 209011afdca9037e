"""Conversation control: stopping any task, and patience when the assistant does not understand (then a person)."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import hand_off

TASK_SLOTS = (
    "appointment_date", "appointment_time", "booking_confirmed", "cancel_confirmed",
    "report_category", "report_location", "report_description", "application_reference",
)


def trailing_fallbacks(tracker: Tracker) -> int:
    """How many of the citizen's latest messages in a row the assistant did not understand."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        if (event.get("parse_data", {}).get("intent") or {}).get("name") != "nlu_fallback":
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
        return [ActiveLoop(None), SlotSet("requested_slot", None), *(SlotSet(name, None) for name in TASK_SLOTS)]


class ActionHandleLowConfidence(Action):
    """First time: ask to rephrase. Twice in a row: hand the conversation to a person (reason low_confidence)."""

    def name(self) -> Text:
        return "action_handle_low_confidence"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        if trailing_fallbacks(tracker) <= 1:
            dispatcher.utter_message(
                text="Sorry, I did not understand that. Could you say it another way? For example: what do I need for a passport renewal?"
            )
            return []
        # a form in progress is left; what the citizen already gave stays filled in
        return await hand_off(
            dispatcher, tracker, "low_confidence", 3,
            "I am still not sure what you need, so I have asked a person from the service centre to help you.",
        )
