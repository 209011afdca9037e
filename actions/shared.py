"""What every action needs: the backend, a way to call it without blocking, and buttons."""

from __future__ import annotations

import asyncio
import functools
import json
from abc import ABC, abstractmethod
from datetime import date, datetime
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from onewindow.backend import ServiceBackend
from onewindow.backend.ownership import Requester
from onewindow.backend.records import OfficeRecord, ServiceRecord
from onewindow.channels.senders import signed_by_channel, split_sender
from onewindow.text.channel_wording import Abilities, abilities_for

T = TypeVar("T")
TASK_SLOTS = (
    "appointment_date",
    "appointment_time",
    "booking_confirmed",
    "cancel_confirmed",
    "report_category",
    "report_location",
    "report_description",
    "application_reference",
    "record_proof",
)


@functools.lru_cache(maxsize=1)
def backend() -> ServiceBackend:
    """One backend per action-server process (DATABASE_URL or the embedded SQLite file)."""
    return ServiceBackend.from_url()


async def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking backend call in a worker thread so other conversations go on."""
    return await asyncio.to_thread(function, *args, **kwargs)


async def known_service(service_id: str) -> ServiceRecord:
    """A service the conversation has settled on (a resolved name or a validated slot), so in the catalogue."""
    service = await call(backend().catalogue.service, service_id)
    if service is None:
        raise LookupError(f"Service {service_id!r} is not in the catalogue.")
    return service


async def known_office(office_id: str) -> OfficeRecord:
    """An office the conversation has settled on (a resolved name or a validated slot), so in the catalogue."""
    office = await call(backend().catalogue.office, office_id)
    if office is None:
        raise LookupError(f"Office {office_id!r} is not in the catalogue.")
    return office


def now() -> datetime:
    return datetime.now()


def identity_of(tracker: Tracker) -> Tuple[str, str]:
    """(channel, id) of the person talking: channels name senders "telegram:<chat id>", "phone:<caller>"."""
    channel, external_id = split_sender(tracker.sender_id)
    return (channel, external_id) if channel else (tracker.get_latest_input_channel() or "rest", external_id)


def channel_of(tracker: Tracker) -> str:
    """telegram, phone, or the Rasa input channel (rest) for other senders."""
    return identity_of(tracker)[0]


def requester_of(tracker: Tracker) -> Requester:
    """Who asks for a record: the identity counts only when a channel adapter signed the sender id."""
    channel, external_id = identity_of(tracker)
    signed = signed_by_channel(tracker.sender_id, latest_metadata(tracker).get("sender_signature"))
    identity = (channel, external_id) if signed and split_sender(tracker.sender_id)[0] else None
    return Requester(tracker.sender_id, channel, identity, tracker.get_slot("record_proof"))


def latest_metadata(tracker: Tracker) -> Dict[str, Any]:
    """What the channel sent along with the latest message (a shared location, for example)."""
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return event.get("metadata") or {}
    return {}


def abilities_of(tracker: Tracker) -> Abilities:
    """What the citizen's channel lets them do (speech, keypad, typing, buttons), from the sender and the latest message."""
    return abilities_for(tracker.sender_id, latest_metadata(tracker))


def venue(office: OfficeRecord, day: date) -> Dict[str, Any]:
    """A custom payload channels show as a map pin (Telegram sends a venue): where the office is on `day`."""
    place = office.place_on(day)
    return {
        "venue": {
            "latitude": place.latitude,
            "longitude": place.longitude,
            "title": office.name,
            "address": place.place,
        }
    }


def button(title: str, intent: str, **entities: Any) -> Dict[str, str]:
    """A button whose press sends `intent` with these entities, like a typed message would."""
    payload = f"/{intent}"
    if entities:
        payload += json.dumps(entities, separators=(",", ":"))
    return {"title": title, "payload": payload}


def office_buttons(offices: List[OfficeRecord], intent: str) -> List[Dict[str, str]]:
    """One button for every office: a list never names more offices than can be chosen."""
    return [button(o.name, intent, office=o.id) for o in offices]


def service_buttons(services: List[ServiceRecord], intent: str) -> List[Dict[str, str]]:
    """One button for every service (never cut: the phone pages long lists)."""
    return [button(s.name, intent, service=s.id) for s in services]


def leave_task() -> List[Dict[str, Any]]:
    """The events that leave any form under way and forget the task's answers (what the conversation is about stays)."""
    return [ActiveLoop(None), SlotSet("requested_slot", None), *(SlotSet(name, None) for name in TASK_SLOTS)]


def first(value: Any) -> Any:
    """Slots filled from several entities arrive as lists; use the first one."""
    return value[0] if isinstance(value, list) and value else value


async def resolve_one(kind: str, text: Optional[str]) -> List[str]:
    """Catalogue ids that `text` may mean (an alias, a name or an id)."""
    if not text:
        return []
    return await call(backend().catalogue.resolve, kind, text)


def choices_offered_this_turn(tracker: Tracker) -> bool:
    """Whether a reply since the citizen's latest message already offered choices (buttons).

    A form's validation that finds an ambiguous answer asks "Do you mean A or B?" with buttons;
    the form's own question for the slot would then be a second question in the same turn.
    """
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return False
        if event.get("event") == "bot" and (event.get("data") or {}).get("buttons"):
            return True
    return False


class SlotQuestion(Action, ABC):
    """`action_ask_<slot>`: asks for one form slot in plain words (subclasses set slot and text)."""

    text: str = ""

    @property
    @abstractmethod
    def slot(self) -> str:
        """The slot this question fills."""

    def name(self) -> str:
        return f"action_ask_{self.slot}"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]) -> List[Dict[str, Any]]:
        dispatcher.utter_message(text=self.text)
        return []
