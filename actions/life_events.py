"""Life events: every related service at once, across departments, in the order to do them."""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.shared import backend, button, call, resolve_one
from onewindow.backend.records import LifeEventRecord

MENU = ["birth", "school", "job_loss", "marriage", "moving", "retirement", "death", "business"]


def bundle_text(event: LifeEventRecord) -> str:
    departments = sorted({step.service.department for step in event.steps})
    steps = " ".join(
        f"{number}. {step.service.name}: {step.when}" for number, step in enumerate(event.steps, start=1)
    )
    online = [step.service.name for step in event.steps if step.service.online_available]
    online_text = f" You can do {len(online)} of these online." if online else ""
    sympathy = f"{event.sympathy} " if event.sympathy else ""
    return (
        f"{sympathy}{event.summary} Here is everything to do, in order. {steps} "
        f"That is {len(event.steps)} services from {len(departments)} departments.{online_text} "
        "Ask me about any of them for the documents, or to book."
    )


class ActionLifeEvent(Action):
    def name(self) -> Text:
        return "action_life_event"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]
    ) -> List[Dict[Text, Any]]:
        ids = await resolve_one("life_event", tracker.get_slot("life_event"))
        event = await call(backend().catalogue.life_event, ids[0]) if ids else None
        if event is None:
            events = [await call(backend().catalogue.life_event, i) for i in MENU]
            dispatcher.utter_message(
                text="Which of these is happening in your life? I will list every service you need.",
                buttons=[button(e.name, "life_event", life_event=e.id) for e in events if e],
            )
            return [SlotSet("life_event", None)]
        dispatcher.utter_message(
            text=bundle_text(event),
            buttons=[button(step.service.name, "ask_documents", service=step.service.id) for step in event.steps[:6]],
        )
        return [SlotSet("life_event", event.id)]
