"""Handoffs to a person: the queue both sides share (the assistant opens them, the staff console works them).

The queue is every open handoff, highest priority (1) first, then oldest first; a claimed
handoff has left the queue (a person is on it). This table is the staff side's state; the
conversation's `handoff_active` slot is the assistant's, and both are changed together.
"""

from __future__ import annotations

import hashlib
import logging
import math
import statistics
from typing import Any, Dict, List, Optional, Tuple

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, selectinload, sessionmaker
from sqlalchemy.sql import ColumnElement

from onewindow.backend.records import DeskMessage, HandoffRecord, QueueItem
from onewindow.backend.references import unused_reference
from onewindow.infra.logs import log_event, pseudonym
from onewindow.infra.metrics import HANDOFFS
from onewindow.storage import models

logger = logging.getLogger(__name__)
ACTIVE = ("open", "claimed")
STAFF_CLOSINGS = ("resolved", "returned")
DEFAULT_MINUTES_PER_PLACE = 5
RECENT_CLAIMS = 20  # the expected wait is the median claim wait of this many recent handoffs
Handoff = models.HandoffRequest
# the conversation's slot that holds it for a person (domain.yml; onewindow/rasa_plugins/handoff_policy.py acts on it)
HANDOFF_SLOT = "handoff_active"


class HandoffNotFound(LookupError):
    """No handoff has this reference."""


class HandoffStateError(ValueError):
    """The handoff is not in a state that allows this (closed, or claimed by someone else)."""


def queue_positions(session: Session) -> Dict[int, int]:
    """Place in the queue (1 = next) of every open handoff, by id."""
    ids = session.scalars(select(Handoff.id).where(Handoff.status == "open").order_by(Handoff.priority, Handoff.id))
    return {handoff_id: place for place, handoff_id in enumerate(ids, start=1)}


def held(sender_id: str) -> ColumnElement:
    """The conversation's open or claimed handoffs."""
    return and_(Handoff.sender_id == sender_id, Handoff.status.in_(ACTIVE))


def wait_for_place(position: int, minutes_per_place: float) -> int:
    """Whole minutes until a person takes the handoff at this place in the queue (at least 1)."""
    return max(1, math.ceil(minutes_per_place * max(position, 1)))


def _record(row: Handoff, positions: Dict[int, int]) -> HandoffRecord:
    return HandoffRecord(
        row.reference,
        row.sender_id,
        row.reason,
        row.priority,
        row.status,
        positions.get(row.id),
        row.notified_position,
        bool(row.callback_requested),
    )


def _item(row: Handoff, positions: Dict[int, int]) -> QueueItem:
    return QueueItem(
        reference=row.reference,
        sender_id=row.sender_id,
        channel=row.channel,
        reason=row.reason,
        priority=row.priority,
        status=row.status,
        created_at=row.created_at,
        claimed_by=row.claimed_by,
        claimed_at=row.claimed_at,
        position=positions.get(row.id),
        summary=dict(row.summary or {}),
        callback_requested=bool(row.callback_requested),
        outcome=row.outcome,
        messages=[DeskMessage(m.kind, m.author, m.text, bool(m.delivered), m.created_at) for m in row.messages],
    )


