"""Reports of problems in the city, routed to the department that fixes them."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.forms import TaskFormValidation
from actions.handoff import hand_off
from actions.shared import SlotQuestion, backend, button, call, channel_of, first, resolve_one

MAX_TEXT = 1000
CATEGORY_BUTTONS = ["pothole", "street_light", "rubbish", "water_leak", "fallen_tree", "noise"]
RESET = [SlotSet(name, None) for name in ("report_category", "report_location", "report_description")]


def _clean(value: Any) -> str:
    return " ".join(str(first(value)).split())


class AskReportLocation(SlotQuestion):
    slot = "report_location"
    text = "Where is it? Please give the street, and a landmark or house number."


class AskReportDescription(SlotQuestion):
    slot = "report_description"
    text = "Please describe the problem in a few words."


class ValidateReportForm(TaskFormValidation):
    def name(self) -> Text:
        return "validate_report_form"

    async def validate_report_category(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> Dict[Text, Any]:
        ids = await resolve_one("report_category", _clean(value))
        if len(ids) != 1:
            dispatcher.utter_message(text="Sorry, I did not catch what kind of problem it is. Please choose one.")
            return {"report_category": None}
        return {"report_category": ids[0]}

    async def validate_report_location(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> Dict[Text, Any]:
        return _free_text("report_location", value, dispatcher, "Please tell me the street, and a landmark or house number.")

    async def validate_report_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> Dict[Text, Any]:
        return _free_text("report_description", value, dispatcher, "Please describe the problem in a few words.")


def _free_text(slot: str, value: Any, dispatcher: CollectingDispatcher, ask_again: str) -> Dict[Text, Any]:
    """Accept text with at least three letters or digits, cut to a sane length."""
    text = _clean(value)
    if sum(ch.isalnum() for ch in text) < 3:
        dispatcher.utter_message(text=ask_again)
        return {slot: None}
    return {slot: text[:MAX_TEXT]}


class ActionAskReportCategory(Action):
    def name(self) -> Text:
        return "action_ask_report_category"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(
            text="What kind of problem is it? For example a pothole, a broken street light, or rubbish.",
            buttons=[button(c.replace("_", " ").capitalize(), "inform", report_category=c) for c in CATEGORY_BUTTONS],
        )
        return []


class ActionSubmitReport(Action):
    def name(self) -> Text:
        return "action_submit_report"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        record = await call(
            backend().reports.submit,
            tracker.get_slot("report_category"),
            tracker.get_slot("report_location"),
            tracker.get_slot("report_description"),
            channel_of(tracker),
            tracker.sender_id,
        )
        urgent = " It is marked urgent, so a team will look at it today." if record.urgent else ""
        dispatcher.utter_message(
            text=(
                f"Thank you. Your report about a {record.category_name.lower()} has gone to the "
                f"{record.department}. Your ticket number is {record.reference}.{urgent}"
            )
        )
        if not record.urgent:
            return RESET
        opening = "Because it is urgent, I have also asked a person from the service centre to follow it up with you."
        return [*RESET, *await hand_off(dispatcher, tracker, "urgent_report", 1, opening)]
