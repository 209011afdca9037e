"""Reports of problems in the city, routed to the department that fixes them."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.forms import TaskFormValidation
from actions.handoff import hand_off
from actions.shared import abilities_of, backend, button, call, channel_of, first, resolve_one
from onewindow.text.channel_wording import Prompt

MAX_TEXT = 1000
RESET = [SlotSet(name, None) for name in ("report_category", "report_location", "report_description")]
CALL_BACK = "exact place to be asked on a call back to the caller"  # a caller chose only the part of the city
NO_DETAILS = "No more details: the caller chose to send the report as it is."
ASK_LOCATION = Prompt(
    chat="Where is it? Please give the street, and a landmark or house number.",
    voice="Where is it? Please say the street, and a landmark or house number.",
    keypad="Which part of the city is it in? The team will call you on the number you are calling from to ask exactly where.",
)
LOCATION_AGAIN = Prompt(
    chat="Please type the street, and a landmark or house number.",
    voice="Please say the street, and a landmark or house number.",
    keypad="Please choose the part of the city.",
)
ASK_DESCRIPTION = Prompt(
    chat="Please describe the problem in a few words.",
    voice="Please describe the problem in a few words, or send the report as it is.",
    keypad="The team will ask you for the details when they call.",
)
DESCRIPTION_AGAIN = Prompt(
    chat="Please describe the problem in a few words.",
    voice="Please describe the problem in a few words, or send the report as it is.",
    keypad="Please send the report as it is.",
)


PLACE_WORDS = (
    "street|st|road|rd|lane|ln|avenue|ave|drive|dr|way|place|square|sq|park|close|court|boulevard|blvd|bridge|crescent|"
    "terrace|highway|row|walk|hill|gardens|grove|parade|alley|junction|roundabout|corner|station|school|library|market|"
    "church|hospital|centre|center|mall|playground|stop|car park|parking|town hall|number|no"
)
# "on cedar lane outside number four", "at 12 oak street", "near the school", "outside the library":
# a place word (or a house number) within a few words of where the place begins; the place ends with the clause
LOCATION = re.compile(
    r"\b(?P<place>(?:on|at|in|outside|near|by|opposite|behind|along|next\s+to|in\s+front\s+of|across\s+from|close\s+to)\s+"
    r"(?:(?!(?:and|but|since|because|for|which|that|it|its|it's|there|please)\b)[\w'-]+\s+){0,4}?"
    rf"(?:(?:{PLACE_WORDS})\b|\d+\b(?!\s*(?:am|pm|a\.m|p\.m|o'?clock|days?|weeks?|hours?|minutes?|months?|years?|times?)\b))[^.,;!?]*?)"
    r"\s*(?=[.,;!?]|\s+(?:and|but|since|because|for|which|that|it|its|it's|there|please)\b|$)",
    re.IGNORECASE,
)


def location_in(text: str) -> Optional[str]:
    """Where the problem is, when the message says it ("a broken street light on cedar lane outside number four")."""
    match = LOCATION.search(text or "")
    return " ".join(match.group("place").split()) if match else None


def _clean(value: Any) -> str:
    return " ".join(str(first(value)).split())


def pressed(tracker: Tracker) -> bool:
    """Whether the latest message is a button press (a payload), not words."""
    return (tracker.latest_message.get("text") or "").startswith("/")


class ActionAskReportLocation(Action):
    """Where the problem is; on the phone also the parts of the city as buttons (the team calls back for the exact place)."""

    def name(self) -> Text:
        return "action_ask_report_location"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        abilities = abilities_of(tracker)
        dispatcher.utter_message(
            text=ASK_LOCATION.render(abilities), buttons=await district_buttons() if abilities.keypad else []
        )
        return []


async def district_buttons() -> List[Dict[str, str]]:
    districts = await call(backend().catalogue.districts)
    return [button(f"Somewhere in {name}", "inform", district=district) for district, name in districts.items()]


class ActionAskReportDescription(Action):
    """What the problem is; on a call the report can also be sent as it is."""

    def name(self) -> Text:
        return "action_ask_report_description"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        abilities = abilities_of(tracker)
        dispatcher.utter_message(
            text=ASK_DESCRIPTION.render(abilities),
            buttons=[button("Send the report as it is", "affirm")] if abilities.on_call else [],
        )
        return []


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

    async def extract_report_location(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> Dict[Text, Any]:
        """A place said before it is asked (in the opening message, or with the kind of problem): not asked again."""
        if tracker.get_slot("report_location") or tracker.get_slot("requested_slot") == "report_location" or pressed(tracker):
            return {}
        place = location_in(tracker.latest_message.get("text") or "")
        return {"report_location": place} if place else {}

    async def validate_report_location(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> Dict[Text, Any]:
        districts = await call(backend().catalogue.districts)
        chosen = next((districts[d] for d in tracker.get_latest_entity_values("district") if d in districts), None)
        if chosen and pressed(tracker):
            return {"report_location": f"Somewhere in {chosen} ({CALL_BACK})"}
        return _free_text("report_location", value, dispatcher, LOCATION_AGAIN.render(abilities_of(tracker)))

    async def validate_report_description(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> Dict[Text, Any]:
        if abilities_of(tracker).on_call and tracker.get_intent_of_latest_message() == "affirm":
            return {"report_description": NO_DETAILS}
        return _free_text("report_description", value, dispatcher, DESCRIPTION_AGAIN.render(abilities_of(tracker)))


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

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        categories = await call(backend().reports.categories)
        dispatcher.utter_message(
            text="What kind of problem is it? For example a pothole, a broken street light, or rubbish.",
            buttons=[button(name, "inform", report_category=category) for category, name in categories],
        )
        return []


class ActionSubmitReport(Action):
    def name(self) -> Text:
        return "action_submit_report"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        record = await call(
            backend().reports.submit,
            tracker.get_slot("report_category"),
            tracker.get_slot("report_location"),
            tracker.get_slot("report_description"),
            channel_of(tracker),
            tracker.sender_id,
        )
        urgent = " It is marked urgent, so a team will look at it today." if record.urgent else ""
        if CALL_BACK in (tracker.get_slot("report_location") or ""):
            urgent += " The team will call you on the number you are calling from to ask exactly where it is."
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
