"""Requests for a person to take over a conversation (the staff side reads these)."""
from __future__ import annotations

import logging
from typing import Any, Dict

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from onewindow import models
from onewindow.backend.records import HandoffRecord
from onewindow.backend.references import unused_reference
from onewindow.logs import log_event, pseudonym

logger = logging.getLogger(__name__)


class Handoffs:
    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions

    def request(
        self, sender_id: str, channel: str, reason: str, summary: Dict[str, Any], priority: int = 2
    ) -> HandoffRecord:
        """Open a handoff for this conversation, or return the one already open."""
        with self._sessions.begin() as session:
            handoff = session.scalars(
                select(models.HandoffRequest).where(
                    models.HandoffRequest.sender_id == sender_id,
                    models.HandoffRequest.status == "open",
                )
            ).first()
            if handoff is None:
                handoff = models.HandoffRequest(
                    reference=unused_reference(session, models.HandoffRequest, "handoff"),
                    sender_id=sender_id,
                    channel=channel,
                    reason=reason,
                    summary=summary,
                    priority=priority,
                )
                session.add(handoff)
                session.flush()
            ahead = session.scalar(
                select(func.count(models.HandoffRequest.id)).where(
                    models.HandoffRequest.status == "open",
                    models.HandoffRequest.id < handoff.id,
                )
            )
            record = HandoffRecord(handoff.reference, handoff.reason, handoff.priority, int(ahead) + 1)
        log_event(logger, "handoff.requested", reference=record.reference, reason=reason, channel=channel, sender=pseudonym(sender_id), position=record.position_in_queue)
        return record