class Handoffs:
    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions

    # --- the citizen's side (actions) ------------------------------------------------------------

    def request(self, sender_id: str, channel: str, reason: str, summary: Dict[str, Any], priority: int = 2) -> HandoffRecord:
        """Open a handoff for this conversation, or return the active one (made more urgent if this reason is)."""
        with self._sessions.begin() as session:
            row = self._active_row(session, sender_id)
            if row is None:
                row = Handoff(
                    reference=unused_reference(session, Handoff, "handoff"),
                    sender_id=sender_id,
                    channel=channel,
                    reason=reason,
                    summary=summary,
                    priority=priority,
                )
                session.add(row)
                HANDOFFS.labels(reason).inc()
            elif priority < row.priority:
                row.priority, row.reason = priority, reason
            session.flush()
            record = _record(row, queue_positions(session))
        log_event(
            logger,
            "handoff.requested",
            reference=record.reference,
            reason=record.reason,
            priority=record.priority,
            channel=channel,
            sender=pseudonym(sender_id),
            position=record.position_in_queue,
        )
        return record

    def active(self, sender_id: str) -> Optional[HandoffRecord]:
        """The conversation's open or claimed handoff, if any."""
        with self._sessions() as session:
            row = self._active_row(session, sender_id)
            return _record(row, queue_positions(session)) if row else None

    def is_held(self, sender_id: str) -> bool:
        """Whether the conversation has an open or claimed handoff (one indexed lookup, no queue places)."""
        with self._sessions() as session:
            return session.scalar(select(Handoff.id).where(held(sender_id)).limit(1)) is not None

    def withdraw(self, sender_id: str, outcome: Optional[str] = None) -> Optional[HandoffRecord]:
        """The citizen leaves the queue (only while nobody has claimed the handoff); `outcome` says how
        (for example "caller_left": a caller who hung up before the transfer)."""
        with self._sessions.begin() as session:
            row = self._active_row(session, sender_id)
            if row is None or row.status != "open":
                return None
            row.status, row.outcome, row.closed_at = "withdrawn", outcome, models.utcnow()
            record = _record(row, {})
        log_event(logger, "handoff.withdrawn", reference=record.reference, outcome=outcome)
        return record

    def mark_notified(self, reference: str, position: Optional[int]) -> None:
        """Remember the queue place the citizen was last told."""
        with self._sessions.begin() as session:
            self._row(session, reference).notified_position = position

    def request_callback(self, reference: str, phone: Optional[str]) -> None:
        """The citizen asks to be called back; the number (if given) goes into the summary staff read."""
        with self._sessions.begin() as session:
            row = self._row(session, reference)
            row.callback_requested = True
            if phone:
                summary = dict(row.summary or {})
                summary["slots"] = {**summary.get("slots", {}), "callback_phone": phone}
                row.summary = summary
        log_event(logger, "handoff.callback_requested", reference=reference, number_known=bool(phone))

    def waiting(self) -> List[HandoffRecord]:
        """The open handoffs in queue order."""
        with self._sessions() as session:
            positions = queue_positions(session)
            rows = session.scalars(select(Handoff).where(Handoff.id.in_(list(positions))))
            return sorted((_record(row, positions) for row in rows), key=lambda r: r.position_in_queue or 0)

    # --- the staff side (onewindow.backend.staff_desk) ---------------------------------------------------

    def queue(self) -> List[QueueItem]:
        """Open and claimed handoffs, highest priority first, then oldest first."""
        with self._sessions() as session:
            positions = queue_positions(session)
            rows = session.scalars(
                select(Handoff)
                .options(selectinload(Handoff.messages))
                .where(Handoff.status.in_(ACTIVE))
                .order_by(Handoff.priority, Handoff.id)
            )
            return [_item(row, positions) for row in rows]

    def waiting_figures(self) -> Tuple[int, Tuple[float, ...]]:
        """For the metrics: open handoffs waiting now, and the seconds each claimed handoff waited for a person."""
        with self._sessions() as session:
            waiting = session.scalar(select(func.count()).select_from(Handoff).where(Handoff.status == "open"))
            claims = session.execute(select(Handoff.created_at, Handoff.claimed_at).where(Handoff.claimed_at.is_not(None)))
            return int(waiting or 0), tuple(max(0.0, (claimed - created).total_seconds()) for created, claimed in claims)

    def get(self, reference: str) -> QueueItem:
        with self._sessions() as session:
            return _item(self._row(session, reference), queue_positions(session))

    def claim(self, reference: str, username: str) -> QueueItem:
        """A person takes the handoff (again, if they already have it)."""
        with self._sessions.begin() as session:
            row = self._worked_row(session, reference, username)
            if row.status == "open":
                row.status, row.claimed_by, row.claimed_at = "claimed", username, models.utcnow()
                log_event(logger, "handoff.claimed", reference=reference)
            session.flush()
            return _item(row, queue_positions(session))

    def add_message(self, reference: str, kind: str, author: str, text: str, delivered: bool = False) -> None:
        """A reply or an internal note, by someone who may work on the handoff (as for replies: still active, and
        not claimed by someone else)."""
        with self._sessions.begin() as session:
            row = self._worked_row(session, reference, author)
            row.messages.append(models.HandoffMessage(kind=kind, author=author, text=text, delivered=delivered))

    def reassign(self, reference: str, username: Optional[str]) -> QueueItem:
        """A supervisor's change of who works on an active handoff: to `username` (claimed by them), or back to
        the queue (open, claimed by nobody) when None; whoever had claimed it before, even a deactivated account."""
        with self._sessions.begin() as session:
            row = self._row(session, reference)
            if row.status not in ACTIVE:
                raise HandoffStateError(f"{reference} is {row.status}")
            if username is None:
                row.status, row.claimed_by, row.claimed_at = "open", None, None
            else:
                row.status, row.claimed_by, row.claimed_at = "claimed", username, models.utcnow()
            session.flush()
            item = _item(row, queue_positions(session))
        log_event(logger, "handoff.released" if username is None else "handoff.reassigned", reference=reference)
        return item

    def close(self, reference: str, username: str, status: str, outcome: Optional[str] = None) -> QueueItem:
        """Resolve the handoff or return the conversation to the assistant."""
        if status not in STAFF_CLOSINGS:
            raise ValueError(f"not a closing status: {status}")
        with self._sessions.begin() as session:
            row = self._worked_row(session, reference, username)
            row.status, row.outcome, row.closed_at = status, outcome, models.utcnow()
            if row.claimed_by is None:
                row.claimed_by = username
            session.flush()
            item = _item(row, {})
        log_event(logger, f"handoff.{status}", reference=reference, outcome=outcome)
        return item

    def expected_wait_minutes(self, position: int) -> int:
        """Minutes until a person takes a handoff at this place."""
        return wait_for_place(position, self.minutes_per_place())

    def minutes_per_place(self) -> float:
        """The median claim wait of recent handoffs, or a default without history."""
        with self._sessions() as session:
            recent = session.execute(
                select(Handoff.created_at, Handoff.claimed_at)
                .where(Handoff.claimed_at.is_not(None))
                .order_by(Handoff.claimed_at.desc())
                .limit(RECENT_CLAIMS)
            ).all()
        waits = [(claimed - created).total_seconds() / 60 for created, claimed in recent]
        return statistics.median(waits) if waits else DEFAULT_MINUTES_PER_PLACE

    def version(self) -> str:
        """Changes whenever the queue or a handoff's messages change."""
        with self._sessions() as session:
            active = session.execute(
                select(Handoff.id, Handoff.status, Handoff.priority, Handoff.claimed_by, Handoff.callback_requested)
                .where(Handoff.status.in_(ACTIVE))
                .order_by(Handoff.id)
            ).all()
            totals = session.execute(select(func.count(Handoff.id), func.max(Handoff.closed_at)).select_from(Handoff)).one()
            messages = session.scalar(select(func.max(models.HandoffMessage.id)))
        return hashlib.sha256(repr((active, tuple(totals), messages)).encode()).hexdigest()[:16]

    # --- rows ------------------------------------------------------------------------------------

    @staticmethod
    def _active_row(session: Session, sender_id: str) -> Optional[Handoff]:
        return session.scalars(select(Handoff).where(held(sender_id)).order_by(Handoff.id.desc())).first()

    @staticmethod
    def _row(session: Session, reference: str) -> Handoff:
        row = session.scalars(select(Handoff).where(Handoff.reference == reference)).first()
        if row is None:
            raise HandoffNotFound(reference)
        return row

    def _worked_row(self, session: Session, reference: str, username: str) -> Handoff:
        """The handoff, if `username` may work on it: still active, and not claimed by someone else."""
        row = self._row(session, reference)
        if row.status not in ACTIVE:
            raise HandoffStateError(f"{reference} is {row.status}")
        if row.status == "claimed" and row.claimed_by != username:
            raise HandoffStateError(f"{reference} is claimed by {row.claimed_by}")
        return row
