"""Appointment slots and bookings; a slot is never booked beyond its capacity."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Callable, List, Optional

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from onewindow.backend.catalogue import CatalogueQueries
from onewindow.backend.citizens import find_or_create_citizen, normalise_phone
from onewindow.backend.records import AppointmentRecord, OfficeRecord
from onewindow.backend.references import normalise_reference, unused_reference
from onewindow.infra.logs import log_event
from onewindow.storage import models

logger = logging.getLogger(__name__)

Slot = models.AppointmentSlot


class BookingError(Exception):
    """Why a booking cannot be made, with free times to offer instead.

    reason: not_bookable, not_offered, past, too_far, closed_day, outside_hours,
    fully_booked, slot_taken, duplicate, bad_phone, unknown_reference, not_active.
    """

    def __init__(self, reason: str, alternatives: Optional[List[datetime]] = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.alternatives = alternatives or []


class Bookings:
    """Free slots, booking, cancelling and rescheduling appointments."""

    def __init__(
        self,
        sessions: sessionmaker,
        catalogue: CatalogueQueries,
        clock: Callable[[], datetime] = datetime.now,
        horizon_days: int = 60,
        lead_minutes: int = 30,
    ) -> None:
        self._sessions = sessions
        self._catalogue = catalogue
        self._clock = clock
        self.horizon_days = horizon_days
        self.lead = timedelta(minutes=lead_minutes)

    # --- availability ---------------------------------------------------------------

    def free_slots(self, office_id: str, day: date) -> List[datetime]:
        """Start times still bookable at this office on this day."""
        self._ensure_slots(office_id, day)
        earliest = self._clock() + self.lead
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(Slot.starts_at)
                    .where(
                        Slot.office_id == office_id,
                        Slot.day == day,
                        Slot.booked < Slot.capacity,
                        Slot.starts_at >= earliest,
                    )
                    .order_by(Slot.starts_at)
                )
            )

    def check_day(self, service_id: str, office_id: str, day: date) -> List[datetime]:
        """Free start times for this service at this office on this day, or a BookingError."""
        service = self._catalogue.service(service_id)
        if service is None or not service.bookable:
            raise BookingError("not_bookable")
        if office_id not in service.office_ids:
            raise BookingError("not_offered")
        today = self._clock().date()
        if day < today:
            raise BookingError("past", self.next_free(office_id, today))
        if day > today + timedelta(days=self.horizon_days):
            raise BookingError("too_far", self.next_free(office_id, today))
        if not self._periods(office_id, day):
            raise BookingError("closed_day", self.next_free(office_id, day))
        free = self.free_slots(office_id, day)
        if not free:
            raise BookingError("fully_booked", self.next_free(office_id, day + timedelta(days=1)))
        return free

    def check_time(self, office_id: str, day: date, wanted: time, free: List[datetime]) -> datetime:
        """The free slot matching the wanted time, or a BookingError with the nearest ones."""
        moment = datetime.combine(day, wanted)
        periods = self._periods(office_id, day)
        nearest = sorted(free, key=lambda start: abs(start - moment))[:3]
        if not any(opens <= wanted < closes for opens, closes in periods):
            raise BookingError("outside_hours", sorted(nearest))
        for start in free:
            if start <= moment < start + self._slot_length(office_id):
                return start
        raise BookingError("too_soon" if self._too_soon(moment) else "slot_taken", sorted(nearest))

    def next_free(self, office_id: str, start: date, count: int = 3) -> List[datetime]:
        """The first free slot on each of the next open days (up to `count`)."""
        found: List[datetime] = []
        day = max(start, self._clock().date())
        last = self._clock().date() + timedelta(days=self.horizon_days)
        while day <= last and len(found) < count:
            if self._periods(office_id, day):
                free = self.free_slots(office_id, day)
                if free:
                    found.append(free[0])
            day += timedelta(days=1)
        return found

    # --- changes --------------------------------------------------------------------

    def book(
        self,
        service_id: str,
        office_id: str,
        starts_at: datetime,
        name: Optional[str],
        phone: str,
        channel: str,
    ) -> AppointmentRecord:
        """Book one place in the slot starting at `starts_at`, atomically (without a name, the citizen record keeps the one it has)."""
        normalised = normalise_phone(phone)
        if normalised is None:
            raise BookingError("bad_phone")
        self._require_free(service_id, office_id, starts_at)
        with self._sessions.begin() as session:
            citizen = find_or_create_citizen(session, normalised, name)
            clash = session.scalars(
                select(models.Appointment.reference)
                .join(Slot)
                .where(
                    models.Appointment.citizen_id == citizen.id,
                    models.Appointment.status == "booked",
                    Slot.starts_at == starts_at,
                )
            ).first()
            if clash:
                raise BookingError("duplicate")
            slot_id = self._take_place(session, office_id, starts_at)
            appointment = models.Appointment(
                reference=unused_reference(session, models.Appointment, "appointment"),
                slot_id=slot_id,
                service_id=service_id,
                office_id=office_id,
                citizen_id=citizen.id,
                channel=channel,
            )
            session.add(appointment)
            session.flush()
            reference = appointment.reference
        log_event(logger, "appointment.booked", reference=reference, service=service_id, office=office_id, channel=channel)
        return self._written(reference)

    def cancel(self, reference: str) -> AppointmentRecord:
        code = normalise_reference(reference, "appointment")
        with self._sessions.begin() as session:
            appointment = self._active(session, code)
            changed = session.execute(
                update(models.Appointment)
                .where(models.Appointment.id == appointment.id, models.Appointment.status == "booked")
                .values(status="cancelled", updated_at=datetime.utcnow())
            )
            if changed.rowcount != 1:
                raise BookingError("not_active")
            self._release_place(session, appointment.slot_id)
        log_event(logger, "appointment.cancelled", reference=code)
        return self._written(code)

    def reschedule(self, reference: str, starts_at: datetime) -> AppointmentRecord:
        """Move an appointment to a new free slot at the same office, atomically."""
        code = normalise_reference(reference, "appointment")
        current = self.get(code) if code else None
        if current is None or current.status != "booked":
            raise BookingError("unknown_reference" if current is None else "not_active")
        self._require_free(current.service_id, current.office_id, starts_at)
        with self._sessions.begin() as session:
            appointment = self._active(session, code)
            old_slot = appointment.slot_id
            new_slot = self._take_place(session, appointment.office_id, starts_at)
            moved = session.execute(
                update(models.Appointment)
                .where(
                    models.Appointment.id == appointment.id,
                    models.Appointment.status == "booked",
                    models.Appointment.slot_id == old_slot,
                )
                .values(slot_id=new_slot, updated_at=datetime.utcnow())
            )
            if moved.rowcount != 1:
                raise BookingError("not_active")
            self._release_place(session, old_slot)
        log_event(logger, "appointment.rescheduled", reference=code)
        return self._written(code)

    # --- lookups --------------------------------------------------------------------

    def get(self, reference: Optional[str]) -> Optional[AppointmentRecord]:
        code = normalise_reference(reference, "appointment")
        if code is None:
            return None
        with self._sessions() as session:
            appointment = session.scalars(
                select(models.Appointment).where(models.Appointment.reference == code).options(*_RECORD_LOADS)
            ).first()
            return _record(appointment) if appointment else None

    def upcoming_for_phone(self, phone: str) -> List[AppointmentRecord]:
        normalised = normalise_phone(phone)
        with self._sessions() as session:
            appointments = session.scalars(
                select(models.Appointment)
                .join(models.Citizen)
                .join(Slot)
                .where(
                    models.Citizen.phone == normalised,
                    models.Appointment.status == "booked",
                    Slot.starts_at >= self._clock(),
                )
                .order_by(Slot.starts_at)
                .options(*_RECORD_LOADS)
            ).all()
            return [_record(a) for a in appointments]

    # --- internals ------------------------------------------------------------------

    def _written(self, reference: Optional[str]) -> AppointmentRecord:
        """The appointment a committed change has just written (so it exists)."""
        record = self.get(reference)
        if record is None:
            raise BookingError("unknown_reference")
        return record

    def _office(self, office_id: str) -> OfficeRecord:
        office = self._catalogue.office(office_id)
        if office is None:
            raise BookingError("not_offered")
        return office

    def _require_free(self, service_id: str, office_id: str, starts_at: datetime) -> None:
        """A BookingError unless the slot starting at `starts_at` can still be booked."""
        free = self.check_day(service_id, office_id, starts_at.date())
        if starts_at not in free:
            raise BookingError("too_soon" if self._too_soon(starts_at) else "slot_taken", free[:3])

    def _too_soon(self, moment: datetime) -> bool:
        """Whether `moment` is within the booking lead from now (a time nobody took, but too close to book)."""
        return moment < self._clock() + self.lead

    def _periods(self, office_id: str, day: date) -> list:
        office = self._catalogue.office(office_id)
        return office.hours_on(day) if office else []

    def _slot_length(self, office_id: str) -> timedelta:
        return timedelta(minutes=self._office(office_id).slot_minutes)

    def _ensure_slots(self, office_id: str, day: date) -> None:
        """Create the day's slots from the opening hours the first time anyone asks."""
        with self._sessions() as session:
            if session.scalars(select(Slot.id).where(Slot.office_id == office_id, Slot.day == day).limit(1)).first():
                return
            office = self._office(office_id)
            length = timedelta(minutes=office.slot_minutes)
            slots = []
            for opens, closes in self._periods(office_id, day):
                start, end = datetime.combine(day, opens), datetime.combine(day, closes)
                while start + length <= end:
                    slots.append(Slot(office_id=office_id, day=day, starts_at=start, capacity=office.windows))
                    start += length
            session.add_all(slots)
            try:
                session.commit()
            except IntegrityError:  # another conversation created them at the same moment
                session.rollback()

    @staticmethod
    def _take_place(session: Session, office_id: str, starts_at: datetime) -> int:
        slot_id = session.scalars(select(Slot.id).where(Slot.office_id == office_id, Slot.starts_at == starts_at)).first()
        taken = session.execute(
            update(Slot).where(Slot.id == slot_id, Slot.booked < Slot.capacity).values(booked=Slot.booked + 1)
        )
        if slot_id is None or taken.rowcount != 1:
            raise BookingError("slot_taken")
        return slot_id

    @staticmethod
    def _release_place(session: Session, slot_id: int) -> None:
        session.execute(update(Slot).where(Slot.id == slot_id, Slot.booked > 0).values(booked=Slot.booked - 1))

    @staticmethod
    def _active(session: Session, code: Optional[str]) -> models.Appointment:
        appointment = session.scalars(select(models.Appointment).where(models.Appointment.reference == code)).first()
        if appointment is None:
            raise BookingError("unknown_reference")
        if appointment.status != "booked":
            raise BookingError("not_active")
        return appointment


_RECORD_LOADS = (
    selectinload(models.Appointment.slot),
    selectinload(models.Appointment.service),
    selectinload(models.Appointment.office),
)


def _place(office: models.Office, starts_at: datetime) -> str:
    """Where the appointment takes place: a mobile point's stop on that day, otherwise the address."""
    stop = (office.stops or {}).get(str(starts_at.weekday()))
    return stop["place"] if stop else office.address


def _record(appointment: models.Appointment) -> AppointmentRecord:
    return AppointmentRecord(
        reference=appointment.reference,
        status=appointment.status,
        starts_at=appointment.slot.starts_at,
        service_id=appointment.service_id,
        service_name=appointment.service.name,
        office_id=appointment.office_id,
        office_name=appointment.office.name,
        office_address=_place(appointment.office, appointment.slot.starts_at),
        documents=list(appointment.service.documents),
    )
