"""Life events: every related service at once, across departments, in the order to do them."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.routes import IN_PERSON, ONLINE, stated_mode
from actions.shared import backend, button, call, resolve_one
from onewindow.backend.records import LifeEventRecord, OfficeRecord
from onewindow.text.wording import join_words

MENU = ["birth", "school", "job_loss", "marriage", "moving", "retirement", "death", "business"]


def online_text(event: LifeEventRecord) -> str:
    online = [step.service.name for step in event.steps if step.service.online_available]
    return f" You can do {len(online)} of these online." if online else ""


def from_home_text(event: LifeEventRecord) -> str:
    """For a citizen who wants or needs to stay at home: which steps can be done online, which need a visit."""
    online = [step.service.name for step in event.steps if step.service.online_available]
    visits = [step.service.name for step in event.steps if not step.service.online_available]
    done_online = (
        f" You can do these from home, online: {join_words(online)}." if online else " None of these can be done online."
    )
    need_visit = f" These need a visit to an office: {join_words(visits)}." if visits else " You do not need to go to an office."
    return done_online + need_visit


def in_person_text(event: LifeEventRecord, offices: List[OfficeRecord]) -> str:
    """For a citizen who wants or must go in person: the offices that offer the most of the steps, in one visit."""
    wanted = {step.service.id for step in event.steps}
    counts = [(len(wanted & set(o.service_ids)), o) for o in offices]
    best = max((count for count, _ in counts), default=0)
    if not best:
        return ""
    names = join_words([o.name for count, o in counts if count == best][:3], last="or")
    share = "all of them" if best == len(wanted) else f"{best} of them"
    return f" You can do {share} in person at {names}."


def bundle_text(event: LifeEventRecord, mode: Optional[str] = None, offices: Optional[List[OfficeRecord]] = None) -> str:
    departments = sorted({step.service.department for step in event.steps})
    steps = " ".join(f"{number}. {step.service.name}: {step.when}" for number, step in enumerate(event.steps, start=1))
    route = {ONLINE: from_home_text(event), IN_PERSON: in_person_text(event, offices or [])}.get(mode or "") or online_text(event)
    sympathy = f"{event.sympathy} " if event.sympathy else ""
    return (
        f"{sympathy}{event.summary} Here is everything to do, in order. {steps} "
        f"That is {len(event.steps)} services from {len(departments)} departments.{route} "
        "Choose any of them for the documents, or to book."
    )


class ActionLifeEvent(Action):
    def name(self) -> Text:
        return "action_life_event"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        ids = await resolve_one("life_event", tracker.get_slot("life_event"))
        event = await call(backend().catalogue.life_event, ids[0]) if ids else None
        if event is None:
            every = await call(backend().catalogue.life_events)  # every event, the common ones first
            events = sorted(every, key=lambda e: MENU.index(e.id) if e.id in MENU else len(MENU))
            dispatcher.utter_message(
                text="Which of these is happening in your life? I will list every service you need.",
                buttons=[button(e.name, "life_event", life_event=e.id) for e in events if e],
            )
            return [SlotSet("life_event", None)]
        mode = stated_mode(tracker.get_slot("mode"))
        offices = await call(backend().catalogue.offices) if mode == IN_PERSON else []
        dispatcher.utter_message(
            text=bundle_text(event, mode, offices),
            buttons=[button(step.service.name, "ask_documents", service=step.service.id) for step in event.steps],
        )
        return [SlotSet("life_event", event.id), SlotSet("service", None)]  # the subject is now the listed services
