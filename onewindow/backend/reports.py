"""Issues citizens report (potholes, broken lights...), routed to the right department."""

from __future__ import annotations

import logging
from typing import List, Tuple

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from onewindow.backend.records import ReportRecord
from onewindow.backend.references import unused_reference
from onewindow.infra.logs import log_event, pseudonym
from onewindow.storage import models

logger = logging.getLogger(__name__)

MAX_TEXT = 2000


class Reports:
    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions

    def categories(self) -> List[Tuple[str, str]]:
        """(id, name) of every active report category, by name."""
        with self._sessions() as session:
            rows = session.execute(
                select(models.ReportCategory.id, models.ReportCategory.name)
                .where(models.ReportCategory.active.is_(True))
                .order_by(models.ReportCategory.name)
            )
            return [(row.id, row.name) for row in rows]

    def submit(self, category_id: str, location: str, description: str, channel: str, sender_id: str) -> ReportRecord:
        """File a report; raises LookupError for an unknown category."""
        with self._sessions.begin() as session:
            category = session.get(models.ReportCategory, category_id)
            if category is None or not category.active:
                raise LookupError(f"unknown report category {category_id!r}")
            reference = unused_reference(session, models.Report, "report")
            session.add(
                models.Report(
                    reference=reference,
                    category_id=category.id,
                    department=category.department,
                    location=location.strip()[:MAX_TEXT],
                    description=description.strip()[:MAX_TEXT],
                    urgent=category.urgent,
                    channel=channel,
                    sender_id=sender_id,
                )
            )
            record = ReportRecord(reference, category.name, category.department, category.urgent)
        log_event(
            logger, "report.submitted", reference=reference, category=category_id, channel=channel, sender=pseudonym(sender_id)
        )
        return record
