"""The proof step of the forms that show or change a citizen's record (appointments, applications).

Every look-up goes through `backend().ownership` (onewindow/backend/ownership.py); these pieces turn
its verdicts into questions and answers. The slot `record_proof` holds the last four digits the
citizen gave, or LINKED when the channel's identity proved it, or REFUSED when the gate said no
(too many failures, or no phone number to check against): then the form ends and the final action
offers the office and a person.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.shared import abilities_of, backend, button, call, first, requester_of
from onewindow.backend.ownership import Verdict
from onewindow.text.channel_wording import Prompt

DomainDict = Dict[Text, Any]
Slots = Dict[Text, Any]
LINKED, REFUSED = "linked", "refused"
PROOF_SLOT = "record_proof"
NOUNS = {"appointment": "appointment", "application": "application"}
FORMATS = {
    "appointment": "It is B K and ten digits, for example B K 4 8 2 9 1 3 7 5 0 6.",
    "application": "It is A P P and ten digits, for example A P P 4 8 2 9 1 3 7 5 0 6.",
}
ASK_PROOF = Prompt(
    "To keep your {noun} private, I need the last four digits of the phone number on the {noun}.",
    chat="Please type them.",
    voice="Please say them, or key them in.",
    keypad="Please key them in.",
)
_FOUR = r"(\d(?:[ -]?\d){3})(?![ -]?\d)"
# "ends in 4957", "ending 4 9 5 7", "finishes with 4957", "the last four digits are 4957", "last digits: 4957",
# "my phone (number) is 06 1234 4957" (its last four); a record's reference is removed first
PROOF_PHRASES = (
    re.compile(r"\b(?:end|finish)(?:s|es|ing|ed)?\s+(?:(?:in|with|on)\s+)?" + _FOUR, re.IGNORECASE),
    re.compile(
        r"\blast\s+(?:(?:four|4)(?:\s+(?:digits?|numbers?|figures?))?|digits|numbers)(?:\s+of\s+(?:my|the)\s+(?:phone|mobile|number)(?:\s+number)?)?"
        r"\s*(?:are|is|:|-|=)?\s*" + _FOUR,
        re.IGNORECASE,
    ),
    re.compile(
        r"\b(?:phone|mobile|cell|telephone)(?:\s+number)?(?:\s+is|:)?\s+(\+?\d(?:[ -]?\d){5,14})(?![ -]?\d)", re.IGNORECASE
    ),
)
REFERENCE = re.compile(r"\b(?:bk|app|rpt)[- ]?[0-9](?:[- ]?[0-9]){5}(?:(?:[- ]?[0-9]){4})?(?![0-9])", re.IGNORECASE)


def proof_digits(text: str) -> Optional[str]:
    """The four proof digits a message states ("my phone number ends in 4957"), never a reference's own digits."""
    text = REFERENCE.sub(" ", text or "")
    for phrase in PROOF_PHRASES:
        match = phrase.search(text)
        if match:
            return "".join(ch for ch in match.group(1) if ch.isdigit())[-4:]
    return None


MISTYPED = "That number has a mistake: one digit is wrong or two digits are swapped. Please check it and give it again."


def refusal(dispatcher: CollectingDispatcher, kind: str) -> None:
    """No details without proof: the way forward is the office or a person."""
    dispatcher.utter_message(
        text=(
            f"For your security I cannot show or change this {NOUNS[kind]} here. "
            "Please visit a service centre with photo identification, or talk to a person."
        ),
        buttons=[button("Talk to a person", "request_human"), button("Find an office", "find_office")],
    )


async def gate(dispatcher: CollectingDispatcher, tracker: Tracker, kind: str, slot: str) -> Optional[Verdict]:
    """The granted verdict for the record in `slot`, or None after telling the citizen the way forward."""
    verdict = await call(backend().ownership.check, kind, tracker.get_slot(slot), requester_of(tracker))
    if verdict.granted:
        return verdict
    refusal(dispatcher, kind)
    return None


