"""Conversation control: stopping any task, and patience when the assistant does not understand.

In a chat: the first miss asks to rephrase, the second hands over to a person. On a call, where
the keypad is always there: the first miss asks to rephrase, the second gives the main menu (every
task by keypad), the third hands over to a person (reason not_understood).
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import hand_off
from actions.menu import main_menu_buttons, send_main_menu
from actions.shared import TASK_SLOTS, abilities_of, leave_task  # noqa: F401 - TASK_SLOTS re-exported: the slots stop clears
from onewindow.infra.metrics import FALLBACKS
from onewindow.text.channel_wording import Prompt

LOW_CONFIDENCE_ACTION = "action_handle_low_confidence"
REPHRASE = Prompt(
    "Sorry, I did not understand that.",
    chat="Could you put it another way? For example: what do I need for a passport renewal?",
    voice="Could you say it another way? For example: what do I need for a passport renewal?",
    keypad="Please try again.",
)
REPHRASE_IN_TASK = Prompt(
    "Sorry, I did not understand that. Please answer my last question again,",
    chat="or type stop to leave this task.",
    voice="or say stop to leave this task.",
    keypad="or choose again.",
)
MENU_AFTER_MISSES = "Sorry, I still did not understand. Here is the main menu."
STOPPED = Prompt("All right, I have stopped. Nothing was booked or sent. What would you like to do now?")
STILL_NOT_SURE = "I am still not sure what you need, so I have asked a person from the service centre to help you."


def missed_turns(events: List[Dict[Text, Any]]) -> List[bool]:
    """For each of the citizen's messages in `events`, whether the assistant did not understand it.

    A message was not understood when NLU said so (intent nlu_fallback) or when no rule or form
    could answer it and the low-confidence action ran instead (Rasa's core fallback): both count.
    A turn the hotline handled itself (repeat, slower, more; metadata "handled") is neither.
    """
    missed: List[bool] = []
    for event in events:
        if event.get("event") == "user" and not (event.get("metadata") or {}).get("handled"):
            missed.append((event.get("parse_data", {}).get("intent") or {}).get("name") == "nlu_fallback")
        elif event.get("event") == "action" and event.get("name") == LOW_CONFIDENCE_ACTION and missed:
            missed[-1] = True
    return missed


def trailing_fallbacks(tracker: Tracker) -> int:
    """How many of the citizen's latest messages in a row the assistant did not understand (the current one included)."""
    turns = missed_turns(tracker.events)
    if turns:
        turns[-1] = True  # the message being handled now is not understood: this action runs for it
    count = 0
    for missed in reversed(turns):
        if not missed:
            break
        count += 1
    return count


def last_offered(tracker: Tracker) -> List[Dict[Text, Any]]:
    """The buttons of the assistant's last message before the citizen's latest one (none if it had none)."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            if seen_user:
                return []
            seen_user = True
        elif event.get("event") == "bot" and seen_user:
            return list((event.get("data") or {}).get("buttons") or [])
    return []


class ActionStop(Action):
    """Leave whatever task is under way; nothing is booked or sent."""

    def name(self) -> Text:
        return "action_stop"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(text=STOPPED.render(abilities_of(tracker)), buttons=main_menu_buttons())
        return leave_task()


class ActionHandleLowConfidence(Action):
    """The miss ladder: ask to rephrase; on a call then the main menu; then a person (see the module's docstring).

    This is the RulePolicy's core fallback (config.yml) as well as the answer to nlu_fallback (and
    to the hotline's "/nlu_fallback" when nothing usable was heard). Asking to rephrase, and the
    menu, end with UserUtteranceReverted, as Rasa's own fallback does: the conversation goes back to
    where it was before the message (a form stays at its question), so no rule is left to match and the
    policy does not pick this action again. Without it, a message no rule answers was apologised for
    ten times, until Rasa's circuit breaker stopped the turn without listening, after which every later
    message of the conversation was refused. The reverted messages still count as misses (missed_turns).
    """

    def name(self) -> Text:
        return LOW_CONFIDENCE_ACTION

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        abilities = abilities_of(tracker)
        misses = trailing_fallbacks(tracker)
        FALLBACKS.labels(kind="nlu" if tracker.get_intent_of_latest_message() == "nlu_fallback" else "core").inc()
        if misses <= 1:  # a caller hears the choices again (on a call they are gone once said), or else the main menu
            offered = (
                (last_offered(tracker) or ([] if tracker.active_loop_name else main_menu_buttons())) if abilities.on_call else []
            )
            dispatcher.utter_message(
                text=(REPHRASE_IN_TASK if tracker.active_loop_name else REPHRASE).render(abilities), buttons=offered
            )
            return [UserUtteranceReverted()]
        if abilities.on_call and misses == 2:
            send_main_menu(dispatcher, tracker, MENU_AFTER_MISSES)
            return [UserUtteranceReverted(), *leave_task()]
        # a form in progress is left; what the citizen already gave stays filled in, but not the missed message
        asked = tracker.get_slot("requested_slot")
        reason = "not_understood" if abilities.on_call else "low_confidence"
        return [*([SlotSet(asked, None)] if asked else []), *await hand_off(dispatcher, tracker, reason, 3, STILL_NOT_SURE)]
