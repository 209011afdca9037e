"""What every task form's validation does first: a message that asks something else is not an answer to the form's question.

Rasa's form goes on whenever a message fills one of its slots, so "where does the mobile service
van stop", sent while the booking asks which service, filled the office and asked for the service
again: the question was never answered. When the citizen changes the subject (a question about
services or offices, a life event, help), the validation rejects the form's turn instead: the
rules answer the question, then the form asks its question again, keeping what this message
told it (the slots it filled are validated then).

A reference to the buttons of the form's own question ("the second one", "number 2", "the north
one") is the answer that button gives (`listed_answer`), for every form's question with a list.
"""

from __future__ import annotations

import json
import re
from abc import abstractmethod
from typing import Any, Dict, List, Mapping, Optional, Text

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import ActionExecutionRejected, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.listed import button_referred

SUBJECT_CHANGES = frozenset(
    {
        "ask_service_info",
        "ask_documents",
        "ask_fee",
        "ask_benefit_amount",
        "ask_processing_time",
        "ask_online",
        "ask_opening_hours",
        "find_office",
        "life_event",
        "help",
        "bot_challenge",
    }
)


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


THE_ONE = re.compile(r"\bthe\s+[\w' -]+?\s+one\b", re.IGNORECASE)  # "the north one", "the tuesday one"


def question_buttons(tracker: Tracker) -> List[Mapping[str, Any]]:
    """The buttons of the assistant's latest question, sent since the citizen's previous message."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            if seen_user:
                return []
            seen_user = True
        elif event.get("event") == "bot" and seen_user and (event.get("data") or {}).get("buttons"):
            return list(event["data"]["buttons"])
    return []


def _payload(payload: str) -> tuple:
    """(intent, entities) of a button's payload "/intent{...}"."""
    intent, _, entities = payload.lstrip("/").partition("{")
    try:
        parsed = json.loads("{" + entities) if entities else {}
    except ValueError:
        parsed = {}
    return intent, parsed if isinstance(parsed, dict) else {}


def answer_from_mappings(mappings: List[Mapping[str, Any]], payload: str) -> Optional[Any]:
    """The value a button's payload gives a slot through its mappings (an entity, or an intent's value)."""
    intent, entities = _payload(payload)
    for mapping in mappings:
        if mapping.get("type") == "from_entity" and entities.get(mapping.get("entity")) is not None:
            return entities[mapping["entity"]]
        if mapping.get("type") == "from_intent" and mapping.get("intent") == intent:
            return mapping.get("value")
    return None


def listed_answer(tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
    """ "The second one", "the north one", "number 2": the button of the form's own question it refers to, as its answer.

    Not for a pressed button, nor for a message that itself names a value of the asked slot. Words
    (not an ordinal) choose a button only for a slot filled from entities, or as "the ... one", so a
    free-text answer ("near the north gate") stays the citizen's words.
    """
    slot, text = tracker.get_slot("requested_slot"), tracker.latest_message.get("text") or ""
    buttons = question_buttons(tracker)
    if not slot or text.startswith("/") or len(buttons) < 2:
        return []
    mappings = list((domain.get("slots", {}).get(slot) or {}).get("mappings") or [])
    named = {e.get("entity") for e in tracker.latest_message.get("entities") or []}
    if named & {m.get("entity") for m in mappings if m.get("type") == "from_entity"}:
        return []
    by_name = all(m.get("type") != "from_text" for m in mappings) or bool(THE_ONE.search(text))
    chosen = button_referred(text, buttons, by_name)
    value = answer_from_mappings(mappings, str(chosen.get("payload", ""))) if chosen else None
    return [SlotSet(slot, value)] if value is not None else []


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

    async def get_extraction_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Dict[Text, Any]]:
        """Each form's own extractions, then a reference to the buttons of its question (`listed_answer`)."""
        events = await super().get_extraction_events(dispatcher, tracker, domain)
        return events + listed_answer(tracker, domain)
