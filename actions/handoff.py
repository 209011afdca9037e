"""Handing a conversation to a person, and what the assistant does while a person has it.

Every trigger goes through `hand_off`: it records the handoff (reason, channel, summary,
priority), sets the `handoff_active` slot and tells the citizen their place, the expected wait
and the staff hours, or outside staff hours the offline path (an office, the hotline, a call
back). Its answer carries the structured signal `{"handoff": {...}}` that channels act on
(the phone call transfers on it). While `handoff_active` is true, onewindow/rasa_plugins/handoff_policy.py
sends every message to `action_handoff_waiting`; a new Rasa session gets the slot back from
`action_session_start` (actions/session.py) while the handoff is open.

Triggers (reason, priority): citizen_request 2 (asking for a person), keypad 2 (a caller
pressing 0), silence 2 (a caller silent after the hotline's reprompts), low_confidence 3 (a chat
not understood twice) and not_understood 3 (a caller, three times; actions/conversation.py),
urgent_report 1 (actions/reports.py), distress 1 (`action_handle_distress`). A caller whose
number is linked to a Telegram chat also gets the request number in that chat.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.shared import abilities_of, backend, button, call, channel_of, latest_metadata, now, requester_of
from onewindow.backend.citizens import normalise_phone
from onewindow.backend.handoffs import HANDOFF_SLOT
from onewindow.backend.records import CityRecord, HandoffRecord, OfficeRecord
from onewindow.backend.staff_desk import queue_place_text, tell_queue_moves
from onewindow.backend.staff_hours import staff_hours, staff_hours_text, staff_working, when_staff_reply
from onewindow.channels.outbound import OutboundChannels
from onewindow.text.channel_wording import Prompt
from onewindow.text.wording import week_text

SUMMARY_TURNS = 6
KEPT_FOR_STAFF = "I have kept your message for the person who will reply here."
SUMMARY_SLOTS = ("service", "office", "life_event", "appointment_reference", "application_reference", "report_category")
ASK_CALLBACK, ASK_NUMBER = "callback", "callback_number"  # what the last handoff answer asked (`asking` in its payload)
EMERGENCY = (
    "If you or someone else is in danger or hurt right now, please call emergency services straight away. "
    "I have asked a person from the service centre to contact you first."
)


def conversation_summary(tracker: Tracker) -> Dict[str, Any]:
    """What the citizen asked, the slots collected and the last turns, for the person taking over."""
    turns = [
        {"from": "citizen" if e["event"] == "user" else "bot", "text": e.get("text") or ""}
        for e in tracker.events
        if e.get("event") in ("user", "bot") and e.get("text")
    ][-SUMMARY_TURNS:]
    asked = [
        e["parse_data"]["intent"].get("name")
        for e in tracker.events
        if e.get("event") == "user" and e.get("parse_data", {}).get("intent")
    ]
    slots = {name: tracker.get_slot(name) for name in SUMMARY_SLOTS if tracker.get_slot(name)}
    return {"intents": asked[-SUMMARY_TURNS:], "slots": slots, "last_turns": turns}


async def staff_back() -> str:
    """ "on Monday from 8 am": when staff next answer (for a call back or a reply out of hours)."""
    city = await call(backend().catalogue.city)
    return when_staff_reply(staff_hours(city), now())


def handoff_payload(handoff: HandoffRecord, wait: Optional[int], asking: Optional[str] = None) -> Dict[str, Any]:
    """The structured signal channels act on (never the wording)."""
    signal = {
        "state": "waiting" if handoff.status == "open" else "with_staff",
        "reference": handoff.reference,
        "position": handoff.position_in_queue,
        "wait_minutes": wait,
        "reason": handoff.reason,
        "priority": handoff.priority,
    }
    return {"handoff": {**signal, "asking": asking} if asking else signal}


async def expected_wait(handoff: HandoffRecord) -> Optional[int]:
    place = handoff.position_in_queue
    return await call(backend().handoffs.expected_wait_minutes, place) if place else None


def place_text(handoff: HandoffRecord, wait: Optional[int], working: bool) -> str:
    if handoff.position_in_queue is None:
        return "A person already has your conversation and will reply here."
    if working and wait:
        return queue_place_text(handoff.position_in_queue, wait)
    return f"You are number {handoff.position_in_queue} in the queue."


async def office_to_visit(tracker: Tracker) -> Optional[OfficeRecord]:
    """The office talked about, or else the first district service centre."""
    if tracker.get_slot("office"):
        office = await call(backend().catalogue.office, tracker.get_slot("office"))
        if office:
            return office
    offices = await call(backend().catalogue.offices)
    return next((o for o in offices if o.kind == "service_centre"), offices[0] if offices else None)


HANDED_OFF = Prompt(
    "{opening} Your request number is {reference}. {place}",
    chat="They will reply here, and they can see what we talked about. {hours}",
    voice="They can see what we talked about. {hours}",
    keypad="They can see what we talked about. {hours}",
)
OTHER_WAYS = Prompt(chat="You can also call the city hotline on {hotline}, or visit any service centre.")
LEAVE_QUEUE = Prompt(chat="To leave the queue, type stop.", voice="To leave the queue, say stop.")
OFFLINE_PATH = Prompt(
    "In the meantime, {visit}",
    chat="call the city hotline on {hotline} during the staff hours. Would you like a person to call you back when staff are back?",
    voice="call again during the staff hours. Would you like a person to call you back when staff are back?",
    keypad="call again during the staff hours. Would you like a person to call you back when staff are back?",
)
WHICH_NUMBER = Prompt(
    "Which number should we call?",
    chat="Please type it.",
    voice="Please say it, or key it in.",
    keypad="Please key it in.",
)
TOLD_IN_CHAT = (
    "Your call to the city hotline was passed to a person. Your request number is {reference}. "
    "They can see what you talked about."
)
REASONS_BY_INPUT = {"keypad": "keypad", "silence": "silence"}  # the hotline's metadata: a key pressed, or silence


async def offline_path(tracker: Tracker, city: CityRecord) -> str:
    office = await office_to_visit(tracker)
    visit = f"you can visit the {office.name}, {office.address}. Its hours are: {week_text(office.hours)} Or " if office else ""
    return OFFLINE_PATH.render(abilities_of(tracker), visit=visit, hotline=city.hotline_number)


async def tell_linked_chats(tracker: Tracker, handoff: HandoffRecord) -> None:
    """A caller whose number is linked to a chat gets the request number there too, to keep."""
    identity = requester_of(tracker).identity
    if identity is None or identity[0] != "phone":
        return
    phone = await call(linked_phone, tracker)
    chats = await call(backend().citizens.chats_for_phone, phone) if phone else []
    outbound = OutboundChannels.from_environment()
    for chat in chats:
        await outbound.deliver(f"telegram:{chat}", TOLD_IN_CHAT.format(reference=handoff.reference))


async def hand_off(
    dispatcher: CollectingDispatcher, tracker: Tracker, reason: str, priority: int, opening: str
) -> List[EventType]:
    """Record a handoff and tell the citizen what happens next; the events that put the conversation on hold."""
    handoff = await call(
        backend().handoffs.request, tracker.sender_id, channel_of(tracker), reason, conversation_summary(tracker), priority
    )
    city, moment = await call(backend().catalogue.city), now()
    working = staff_working(staff_hours(city), moment)
    wait = await expected_wait(handoff)
    abilities = abilities_of(tracker)
    text = (
        HANDED_OFF.render(
            abilities,
            opening=opening,
            reference=handoff.reference,
            place=place_text(handoff, wait, working),
            hours=staff_hours_text(staff_hours(city), moment),
        )
        + " "
    )
    if working:
        text += OTHER_WAYS.render(abilities, hotline=city.hotline_number)
        text += " " + LEAVE_QUEUE.render(abilities) if handoff.status == "open" else ""
        dispatcher.utter_message(text=" ".join(text.split()), json_message=handoff_payload(handoff, wait))
    else:
        dispatcher.utter_message(
            text=text + await offline_path(tracker, city),
            buttons=[button("Yes, call me back", "affirm"), button("No, I will wait for a reply here", "deny")],
            json_message=handoff_payload(handoff, wait, asking=ASK_CALLBACK),
        )
    await call(backend().handoffs.mark_notified, handoff.reference, handoff.position_in_queue)
    await tell_linked_chats(tracker, handoff)
    leave_form = [ActiveLoop(None), SlotSet("requested_slot", None)] if tracker.active_loop_name else []
    return [*leave_form, SlotSet(HANDOFF_SLOT, True)]


class ActionRequestHuman(Action):
    """The citizen asks for a person, or a caller presses 0 (the phone sends input "keypad")."""

    def name(self) -> Text:
        return "action_request_human"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        reason = REASONS_BY_INPUT.get(latest_metadata(tracker).get("input", ""), "citizen_request")
        return await hand_off(dispatcher, tracker, reason, 2, "I have asked a person from the service centre to help you.")


class ActionHandleDistress(Action):
    """Words about self-harm, violence or danger: the emergency line first, then a person, first in the queue."""

    def name(self) -> Text:
        return "action_handle_distress"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        return await hand_off(dispatcher, tracker, "distress", 1, EMERGENCY)


def last_question(tracker: Tracker) -> Optional[str]:
    """What the assistant's last message asked about a call back (from its handoff payload), if anything."""
    for event in reversed(tracker.events):
        if event.get("event") == "bot":
            signal = ((event.get("data") or {}).get("custom") or {}).get("handoff") or {}
            return signal.get("asking")
    return None


