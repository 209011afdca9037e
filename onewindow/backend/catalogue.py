"""Read-only questions about services, offices, life events and the city."""
from __future__ import annotations

import re
from collections import defaultdict
from datetime import time
from typing import Dict, List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from onewindow import models
from onewindow.backend.records import (
    CityRecord,
    LifeEventRecord,
    LifeEventStepRecord,
    OfficeRecord,
    Periods,
    ServiceRecord,
)
from onewindow.catalogue.schema import WEEKDAYS


def _periods(hours: Dict[str, list]) -> Dict[int, Periods]:
    return {
        index: [(time.fromisoformat(o), time.fromisoformat(c)) for o, c in hours.get(day, [])]
        for index, day in enumerate(WEEKDAYS)
    }


def normalise_phrase(text: str) -> str:
    """Lowercase, drop punctuation and extra spaces: how aliases are compared."""
    return " ".join(re.sub(r"[^\w\s'-]", " ", text.lower()).split())


class CatalogueQueries:
    """Services, offices, life events and city facts, as plain records."""

    def __init__(self, sessions: sessionmaker) -> None:
        self._sessions = sessions

    def city(self) -> CityRecord:
        with self._sessions() as session:
            city = session.get(models.City, 1)
            if city is None:
                raise LookupError("The catalogue has not been loaded: run `make seed`.")
            return CityRecord(city.name, city.currency, city.hotline_number, _periods(city.hotline_hours))

    def resolve(self, kind: str, text: Optional[str]) -> List[str]:
        """Ids a phrase may mean: an id itself, or an alias (several when it is ambiguous)."""
        if not text:
            return []
        phrase = normalise_phrase(text)
        with self._sessions() as session:
            ids = session.scalars(
                select(models.Alias.target_id)
                .where(models.Alias.kind == kind, models.Alias.phrase == phrase)
                .order_by(models.Alias.target_id)
            ).all()
            if ids:
                return list(ids)
            model = _MODELS[kind]
            return [text] if session.get(model, text) is not None else []

    def service(self, service_id: str) -> Optional[ServiceRecord]:
        records = self.services([service_id])
        return records[0] if records else None

    def services(self, service_ids: Optional[List[str]] = None) -> List[ServiceRecord]:
        with self._sessions() as session:
            query = select(models.Service).where(models.Service.active.is_(True))
            if service_ids is not None:
                query = query.where(models.Service.id.in_(service_ids))
            services = session.scalars(query.options(selectinload(models.Service.offices))).all()
            events = _life_events_by_service(session)
            by_id = {s.id: _service_record(s, events) for s in services}
            order = service_ids if service_ids is not None else sorted(by_id)
            return [by_id[i] for i in order if i in by_id]

    def office(self, office_id: str) -> Optional[OfficeRecord]:
        offices = self.offices(office_ids=[office_id])
        return offices[0] if offices else None

    def offices(
        self,
        service_id: Optional[str] = None,
        district_id: Optional[str] = None,
        office_ids: Optional[List[str]] = None,
    ) -> List[OfficeRecord]:
        """Active offices, narrowed by the service they offer, district or ids."""
        with self._sessions() as session:
            query = (
                select(models.Office)
                .where(models.Office.active.is_(True))
                .options(selectinload(models.Office.hours), selectinload(models.Office.district))
                .order_by(models.Office.kind, models.Office.name)
            )
            if district_id:
                query = query.where(models.Office.district_id == district_id)
            if office_ids is not None:
                query = query.where(models.Office.id.in_(office_ids))
            if service_id:
                query = query.join(
                    models.ServiceOffice, models.ServiceOffice.office_id == models.Office.id
                ).where(models.ServiceOffice.service_id == service_id)
            offices = session.scalars(query).unique().all()
            offered: Dict[str, List[str]] = defaultdict(list)
            for link in session.scalars(select(models.ServiceOffice)).all():
                offered[link.office_id].append(link.service_id)
            return [_office_record(o, sorted(offered[o.id])) for o in offices]

    def life_event(self, event_id: str) -> Optional[LifeEventRecord]:
        with self._sessions() as session:
            event = session.get(models.LifeEvent, event_id)
            if event is None or not event.active:
                return None
            steps = [(step.service_id, step.when) for step in event.steps]
            name, summary = event.name, event.summary
        services = {s.id: s for s in self.services([sid for sid, _ in steps])}
        return LifeEventRecord(
            event_id,
            name,
            summary,
            [LifeEventStepRecord(services[sid], when) for sid, when in steps if sid in services],
        )

    def district_name(self, district_id: str) -> Optional[str]:
        with self._sessions() as session:
            district = session.get(models.District, district_id)
            return district.name if district else None


_MODELS = {
    "service": models.Service,
    "office": models.Office,
    "district": models.District,
    "life_event": models.LifeEvent,
    "report_category": models.ReportCategory,
}


def _life_events_by_service(session: Session) -> Dict[str, List[str]]:
    events: Dict[str, List[str]] = defaultdict(list)
    for step in session.scalars(select(models.LifeEventStep).order_by(models.LifeEventStep.id)):
        if step.life_event_id not in events[step.service_id]:
            events[step.service_id].append(step.life_event_id)
    return events


def _service_record(service: models.Service, events: Dict[str, List[str]]) -> ServiceRecord:
    return ServiceRecord(
        id=service.id,
        name=service.name,
        department=service.department,
        description=service.description,
        eligibility=service.eligibility,
        documents=list(service.documents),
        fee=service.fee_cents / 100,
        fee_note=service.fee_note,
        processing_days=service.processing_days,
        online_available=service.online_available,
        online_where=service.online_where,
        one_visit=service.one_visit,
        bookable=service.bookable,
        office_ids=[o.id for o in service.offices if o.active],
        life_event_ids=events.get(service.id, []),
    )


def _office_record(office: models.Office, service_ids: List[str]) -> OfficeRecord:
    hours: Dict[int, Periods] = defaultdict(list)
    for period in office.hours:
        hours[period.weekday].append((period.opens, period.closes))
    return OfficeRecord(
        id=office.id,
        name=office.name,
        kind=office.kind,
        district_id=office.district_id,
        district_name=office.district.name,
        address=office.address,
        phone=office.phone,
        accessibility=list(office.accessibility or []),
        note=office.note,
        hours={day: sorted(periods) for day, periods in hours.items()},
        service_ids=service_ids,
    )
