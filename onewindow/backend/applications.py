"""Applications citizens have submitted, and their status history."""

from __future__ import annotations

from typing import List, Optional

from sqlalchemy import select
from sqlalchemy.orm import selectinload, sessionmaker

from onewindow.backend.citizens import find_or_create_citizen, normalise_phone
from onewindow.backend.records import ApplicationRecord, StatusChangeRecord
from onewindow.backend.references import normalise_reference
from onewindow.storage import models


class Applications:
    """Applications and their status history (shown to citizens only through `ownership`)."""

    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions

    def status(self, reference: Optional[str]) -> Optional[ApplicationRecord]:
        """The application with this reference (APP-48291-37508, or a six-digit APP-123456), or None."""
        code = normalise_reference(reference, "application")
        if code is None:
            return None
        with self._sessions() as session:
            application = session.scalars(
                select(models.Application)
                .where(models.Application.reference == code)
                .options(
                    selectinload(models.Application.history),
                    selectinload(models.Application.service),
                )
            ).first()
            if application is None:
                return None
            return ApplicationRecord(
                reference=application.reference,
                service_name=application.service.name,
                status=application.status,
                submitted_at=application.submitted_at,
                history=[StatusChangeRecord(change.status, change.changed_at, change.note) for change in application.history],
            )

    def for_phone(self, phone: str) -> List[ApplicationRecord]:
        """The applications of the citizen with this phone number, the newest first."""
        normalised = normalise_phone(phone)
        if normalised is None:
            return []
        with self._sessions() as session:
            references = session.scalars(
                select(models.Application.reference)
                .join(models.Citizen)
                .where(models.Citizen.phone == normalised)
                .order_by(models.Application.submitted_at.desc())
            ).all()
        return [record for record in map(self.status, references) if record is not None]

    def record(self, reference: str, service_id: str, changes: list, phone: Optional[str] = None) -> None:
        """Store an application with its history [(status, when, note), ...] and its citizen's phone (sample data, imports)."""
        with self._sessions.begin() as session:
            existing = session.scalars(select(models.Application).where(models.Application.reference == reference)).first()
            if existing is not None:
                return
            status, submitted, _ = changes[0]
            normalised = normalise_phone(phone)
            application = models.Application(
                reference=reference,
                service_id=service_id,
                citizen_id=find_or_create_citizen(session, normalised).id if normalised else None,
                status=changes[-1][0],
                submitted_at=submitted,
            )
            application.history = [
                models.ApplicationStatusChange(status=s, changed_at=when, note=note) for s, when, note in changes
            ]
            session.add(application)
