"""Proof that a record is the citizen's: the one gate for seeing or changing an appointment or an application.

A record is shown or changed only when the conversation proves it belongs to the citizen asking:
- the identity a channel vouched for (a Telegram chat that shared its contact, the caller's number
  from the PBX) is linked to the record's citizen, or
- the citizen gives the last four digits of the phone number on the record (any channel, keypad too).
Failed look-ups (no such reference, wrong digits) are stored in `record_lookups` with pseudonyms
only; five within an hour for the same conversation, source or record stop further look-ups there,
and the assistant offers the office and a person instead.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, List, Optional, Tuple

from sqlalchemy import func, or_, select
from sqlalchemy.orm import sessionmaker

from onewindow.backend.applications import Applications
from onewindow.backend.bookings import Bookings
from onewindow.backend.records import ApplicationRecord, AppointmentRecord
from onewindow.backend.references import mistyped_reference, normalise_reference
from onewindow.infra.logs import log_event, pseudonym
from onewindow.storage import models

logger = logging.getLogger(__name__)

MAX_FAILURES = 5
WINDOW = timedelta(hours=1)
PROOF_DIGITS = 4
COUNTED = ("unknown", "wrong_proof")  # what counts against the limits ("limited" rows are only for staff)
GRANTED = ("linked", "proof")


@dataclass(frozen=True)
class Requester:
    """Who asks: the conversation, its channel, the identity its channel vouched for, and any proof given."""

    sender_id: str
    channel: str
    identity: Optional[Tuple[str, str]] = None  # (channel, id) signed by a channel adapter, else None
    proof: Optional[str] = None  # what the citizen gave as the last four digits of the phone on the record

    def source(self) -> str:
        """The limits' source: the vouched-for identity, or else the sender."""
        return "{}:{}".format(*self.identity) if self.identity else f"{self.channel}:{self.sender_id}"


@dataclass(frozen=True)
class Verdict:
    """The answer of the gate.

    reason: linked or proof (granted); needs_proof, wrong_proof (ask for the digits, again);
    malformed, mistyped (not a valid reference); unknown (no such record); no_owner (the record has
    no phone to check against); limited (too many failures: office or person only).
    """

    reason: str
    reference: Optional[str] = None

    @property
    def granted(self) -> bool:
        return self.reason in GRANTED


class NotYours(Exception):
    """A record operation refused by the gate; `verdict` says why."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


@dataclass(frozen=True)
class FailedLookup:
    """One row of `record_lookups` as staff see it."""

    at: datetime
    kind: str
    channel: str
    conversation_key: str
    source_key: str
    record_key: str
    reason: str


@dataclass(frozen=True)
class RepeatedFailures:
    """One source's failed look-ups in a period, for staff: who keeps trying (pseudonymous), how often, when."""

    source_key: str
    channel: str
    failures: int
    limited: int  # look-ups refused because a limit was reached
    first_at: datetime
    last_at: datetime


