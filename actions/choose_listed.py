""" "The second one", "the rent one": an item of what the assistant just listed, answered as a question about it."""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.listed import KINDS, latest_listing, reference_in
from actions.offices import ActionAnswerOfficeQuestion
from actions.services import ActionAnswerServiceQuestion
from actions.shared import call

# the action that answers about each kind of listed item
ANSWERS: Dict[str, Action] = {"service": ActionAnswerServiceQuestion(), "office": ActionAnswerOfficeQuestion()}


class ActionChooseListed(Action):
    """ "The second one", "the rent one": answered as a question about that item of the latest list."""

    def name(self) -> Text:
        return "action_choose_listed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        found = await call(reference_in, tracker, KINDS, False)
        named = [e["entity"] for e in tracker.latest_message.get("entities") or [] if e.get("entity") in KINDS]
        if found is None and named:  # "the pension one" with nothing listed: what it names
            return await ANSWERS[named[0]].run(dispatcher, tracker, domain)
        if found is None:
            listing = latest_listing(tracker.events)
            dispatcher.utter_message(
                text="Which one do you mean?" if listing else "Which service or office do you mean? Please name it.",
                buttons=listing.buttons if listing else [],
            )
            return []
        kind, item = found
        tracker.slots[kind] = item  # this request's copy: the answer is about the item referred to
        return [SlotSet(kind, item), *await ANSWERS[kind].run(dispatcher, tracker, domain)]
