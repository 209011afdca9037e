"""Voice call transcripts: stored when a call ends, read by staff in the console."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Optional

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from onewindow.storage import models


@dataclass
class CallRecord:
    call_id: str
    channel: str
    sender_id: str
    started_at: datetime
    ended_at: Optional[datetime] = None
    outcome: str = "completed"
    caller_audio_seconds: float = 0.0
    turns: List[Dict[str, Any]] = field(default_factory=list)


class Transcripts:
    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions

    def save(self, call: CallRecord) -> None:
        """Store (or replace) a call's transcript."""
        with self._sessions.begin() as session:
            row = session.scalars(select(models.CallTranscript).where(models.CallTranscript.call_id == call.call_id)).first()
            if row is None:
                row = models.CallTranscript(call_id=call.call_id)
                session.add(row)
            row.channel, row.sender_id, row.outcome = call.channel, call.sender_id, call.outcome
            row.started_at, row.ended_at = call.started_at, call.ended_at or datetime.now()
            row.caller_audio_seconds, row.turns = round(call.caller_audio_seconds, 2), list(call.turns)

    def get(self, call_id: str) -> Optional[CallRecord]:
        with self._sessions() as session:
            row = session.scalars(select(models.CallTranscript).where(models.CallTranscript.call_id == call_id)).first()
            return _record(row) if row else None

    def recent(self, limit: int = 50) -> List[CallRecord]:
        with self._sessions() as session:
            rows = session.scalars(select(models.CallTranscript).order_by(models.CallTranscript.started_at.desc()).limit(limit))
            return [_record(row) for row in rows]


def _record(row: models.CallTranscript) -> CallRecord:
    return CallRecord(
        row.call_id,
        row.channel,
        row.sender_id,
        row.started_at,
        row.ended_at,
        row.outcome,
        row.caller_audio_seconds,
        list(row.turns or []),
    )
