"""Application status by reference number."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.shared import SlotQuestion, backend, call, first
from onewindow.backend.references import normalise_reference
from onewindow.dates import spoken_date


class AskApplicationReference(SlotQuestion):
    slot = "application_reference"
    text = "What is your application number? It starts with A P P, for example A P P 1 2 3 4 5 6."


class ValidateStatusForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_status_form"

    async def validate_application_reference(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> Dict[Text, Any]:
        said = str(first(value))
        code = normalise_reference(said, "application")
        if code is None:
            hint = " That is an appointment number." if normalise_reference(said, "appointment") else ""
            dispatcher.utter_message(
                text=f"That does not look like an application number.{hint} It is A P P and six digits, for example A P P 1 2 3 4 5 6."
            )
            return {"application_reference": None}
        if await call(backend().applications.status, code) is None:
            dispatcher.utter_message(text=f"I could not find application {code}. Please check the number on your receipt.")
            return {"application_reference": None}
        return {"application_reference": code}


class ActionCheckStatus(Action):
    def name(self) -> Text:
        return "action_check_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        record = await call(backend().applications.status, tracker.get_slot("application_reference"))
        if record is None:
            dispatcher.utter_message(text="I could not find that application. Please check the number.")
            return [SlotSet("application_reference", None)]
        latest = record.history[-1] if record.history else None
        note = f" {latest.note}" if latest and latest.note else ""
        since = f" since {spoken_date(latest.changed_at.date())}" if latest else ""
        dispatcher.utter_message(
            text=(
                f"Application {record.reference}, {record.service_name}, sent on "
                f"{spoken_date(record.submitted_at.date())}. Its status is: {record.status}{since}.{note}"
            )
        )
        return [SlotSet("application_reference", None)]
