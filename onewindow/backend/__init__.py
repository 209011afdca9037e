"""The service backend: the one interface that actions and channels call."""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Optional

from sqlalchemy.engine import Engine

from onewindow import settings
from onewindow.backend.applications import Applications
from onewindow.backend.bookings import BookingError, Bookings
from onewindow.backend.catalogue import CatalogueQueries
from onewindow.backend.citizens import Citizens
from onewindow.backend.handoffs import Handoffs
from onewindow.backend.ownership import Ownership
from onewindow.backend.preferences import ChatPreferences
from onewindow.backend.reports import Reports
from onewindow.backend.transcripts import Transcripts
from onewindow.storage.db import make_engine, make_sessionmaker

__all__ = ["BookingError", "ServiceBackend"]


class ServiceBackend:
    """Catalogue questions, bookings, applications (seen and changed through `ownership`), reports, handoffs, citizens, preferences, call transcripts."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = datetime.now) -> None:
        self.engine = engine
        sessions = make_sessionmaker(engine)
        self.catalogue = CatalogueQueries(sessions, settings.catalogue_ttl_seconds())
        self.bookings = Bookings(sessions, self.catalogue, clock, horizon_days=settings.booking_horizon_days())
        self.applications = Applications(sessions)
        self.ownership = Ownership(sessions, self.bookings, self.applications)
        self.reports = Reports(sessions)
        self.handoffs = Handoffs(sessions)
        self.citizens = Citizens(sessions)
        self.preferences = ChatPreferences(sessions)
        self.transcripts = Transcripts(sessions)

    @classmethod
    def from_url(cls, url: Optional[str] = None) -> "ServiceBackend":
        """A backend on `url`, or on `DATABASE_URL` / the embedded SQLite file."""
        return cls(make_engine(url))
