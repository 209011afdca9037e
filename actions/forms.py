"""What every task form's validation does first: a message that asks something else is not an answer to the form's question.

Rasa's form goes on whenever a message fills one of its slots, so "where does the mobile service
van stop", sent while the booking asks which service, filled the office and asked for the service
again: the question was never answered. When the citizen changes the subject (a question about
services or offices, a life event, help), the validation rejects the form's turn instead: the
rules answer the question, then the form asks its question again, keeping what this message
told it (the slots it filled are validated then).
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import ActionExecutionRejected
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

SUBJECT_CHANGES = frozenset({
    "ask_service_info", "ask_documents", "ask_fee", "ask_benefit_amount", "ask_processing_time", "ask_online", "ask_opening_hours",
    "find_office", "life_event", "help", "bot_challenge",
})


def action_before_form(tracker: Tracker, form: str) -> Optional[str]:
    """The action that ran before this run of `form` (Rasa shows the form as run while it validates)."""
    actions = [e.get("name") for e in reversed(tracker.events) if e.get("event") == "action"]
    if actions and actions[0] == form:
        actions = actions[1:]
    return actions[0] if actions else None


NOTHING_HEARD = "/nlu_fallback"  # the hotline's channel command when it heard nothing usable


def nothing_heard(tracker: Tracker) -> bool:
    """Whether the message is the hotline saying it heard nothing usable: never an answer, a miss."""
    return (tracker.latest_message.get("text") or "").strip() == NOTHING_HEARD


def changes_subject(tracker: Tracker, form: str) -> bool:
    """Whether the message just received, while `form` asks its question, asks for something else."""
    if tracker.active_loop_name != form or action_before_form(tracker, form) != "action_listen":
        return False  # the form is starting, or coming back after the other question was answered
    return (tracker.latest_message.get("intent") or {}).get("name") in SUBJECT_CHANGES


class TaskFormValidation(FormValidationAction):
    """A form validation action that lets the citizen change the subject (see the module's docstring).

    The hotline's "/nlu_fallback" (nothing usable heard) is rejected too, so a free-text question
    does not take it as its answer: the miss ladder answers it (actions/conversation.py).
    """

    @abstractmethod
    def name(self) -> Text:
        """`validate_<form>`: each task form's validation names itself (abstract, so the SDK does not register this class)."""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        if changes_subject(tracker, self.form_name()) or nothing_heard(tracker):
            return [ActionExecutionRejected(self.form_name())]
        return await super().run(dispatcher, tracker, domain)
