"""The REST channel with OneWindow's input checks; registered as `rest` in credentials.yml."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from functools import lru_cache
from typing import Any, Awaitable, Callable, Dict, Optional, Set

from rasa.core.channels.channel import CollectingOutputChannel, OutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, Sanic
from sanic.exceptions import InvalidUsage
from sanic.request import Request
from sqlalchemy.exc import SQLAlchemyError

from onewindow.channels.input_guard import input_problem
from onewindow.channels.payloads import button_payloads, citizen_text, is_payload, offered_payloads
from onewindow.channels.senders import channel_of_sender
from onewindow.infra.logs import pseudonym
from onewindow.infra.metrics import MESSAGES, TURN_SECONDS
from onewindow.text.channel_wording import CHAT, Abilities, abilities_for
from onewindow.text.wording import technical_apology

logger = logging.getLogger(__name__)
GENERIC_HOTLINE = "the number on the city's website"


@lru_cache(maxsize=1)
def hotline_number() -> str:
    """The city hotline from the service database (read once); a generic hint when it cannot be read."""
    from onewindow.backend import ServiceBackend

    try:
        return ServiceBackend.from_url().catalogue.city().hotline_number
    except (SQLAlchemyError, LookupError, AttributeError):
        hotline_number.cache_clear()  # try again at the next apology
        return GENERIC_HOTLINE


MAX_SENDER_LENGTH = 200


def body_problem(body: Any) -> Optional[str]:
    """Why a REST channel body cannot be a message: a JSON object with a non-empty text "sender" (no shared
    "default" conversation for bodies without one), text or nothing as "message", an object as "metadata"."""
    if not isinstance(body, dict):
        return 'the body must be a JSON object: {"sender": "<conversation id>", "message": "<text>"}'
    sender = body.get("sender")
    if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_LENGTH:
        return f"'sender' must be text of 1 to {MAX_SENDER_LENGTH} characters"
    if body.get("metadata") is not None and not isinstance(body["metadata"], dict):
        return "'metadata' must be a JSON object"
    if body.get("input_channel") is not None and not isinstance(body["input_channel"], str):
        return "'input_channel' must be text"
    return None


class CountingOutputChannel(OutputChannel):
    """Passes every response on to `inner` and counts them, so an empty turn can be noticed; keeps the buttons' payloads.

    Its name is the citizen's mode (chat, voice or keypad, onewindow/text/channel_wording.py): Rasa picks
    a domain response's `channel:` variation by the output channel's name.
    """

    def __init__(self, inner: OutputChannel, mode: str = CHAT) -> None:
        self.inner = inner
        self.mode = mode
        self.sent = 0
        self.payloads: Set[str] = set()

    def name(self) -> str:
        return self.mode

    async def send_response(self, recipient_id: str, message: Dict[str, Any]) -> None:
        self.sent += 1
        self.payloads |= button_payloads(message)
        await self.inner.send_response(recipient_id, message)

    def withdraw(self) -> None:
        """Take back what a failed turn collected and has not delivered (a reply whose turn was not stored)."""
        if isinstance(self.inner, CollectingOutputChannel):
            self.inner.messages.clear()
            self.sent, self.payloads = 0, set()


class OfferedPayloads:
    """The button payloads this server offered to its recent conversations, with the tracker store behind it.

    A press of a button this server just sent is recognised without reading the conversation; any
    other payload (offered by another instance, or earlier than this server remembers) is looked
    up in the conversation's current session.
    """

    def __init__(self, conversations: int = 10_000) -> None:
        self.conversations = conversations
        self._offered: "OrderedDict[str, Set[str]]" = OrderedDict()

    def remember(self, sender_id: str, payloads: Set[str]) -> None:
        if payloads:
            self._offered[sender_id] = self._offered.pop(sender_id, set()) | payloads
            while len(self._offered) > self.conversations:
                self._offered.popitem(last=False)

    async def of(self, sender_id: str, payload: str) -> Set[str]:
        """The payloads offered to `sender_id`, read from the stored conversation when `payload` is not among those remembered."""
        remembered = self._offered.get(sender_id, set())
        if payload in remembered:
            return remembered
        tracker = await Sanic.get_app().ctx.agent.tracker_store.retrieve(sender_id)
        return offered_payloads(event.as_dict() for event in tracker.events) if tracker else set()


class GuardedRestInput(RestInput):
    """Rasa's REST channel, but empty, over-long or unreadable messages get a clear reply, and no turn is silent.

    Text starting with "/" is taken as an intent payload only when the assistant offered it
    (onewindow/channels/payloads.py); otherwise it is read as typed words.

    A turn that produced no response at all (the action server down, a lock or database error, a
    timeout) gets the technical apology with the hotline instead of Rasa's `[]`; so does a turn that failed
    after collecting replies (its tracker was not saved): those replies are withdrawn. The error is logged
    without the message text.
    """

    @classmethod
    def name(cls) -> str:
        return "rest"

    async def _extract_sender(self, req: Request) -> Optional[str]:
        """The sender, after checking the body's shape (Rasa's channel reads it with `.get` and answers 500 otherwise)."""
        problem = body_problem(req.json)
        if problem:
            raise InvalidUsage(problem)
        return req.json["sender"]

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        offered = OfferedPayloads()

        async def guarded(message: UserMessage) -> None:
            channel = channel_of_sender(message.sender_id)
            MESSAGES.labels(channel=channel).inc()
            with TURN_SECONDS.labels(channel=channel).time():
                await guarded_turn(message)

        async def guarded_turn(message: UserMessage) -> None:
            abilities = abilities_for(message.sender_id, message.metadata if isinstance(message.metadata, dict) else None)
            counting = CountingOutputChannel(message.output_channel, abilities.mode)
            message.output_channel = counting
            try:
                await answer(message, abilities)
            except asyncio.CancelledError:
                logger.error("rest.turn_cancelled", extra={"fields": {"sender": pseudonym(message.sender_id)}})
            except Exception:  # whatever broke, the citizen gets an answer; the traceback is logged
                logger.exception("rest.turn_failed", extra={"fields": {"sender": pseudonym(message.sender_id)}})
                # the turn was not stored (e.g. the tracker database went away before its save): replies it collected
                # would answer a message the conversation does not hold, so the citizen gets the apology instead
                counting.withdraw()
            if counting.sent == 0:
                logger.error("rest.turn_without_answer", extra={"fields": {"sender": pseudonym(message.sender_id)}})
                await counting.inner.send_text_message(message.sender_id, technical_apology(hotline_number(), abilities))
            offered.remember(message.sender_id, counting.payloads)

        async def answer(message: UserMessage, abilities: Abilities) -> None:
            if isinstance(message.text, str) and is_payload(message.text):
                message.text = citizen_text(message.text, await offered.of(message.sender_id, message.text))
            problem = input_problem(message.text, abilities)
            if problem:
                await message.output_channel.send_response(message.sender_id, {"text": problem})
                return
            await on_new_message(message)

        return super().blueprint(guarded)
