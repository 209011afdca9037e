"""Asking for a person: record a handoff request and say what happens next."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.shared import backend, call, channel_of, now
from onewindow.backend.records import CityRecord
from onewindow.wording import is_open_at, week_text

SUMMARY_TURNS = 6
SUMMARY_SLOTS = ("service", "office", "life_event", "appointment_reference", "application_reference", "report_category")


def conversation_summary(tracker: Tracker) -> Dict[str, Any]:
    """What the citizen asked, the slots collected and the last turns, for the person taking over."""
    turns = [
        {"from": "citizen" if e["event"] == "user" else "bot", "text": e.get("text") or ""}
        for e in tracker.events
        if e.get("event") in ("user", "bot")
    ][-SUMMARY_TURNS:]
    asked = [
        e["parse_data"]["intent"].get("name")
        for e in tracker.events
        if e.get("event") == "user" and e.get("parse_data", {}).get("intent")
    ]
    slots = {name: tracker.get_slot(name) for name in SUMMARY_SLOTS if tracker.get_slot(name)}
    return {"intents": asked[-SUMMARY_TURNS:], "slots": slots, "last_turns": turns}


def staff_hours_text(city: CityRecord, moment: datetime) -> str:
    if is_open_at(city.hotline_hours, moment.date(), moment.time()):
        return "Staff are working now, so someone should reply soon."
    return (
        "Staff are not working right now. A person will reply when they are back. "
        f"Their hours are: {week_text(city.hotline_hours)}"
    )


class ActionRequestHuman(Action):
    def name(self) -> Text:
        return "action_request_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        handoff = await call(
            backend().handoffs.request,
            tracker.sender_id,
            channel_of(tracker),
            "citizen_request",
            conversation_summary(tracker),
        )
        city = await call(backend().catalogue.city)
        dispatcher.utter_message(
            text=(
                f"I have asked a person from the service centre to help you. Your request number is "
                f"{handoff.reference}, and you are number {handoff.position_in_queue} in the queue. "
                f"They will reply here, and they can see what we talked about. {staff_hours_text(city, now())} "
                f"You can also call the city hotline on {city.hotline_number}, or visit any service centre."
            ),
            json_message={"handoff": {"reference": handoff.reference, "reason": handoff.reason, "priority": handoff.priority}},
        )
        return [ActiveLoop(None), SlotSet("requested_slot", None)] if tracker.active_loop_name else []