class RecordProof:
    """Form validation for a reference slot and the proof slot (subclasses set kind, reference_slot, fetch)."""

    kind: str = ""
    reference_slot: str = ""

    def fetch(self) -> Callable[..., Tuple[Verdict, Any]]:
        """The backend's owner-checked look-up of this kind of record."""
        raise NotImplementedError

    def unknown_text(self, code: str) -> str:
        """What to say when no record has this reference."""
        raise NotImplementedError

    def accepted(self, record: Any, dispatcher: CollectingDispatcher) -> Slots:
        """Slots to set once the record is proven the citizen's (hook; nothing by default)."""
        return {}

    async def required_slots(
        self, domain_slots: List[Text], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Text]:
        """No further questions once the gate refused: the final action offers the office and a person."""
        return [] if tracker.get_slot(PROOF_SLOT) == REFUSED else domain_slots

    async def _look_up(self, tracker: Tracker, reference: Any, proof: Optional[str]) -> Tuple[Verdict, Any]:
        requester = replace(requester_of(tracker), proof=proof)
        return await call(self.fetch(), str(first(reference)), requester)

    async def check_reference(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Slots:
        """A reference through the gate: proven already (linked chat or caller, earlier digits), or ask for proof.

        Digits given in this same message are checked by `validate_record_proof`, once (a wrong guess counts once).
        """
        fresh = PROOF_SLOT in tracker.slots_to_validate()
        verdict, record = await self._look_up(tracker, value, None if fresh else tracker.get_slot(PROOF_SLOT))
        if verdict.reason in ("malformed", "mistyped", "unknown"):
            text = {
                "malformed": f"That does not look like an {NOUNS[self.kind]} number. {FORMATS[self.kind]}",
                "mistyped": MISTYPED,
            }
            dispatcher.utter_message(text=text.get(verdict.reason) or self.unknown_text(verdict.reference or ""))
            return {self.reference_slot: None}
        if verdict.reason in ("limited", "no_owner"):
            return {self.reference_slot: verdict.reference, PROOF_SLOT: REFUSED}
        if not verdict.granted:  # needs_proof, or earlier digits that do not fit this record
            return {self.reference_slot: verdict.reference, **({} if fresh else {PROOF_SLOT: None})}
        proof = LINKED if verdict.reason == "linked" else tracker.get_slot(PROOF_SLOT)
        return {self.reference_slot: verdict.reference, PROOF_SLOT: proof, **self.accepted(record, dispatcher)}

    async def extract_record_proof(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Slots:
        """Proof digits said before they are asked ("BK-48291-37506, my phone ends in 4957"): not asked again."""
        if tracker.get_slot(PROOF_SLOT) or tracker.get_slot("requested_slot") == PROOF_SLOT:
            return {}
        digits = proof_digits(tracker.latest_message.get("text") or "")
        return {PROOF_SLOT: digits} if digits else {}

    async def validate_record_proof(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Slots:
        """The last four digits of the phone number on the record, typed, said or keyed."""
        said = str(first(value))
        if said == LINKED:  # kept from an earlier task of this conversation: still only if the channel's identity proves it
            verdict, record = await self._look_up(tracker, tracker.get_slot(self.reference_slot), None)
            return {PROOF_SLOT: LINKED, **self.accepted(record, dispatcher)} if verdict.reason == "linked" else {PROOF_SLOT: None}
        digits = proof_digits(said) or "".join(ch for ch in said if ch.isdigit())
        if len(digits) != 4:
            dispatcher.utter_message(
                text="Please give four digits: the last four digits of the phone number. If you do not know it, you can talk to a person.",
                buttons=[button("Talk to a person", "request_human")],
            )
            return {PROOF_SLOT: None}
        if not tracker.get_slot(self.reference_slot):
            return {PROOF_SLOT: digits}  # checked with the reference once it is given
        verdict, record = await self._look_up(tracker, tracker.get_slot(self.reference_slot), digits)
        if verdict.granted:
            return {PROOF_SLOT: digits, **self.accepted(record, dispatcher)}
        if verdict.reason == "wrong_proof":
            dispatcher.utter_message(
                text=f"Those digits do not match the phone number on this {NOUNS[self.kind]}. Please try again."
            )
            return {PROOF_SLOT: None}
        return {PROOF_SLOT: REFUSED}


class ActionAskRecordProof(Action):
    """Asks for the last four digits of the phone number on the appointment or application."""

    def name(self) -> Text:
        return "action_ask_record_proof"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        noun = "application" if tracker.active_loop_name == "status_form" else "appointment"
        dispatcher.utter_message(text=ASK_PROOF.render(abilities_of(tracker), noun=noun))
        return []


FORGET_PROOF = [SlotSet(PROOF_SLOT, None)]
