"""Application status by reference number, for the citizen who proves the application is theirs."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.forms import TaskFormValidation
from actions.ownership import FORGET_PROOF, FORMATS, RecordProof, refusal
from actions.shared import SlotQuestion, backend, call, first, requester_of
from onewindow.backend.records import ApplicationRecord
from onewindow.backend.references import PREFIXES, normalise_reference
from onewindow.dates import spoken_date


class AskApplicationReference(SlotQuestion):
    slot = "application_reference"
    text = f"What is your application number? {FORMATS['application']}"


class ValidateStatusForm(RecordProof, TaskFormValidation):
    kind = "application"
    reference_slot = "application_reference"

    def name(self) -> Text:
        return "validate_status_form"

    def fetch(self) -> Callable[..., Tuple[Any, Optional[ApplicationRecord]]]:
        return backend().ownership.application

    def unknown_text(self, code: str) -> str:
        return f"I could not find application {code}. Please check the number on your receipt."

    async def validate_application_reference(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> Dict[Text, Any]:
        said = normalise_reference(str(first(value)))  # a kind only from its prefix: keyed digits are this form's kind
        if said and said.startswith(PREFIXES["appointment"]):
            dispatcher.utter_message(text=f"That is an appointment number, not an application number. {FORMATS['application']}")
            return {"application_reference": None}
        return await self.check_reference(value, dispatcher, tracker)


class ActionCheckStatus(Action):
    def name(self) -> Text:
        return "action_check_status"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        forget = [SlotSet("application_reference", None), *FORGET_PROOF]
        _, record = await call(backend().ownership.application, tracker.get_slot("application_reference"), requester_of(tracker))
        if record is None:
            refusal(dispatcher, "application")
            return forget
        latest = record.history[-1] if record.history else None
        note = f" {latest.note}" if latest and latest.note else ""
        since = f" since {spoken_date(latest.changed_at.date())}" if latest else ""
        dispatcher.utter_message(
            text=(
                f"Application {record.reference}, {record.service_name}, sent on "
                f"{spoken_date(record.submitted_at.date())}. Its status is: {record.status}{since}.{note}"
            )
        )
        return forget