class Ownership:
    """The only way actions see or change appointments and applications: each call proves ownership first."""

    def __init__(
        self,
        sessions: sessionmaker,
        bookings: Bookings,
        applications: Applications,
        clock: Callable[[], datetime] = datetime.utcnow,
    ) -> None:
        self._sessions = sessions
        self._bookings = bookings
        self._applications = applications
        self._clock = clock

    # --- the gate ----------------------------------------------------------------------

    def check(self, kind: str, reference: Optional[str], requester: Requester) -> Verdict:
        """Whether `requester` may see the `kind` record ("appointment", "application") with this reference."""
        code = normalise_reference(reference, kind)
        if code is None:
            return Verdict("mistyped" if mistyped_reference(reference, kind) else "malformed")
        keys = self._keys(code, requester)
        if self._failures(keys) >= MAX_FAILURES:
            self._record(kind, requester, keys, "limited")
            return Verdict("limited", code)
        owner = self._owner(kind, code)
        if owner is None:
            self._record(kind, requester, keys, "unknown")
            return Verdict("unknown", code)
        citizen_id, phone = owner
        if requester.identity and citizen_id is not None and citizen_id == self._citizen_of(requester.identity):
            return Verdict("linked", code)
        if not phone:
            return Verdict("no_owner", code)
        given = "".join(ch for ch in (requester.proof or "") if ch.isdigit())
        if not given:
            return Verdict("needs_proof", code)
        if len(given) == PROOF_DIGITS and hmac.compare_digest(given, phone[-PROOF_DIGITS:]):
            return Verdict("proof", code)
        self._record(kind, requester, keys, "wrong_proof")
        return Verdict("limited" if self._failures(keys) >= MAX_FAILURES else "wrong_proof", code)

    # --- what the gate protects ------------------------------------------------------------

    def appointment(self, reference: Optional[str], requester: Requester) -> Tuple[Verdict, Optional[AppointmentRecord]]:
        """The appointment, when the requester proves it is theirs."""
        verdict = self.check("appointment", reference, requester)
        return verdict, self._bookings.get(verdict.reference) if verdict.granted else None

    def cancel_appointment(self, reference: Optional[str], requester: Requester) -> AppointmentRecord:
        """Cancel the requester's appointment (NotYours or BookingError when it cannot be)."""
        return self._bookings.cancel(self._granted("appointment", reference, requester))

    def reschedule_appointment(self, reference: Optional[str], requester: Requester, starts_at: datetime) -> AppointmentRecord:
        """Move the requester's appointment to `starts_at` (NotYours or BookingError when it cannot be)."""
        return self._bookings.reschedule(self._granted("appointment", reference, requester), starts_at)

    def upcoming_appointments(self, requester: Requester) -> Optional[List[AppointmentRecord]]:
        """The upcoming appointments of the citizen whose identity a channel vouched for; None when no citizen is known."""
        phone = self._vouched_phone(requester)
        return self._bookings.upcoming_for_phone(phone) if phone else None

    def applications_of(self, requester: Requester) -> Optional[List[ApplicationRecord]]:
        """The applications of the citizen whose identity a channel vouched for; None when no citizen is known."""
        phone = self._vouched_phone(requester)
        return self._applications.for_phone(phone) if phone else None

    def _vouched_phone(self, requester: Requester) -> Optional[str]:
        """The phone number of the citizen a vouched-for identity is linked to."""
        citizen_id = self._citizen_of(requester.identity) if requester.identity else None
        if citizen_id is None:
            return None
        with self._sessions() as session:
            return session.scalars(select(models.Citizen.phone).where(models.Citizen.id == citizen_id)).first()

    def application(self, reference: Optional[str], requester: Requester) -> Tuple[Verdict, Optional[ApplicationRecord]]:
        """The application and its history, when the requester proves it is theirs."""
        verdict = self.check("application", reference, requester)
        return verdict, self._applications.status(verdict.reference) if verdict.granted else None

    # --- what staff see --------------------------------------------------------------------

    def failed_lookups(self, since: Optional[datetime] = None, limit: int = 200) -> List[FailedLookup]:
        """Failed and refused look-ups, newest first (pseudonyms only), for the staff console."""
        query = select(models.RecordLookup).order_by(models.RecordLookup.at.desc(), models.RecordLookup.id.desc()).limit(limit)
        if since is not None:
            query = query.where(models.RecordLookup.at >= since)
        with self._sessions() as session:
            return [
                FailedLookup(row.at, row.kind, row.channel, row.conversation_key, row.source_key, row.record_key, row.reason)
                for row in session.scalars(query)
            ]

    def repeated_failures(self, since: datetime, at_least: int = MAX_FAILURES) -> List[RepeatedFailures]:
        """Sources with at least `at_least` failed or refused look-ups since `since`, the most first."""
        lookups = models.RecordLookup
        query = (
            select(
                lookups.source_key,
                lookups.channel,
                func.count(),
                func.count().filter(lookups.reason == "limited"),
                func.min(lookups.at),
                func.max(lookups.at),
            )
            .where(lookups.at >= since)
            .group_by(lookups.source_key, lookups.channel)
            .having(func.count() >= at_least)
            .order_by(func.count().desc(), func.max(lookups.at).desc())
        )
        with self._sessions() as session:
            return [RepeatedFailures(*row) for row in session.execute(query)]

    # --- internals -----------------------------------------------------------------------

    def _granted(self, kind: str, reference: Optional[str], requester: Requester) -> str:
        verdict = self.check(kind, reference, requester)
        if not verdict.granted or verdict.reference is None:  # a granted verdict always names its record
            raise NotYours(verdict)
        return verdict.reference

    @staticmethod
    def _keys(code: str, requester: Requester) -> Tuple[str, str, str]:
        return pseudonym(requester.sender_id), pseudonym(requester.source()), pseudonym(code)

    def _failures(self, keys: Tuple[str, str, str]) -> int:
        """Counted failures in the last hour for this conversation, this source or this record (the highest)."""
        conversation, source, record = keys
        lookups = models.RecordLookup
        with self._sessions() as session:
            counts = session.execute(
                select(
                    func.count().filter(lookups.conversation_key == conversation),
                    func.count().filter(lookups.source_key == source),
                    func.count().filter(lookups.record_key == record),
                ).where(
                    lookups.at >= self._clock() - WINDOW,
                    lookups.reason.in_(COUNTED),
                    or_(lookups.conversation_key == conversation, lookups.source_key == source, lookups.record_key == record),
                )
            ).one()
        return max(counts)

    def _record(self, kind: str, requester: Requester, keys: Tuple[str, str, str], reason: str) -> None:
        conversation, source, record = keys
        with self._sessions.begin() as session:
            session.add(
                models.RecordLookup(
                    at=self._clock(),
                    kind=kind,
                    channel=requester.channel,
                    conversation_key=conversation,
                    source_key=source,
                    record_key=record,
                    reason=reason,
                )
            )
        log_event(logger, "record.lookup_failed", kind=kind, reason=reason, channel=requester.channel, conversation=conversation)

    def _owner(self, kind: str, code: str) -> Optional[Tuple[Optional[int], Optional[str]]]:
        """(citizen id, phone) of the record with this reference; None when there is none."""
        model = models.Appointment if kind == "appointment" else models.Application
        with self._sessions() as session:
            row = session.execute(
                select(model.citizen_id, models.Citizen.phone)
                .outerjoin(models.Citizen, models.Citizen.id == model.citizen_id)
                .where(model.reference == code)
            ).first()
        return (row[0], row[1]) if row else None

    def _citizen_of(self, identity: Tuple[str, str]) -> Optional[int]:
        channel, external_id = identity
        with self._sessions() as session:
            return session.scalars(
                select(models.ChannelIdentity.citizen_id).where(
                    models.ChannelIdentity.channel == channel, models.ChannelIdentity.external_id == external_id
                )
            ).first()
