"""Deleting conversations: one citizen's on request (/forget), and all older than the retention period (with the
failed record look-ups of that age)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import List, Optional

from sqlalchemy import delete
from sqlalchemy.engine import Engine

from onewindow.backend import ServiceBackend
from onewindow.rasa_plugins import events_table
from onewindow.storage import models


def forget_conversation(backend: ServiceBackend, tracker: Engine, sender_id: str) -> int:
    """Delete a conversation's stored events, staff review, NLU corrections and call transcripts.

    Returns how many tracker events were deleted. Appointments, applications, reports and the
    handoff records stay: they are the city's records of services given, not the conversation.
    """
    deleted = events_table.delete_conversation(tracker, sender_id)
    with backend.engine.begin() as connection:
        for table in (models.ConversationReview, models.NluCorrection, models.CallTranscript):
            connection.execute(delete(table).where(table.sender_id == sender_id))
    return deleted


def stale_conversations(tracker: Engine, days: int, now: Optional[datetime] = None) -> List[str]:
    """Senders whose last stored event is more than `days` old."""
    return events_table.senders_idle_since(tracker, ((now or datetime.now()) - timedelta(days=days)).timestamp())


@dataclass(frozen=True)
class Purge:
    """What a purge deleted: the conversations forgotten and how many failed record look-ups."""

    senders: List[str]
    lookups: int


def purge_lookups(backend: ServiceBackend, before: datetime) -> int:
    """Delete the failed record look-ups (`record_lookups`) stored before `before` (UTC); returns how many."""
    with backend.engine.begin() as connection:
        return connection.execute(delete(models.RecordLookup).where(models.RecordLookup.at < before)).rowcount


def purge_older_than(backend: ServiceBackend, tracker: Engine, days: int, now: Optional[datetime] = None) -> Purge:
    """Forget every conversation idle for more than `days` and the failed look-ups older than that (`now`: local time)."""
    if days < 1:
        raise ValueError("the retention period must be at least 1 day")
    senders = stale_conversations(tracker, days, now)
    for sender_id in senders:
        forget_conversation(backend, tracker, sender_id)
    cutoff = datetime.utcfromtimestamp(((now or datetime.now()) - timedelta(days=days)).timestamp())
    return Purge(senders, purge_lookups(backend, cutoff))