def linked_phone(tracker: Tracker) -> Optional[str]:
    """The citizen's number when a channel adapter vouched for who is talking: linked to their chat, or the caller's own."""
    identity = requester_of(tracker).identity  # an unsigned "telegram:<id>" must not learn a linked number's digits
    if identity is None:
        return None
    channel, external_id = identity
    linked = backend().citizens.phone_for_identity(channel, external_id)
    return linked or (normalise_phone(external_id) if channel == "phone" else None)


class ActionHandoffWaiting(Action):
    """Every message while a person has the conversation: the assistant stays quiet but for the queue.

    It answers with the handoff payload and, while the citizen waits, a short text: their place and
    the wait (said first when the place changed, or when they ask for a person again), or about a
    call back. Once a person has claimed the conversation only the payload: the person answers.
    "stop" leaves the queue while nobody has claimed the conversation.
    """

    def name(self) -> Text:
        return "action_handoff_waiting"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        handoff = await call(backend().handoffs.active, tracker.sender_id)
        if handoff is None:  # closed while Rasa could not be told (the row is the truth), or forgotten
            dispatcher.utter_message(text="You are back with the assistant. What can I do for you?")
            return [SlotSet(HANDOFF_SLOT, False)]
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent == "stop" and handoff.status == "open":
            return await self._leave_queue(dispatcher, handoff)
        wait = await expected_wait(handoff)
        asking = last_question(tracker)
        if asking == ASK_CALLBACK and intent in ("affirm", "deny"):
            return await self._callback(dispatcher, tracker, handoff, wait, intent == "affirm")
        if asking == ASK_NUMBER:
            return await self._callback_number(dispatcher, tracker, handoff, wait)
        moved = handoff.position_in_queue is not None and handoff.position_in_queue != handoff.notified_position
        if moved or intent == "request_human" or handoff.status == "open":
            city = await call(backend().catalogue.city)
            hours, moment = staff_hours(city), now()
            place = place_text(handoff, wait, staff_working(hours, moment))
            # never silence while waiting: the message is kept for the person who will reply
            text = place if moved or intent == "request_human" else f"{KEPT_FOR_STAFF} {place}"
            text += f" {staff_hours_text(hours, moment)}" if intent == "request_human" else ""
            dispatcher.utter_message(text=text, json_message=handoff_payload(handoff, wait))
            await call(backend().handoffs.mark_notified, handoff.reference, handoff.position_in_queue)
        else:  # a person is talking with the citizen, and answers
            dispatcher.utter_message(json_message=handoff_payload(handoff, wait))
        return []

    @staticmethod
    async def _leave_queue(dispatcher: CollectingDispatcher, handoff: HandoffRecord) -> List[EventType]:
        await call(backend().handoffs.withdraw, handoff.sender_id)
        dispatcher.utter_message(
            text="All right, you have left the queue, so no person will reply. I am here again: what can I do for you?"
        )
        await tell_queue_moves(backend(), OutboundChannels.from_environment())
        return [SlotSet(HANDOFF_SLOT, False)]

    @staticmethod
    async def _callback(
        dispatcher: CollectingDispatcher, tracker: Tracker, handoff: HandoffRecord, wait: Optional[int], wanted: bool
    ) -> List[EventType]:
        if not wanted:
            dispatcher.utter_message(
                text=f"All right. A person will reply here {await staff_back()}.", json_message=handoff_payload(handoff, wait)
            )
            return []
        phone = await call(linked_phone, tracker)
        if phone is None:
            dispatcher.utter_message(
                text=WHICH_NUMBER.render(abilities_of(tracker)), json_message=handoff_payload(handoff, wait, asking=ASK_NUMBER)
            )
            return []
        await call(backend().handoffs.request_callback, handoff.reference, phone)
        dispatcher.utter_message(
            text=f"A person will call you on your number ending in {phone[-2:]} {await staff_back()}.",
            json_message=handoff_payload(handoff, wait),
        )
        return []

    @staticmethod
    async def _callback_number(
        dispatcher: CollectingDispatcher, tracker: Tracker, handoff: HandoffRecord, wait: Optional[int]
    ) -> List[EventType]:
        phone = next((normalise_phone(value) for value in tracker.get_latest_entity_values("phone")), None)
        if phone is None:
            dispatcher.utter_message(
                text=f"I could not find a phone number in that, so a person will reply here {await staff_back()}.",
                json_message=handoff_payload(handoff, wait),
            )
            return []
        await call(backend().handoffs.request_callback, handoff.reference, phone)
        dispatcher.utter_message(
            text=f"Thank you. A person will call you on the number ending in {phone[-2:]} {await staff_back()}.",
            json_message=handoff_payload(handoff, wait),
        )
        return []
