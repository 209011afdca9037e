"""Application status by reference number, for the citizen who proves the application is theirs."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.forms import TaskFormValidation
from actions.ownership import FORGET_PROOF, FORMATS, RecordProof, refusal
from actions.shared import abilities_of, backend, button, call, first, requester_of
from onewindow.backend.records import ApplicationRecord
from onewindow.backend.references import PREFIXES, normalise_reference
from onewindow.text.channel_wording import Prompt
from onewindow.text.dates import spoken_date

ASK_WHICH_APPLICATION = Prompt(
    "Your applications: {listing} Which one is it?",
    chat="You can also type its number.",
    voice="You can also say its number.",
    keypad="You can also key in its digits.",
)


class ActionAskApplicationReference(Action):
    """Asks for the application number; a chat or caller the channel vouched for picks from its applications."""

    text = f"What is your application number? {FORMATS['application']}"

    def name(self) -> Text:
        return "action_ask_application_reference"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        applications = await call(backend().ownership.applications_of, requester_of(tracker))
        if not applications:  # nobody known, or none on record: the number is the way in
            dispatcher.utter_message(text=self.text)
            return []
        listing = " ".join(
            f"{n}. {a.reference}: {a.service_name}, sent on {spoken_date(a.submitted_at.date())}."
            for n, a in enumerate(applications, start=1)
        )
        dispatcher.utter_message(
            text=ASK_WHICH_APPLICATION.render(abilities_of(tracker), listing=listing),
            buttons=[button(f"{a.reference}, {a.service_name}", "inform", reference=a.reference) for a in applications],
        )
        return []


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

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
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
