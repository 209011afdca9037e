"""The staff side of a handoff: the queue, claiming, replying, notes, resolving and handing back.

Used by the staff console. Every change keeps the two sides in step: the handoff row (the
queue staff see) and the conversation in Rasa (its `handoff_active` slot and the transcript,
through Rasa's HTTP API). A staff reply reaches the citizen on their own channel
(onewindow/channels/outbound.py) and is stored in the transcript as a `bot` event with
metadata {"staff": username}. When the queue moves, each waiting citizen whose place changed
is told their new place and wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Dict, List

from onewindow.backend import ServiceBackend
from onewindow.backend.handoffs import HANDOFF_SLOT, HandoffNotFound, HandoffStateError, wait_for_place
from onewindow.backend.records import DeskMessage, QueueItem
from onewindow.channels.outbound import OutboundChannels
from onewindow.channels.rasa_client import RasaUnavailable, append_events
from onewindow.infra.logs import log_event, pseudonym
from onewindow.settings import checked_api_secret

__all__ = [
    "DeskMessage",
    "HandoffNotFound",
    "HandoffStateError",
    "OUTCOMES",
    "QueueItem",
    "StaffDesk",
    "queue_place_text",
    "tell_queue_moves",
]
logger = logging.getLogger(__name__)
OUTCOMES = ("answered", "booked", "referred to an office", "callback arranged", "no reply from citizen")
MAX_REPLY = 4000  # a Telegram message holds 4,096 characters
BACK_TEXT = (
    "You are back with the assistant: the person from the service centre has handed our conversation "
    "back to me. What can I do for you?"
)
RESOLVED_TEXT = (
    "The person from the service centre has closed this conversation. Thank you for your patience. "
    "You are back with the assistant: ask me anything, or ask for a person again."
)


def queue_place_text(position: int, wait_minutes: int) -> str:
    minutes = "1 minute" if wait_minutes == 1 else f"{wait_minutes} minutes"
    return f"You are number {position} in the queue, and the wait is about {minutes}."


async def tell_queue_moves(backend: ServiceBackend, outbound: OutboundChannels) -> int:
    """Tell each waiting citizen whose place changed since they were last told; returns how many were told.

    A citizen who cannot be reached now (a REST client, a caller) is told at their next message.
    """
    moved = [
        (h, h.position_in_queue)
        for h in await asyncio.to_thread(backend.handoffs.waiting)
        if h.position_in_queue is not None and h.position_in_queue != h.notified_position
    ]
    if not moved:
        return 0
    per_place = await asyncio.to_thread(backend.handoffs.minutes_per_place)  # one query for all of them
    told = 0
    for handoff, place in moved:
        text = "An update on your request: " + queue_place_text(place, wait_for_place(place, per_place))
        if await outbound.deliver(handoff.sender_id, text):
            await asyncio.to_thread(backend.handoffs.mark_notified, handoff.reference, place)
            told += 1
    return told


def hold_event(active: bool) -> Dict[str, Any]:
    """Set the conversation's `handoff_active` slot (onewindow/rasa_plugins/handoff_policy.py keeps the assistant quiet while true)."""
    return {"event": "slot", "name": HANDOFF_SLOT, "value": active, "timestamp": time.time()}


def staff_event(text: str, username: str) -> Dict[str, Any]:
    """A `bot` event for the transcript: what a person said to the citizen."""
    return {"event": "bot", "text": text, "metadata": {"staff": username}, "timestamp": time.time()}


class StaffDesk:
    def __init__(self, backend: ServiceBackend, rasa_url: str, outbound: OutboundChannels, api_secret: str) -> None:
        """`rasa_url`: Rasa's HTTP API (HAProxy's internal listener); `api_secret` signs its tokens (RASA_JWT_SECRET)."""
        self.backend = backend
        self.rasa_url = rasa_url.rstrip("/")
        self.api_secret = checked_api_secret(api_secret)
        self.outbound = outbound

    async def queue(self) -> List[QueueItem]:
        """Open and claimed handoffs, highest priority first, then oldest first."""
        return await asyncio.to_thread(self.backend.handoffs.queue)

    async def get(self, reference: str) -> QueueItem:
        return await asyncio.to_thread(self.backend.handoffs.get, reference)

    async def claim(self, reference: str, username: str) -> QueueItem:
        """Take the handoff; the citizen's assistant now stays quiet and the others move up the queue."""
        item = await asyncio.to_thread(self.backend.handoffs.claim, reference, username)
        await tell_queue_moves(self.backend, self.outbound)
        return item

    async def reply(self, reference: str, username: str, text: str) -> bool:
        """Send a reply to the citizen (claiming the handoff if still open); True when their channel took it."""
        text = _checked(text)
        item = await self.claim(reference, username)
        delivered = await self.outbound.deliver(item.sender_id, text)
        await asyncio.to_thread(self.backend.handoffs.add_message, reference, "reply", username, text, delivered)
        # the slot again, in case the conversation's session expired (and its slots with it) while waiting
        await self._record_in_conversation(item.sender_id, [hold_event(True), staff_event(text, username)])
        return delivered

    async def note(self, reference: str, username: str, text: str) -> None:
        """An internal note: staff see it, the citizen never does."""
        await asyncio.to_thread(self.backend.handoffs.add_message, reference, "note", username, _checked(text))

    async def resolve(self, reference: str, username: str, outcome: str) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        await self._close(reference, username, "resolved", outcome, RESOLVED_TEXT)

    async def hand_back(self, reference: str, username: str) -> None:
        """The assistant answers the citizen again."""
        await self._close(reference, username, "returned", None, BACK_TEXT)

    def expected_wait_minutes(self, position: int) -> int:
        return self.backend.handoffs.expected_wait_minutes(position)

    def queue_version(self) -> str:
        """Changes whenever anything in the queue changes (for live updates)."""
        return self.backend.handoffs.version()

    async def _close(self, reference: str, username: str, status: str, outcome: Any, text: str) -> None:
        item = await asyncio.to_thread(self.backend.handoffs.close, reference, username, status, outcome)
        await self.outbound.deliver(item.sender_id, text)
        events = [hold_event(False), staff_event(text, username)]
        await self._record_in_conversation(item.sender_id, events)
        await tell_queue_moves(self.backend, self.outbound)

    async def _record_in_conversation(self, sender_id: str, events: List[Dict[str, Any]]) -> None:
        """Append to the conversation in Rasa. If Rasa is unreachable the row still holds the truth: the
        assistant's waiting action sees a closed handoff at the citizen's next message and hands back then."""
        try:
            await append_events(self.rasa_url, self.api_secret, sender_id, events)
        except RasaUnavailable as error:
            log_event(logger, "staff_desk.rasa_unavailable", level=logging.ERROR, exc_info=error, sender=pseudonym(sender_id))


def _checked(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise ValueError("the message is empty")
    if len(text) > MAX_REPLY:
        raise ValueError(f"the message is longer than {MAX_REPLY} characters")
    return text
