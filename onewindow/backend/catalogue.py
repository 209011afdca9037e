"""Read-only questions about services, offices, life events and the city."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import time as clock_time
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from onewindow.backend.geo import distance_km
from onewindow.backend.records import (
    BenefitRecord,
    CityRecord,
    LifeEventRecord,
    LifeEventStepRecord,
    OfficeRecord,
    Periods,
    ServiceRecord,
    StopRecord,
)
from onewindow.service_catalogue.schema import WEEKDAYS
from onewindow.storage import models

KIND_ORDER = ("service_centre", "specialist_office", "rural_point", "mobile_point")  # the order offices are offered in


def _periods(hours: Dict[str, list]) -> Dict[int, Periods]:
    return {
        index: [(clock_time.fromisoformat(o), clock_time.fromisoformat(c)) for o, c in hours.get(day, [])]
        for index, day in enumerate(WEEKDAYS)
    }


def normalise_phrase(text: str) -> str:
    """Lowercase, drop punctuation and extra spaces: how aliases are compared."""
    return " ".join(re.sub(r"[^\w\s'-]", " ", text.lower()).split())


@dataclass(frozen=True)
class _Snapshot:
    """The whole active catalogue in memory: it is small and changes only when seeded."""

    city: Optional[CityRecord]
    services: Dict[str, ServiceRecord]
    offices: List[OfficeRecord]
    life_events: Dict[str, LifeEventRecord]
    districts: Dict[str, str]
    aliases: Dict[str, Dict[str, List[str]]]
    ids: Dict[str, set]
    taken_at: float


class CatalogueQueries:
    """Services, offices, life events and city facts, as plain records.

    Reads come from an in-memory snapshot of the catalogue tables, reloaded when it is
    older than `ttl_seconds`, so a `make seed` shows in running servers within that time.
    """

    def __init__(self, sessions: sessionmaker, ttl_seconds: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._sessions = sessions
        self._ttl = ttl_seconds
        self._clock = clock
        self._snapshot: Optional[_Snapshot] = None

    def refresh(self) -> None:
        """Forget the snapshot: the next read loads the catalogue tables again."""
        self._snapshot = None

    def _current(self) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is None or self._clock() - snapshot.taken_at > self._ttl:
            snapshot = self._snapshot = _load_snapshot(self._sessions, self._clock())
        return snapshot

    def city(self) -> CityRecord:
        city = self._current().city
        if city is None:
            raise LookupError("The catalogue has not been loaded: run `make seed`.")
        return city

    def resolve(self, kind: str, text: Optional[str]) -> List[str]:
        """Ids a phrase may mean: an id itself, or an alias (several when it is ambiguous)."""
        if not text:
            return []
        snapshot = self._current()
        ids = snapshot.aliases.get(kind, {}).get(normalise_phrase(text))
        if ids:
            return list(ids)
        return [text] if text in snapshot.ids.get(kind, set()) else []

    def phrases(self, kind: str, target_id: str) -> List[str]:
        """Every phrase that names one entry: its name and its aliases, lowercased."""
        return [phrase for phrase, ids in self._current().aliases.get(kind, {}).items() if target_id in ids]

    def service(self, service_id: str) -> Optional[ServiceRecord]:
        return self._current().services.get(service_id)

    def services(self, service_ids: Optional[List[str]] = None) -> List[ServiceRecord]:
        by_id = self._current().services
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
        return [
            o
            for o in self._current().offices
            if (not district_id or o.district_id == district_id)
            and (office_ids is None or o.id in office_ids)
            and (not service_id or service_id in o.service_ids)
        ]

    def nearest_offices(
        self, latitude: float, longitude: float, service_ids: Union[str, Sequence[str], None] = None, limit: int = 3
    ) -> List[Tuple[OfficeRecord, float]]:
        """The offices (offering the service, or one of the services, if given) closest to a position, with their distance in km."""
        wanted = [service_ids] if isinstance(service_ids, str) else list(service_ids or [])
        placed = [
            (o, o.latitude, o.longitude)
            for o in self.offices()
            if (not wanted or set(wanted) & set(o.service_ids)) and o.latitude is not None and o.longitude is not None
        ]
        ranked = sorted(
            ((o, distance_km(latitude, longitude, at_latitude, at_longitude)) for o, at_latitude, at_longitude in placed),
            key=lambda pair: pair[1],
        )
        return ranked[:limit]

    def life_event(self, event_id: str) -> Optional[LifeEventRecord]:
        return self._current().life_events.get(event_id)

    def life_events(self) -> List[LifeEventRecord]:
        """Every active life event, by name."""
        return sorted(self._current().life_events.values(), key=lambda e: e.name)

    def districts(self) -> Dict[str, str]:
        """The city's districts: id -> name, by name."""
        return dict(sorted(self._current().districts.items(), key=lambda item: item[1]))


def _load_snapshot(sessions: sessionmaker, taken_at: float) -> _Snapshot:
    with sessions() as session:
        city_row = session.get(models.City, 1)
        city = (
            CityRecord(city_row.name, city_row.currency, city_row.hotline_number, _periods(city_row.hotline_hours))
            if city_row
            else None
        )
        events = _life_events_by_service(session)
        services = {
            s.id: _service_record(s, events)
            for s in session.scalars(
                select(models.Service).where(models.Service.active.is_(True)).options(selectinload(models.Service.offices))
            )
        }
        offered: Dict[str, List[str]] = defaultdict(list)
        for link in session.scalars(select(models.ServiceOffice)):
            if link.service_id in services:
                offered[link.office_id].append(link.service_id)
        offices = [
            _office_record(o, sorted(offered[o.id]))
            for o in session.scalars(
                select(models.Office)
                .where(models.Office.active.is_(True))
                .options(selectinload(models.Office.hours), selectinload(models.Office.district))
            )
        ]
        offices.sort(key=lambda o: (KIND_ORDER.index(o.kind) if o.kind in KIND_ORDER else len(KIND_ORDER), o.name))
        life_events = {
            e.id: LifeEventRecord(
                e.id,
                e.name,
                e.summary,
                [LifeEventStepRecord(services[st.service_id], st.when) for st in e.steps if st.service_id in services],
                e.sympathy,
            )
            for e in session.scalars(
                select(models.LifeEvent).where(models.LifeEvent.active.is_(True)).options(selectinload(models.LifeEvent.steps))
            )
        }
        districts = {d.id: d.name for d in session.scalars(select(models.District))}
        aliases: Dict[str, Dict[str, List[str]]] = defaultdict(lambda: defaultdict(list))
        for alias in session.scalars(select(models.Alias).order_by(models.Alias.target_id)):
            aliases[alias.kind][alias.phrase].append(alias.target_id)
        categories = set(session.scalars(select(models.ReportCategory.id).where(models.ReportCategory.active.is_(True))))
    ids = {
        "service": set(services),
        "office": {o.id for o in offices},
        "district": set(districts),
        "life_event": set(life_events),
        "report_category": categories,
    }
    return _Snapshot(
        city,
        services,
        offices,
        life_events,
        districts,
        {k: dict(v) for k, v in aliases.items()},
        ids,
        taken_at,
    )


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
        benefit=(
            BenefitRecord(service.benefit_cents / 100, service.benefit_period, service.benefit_basis, bool(service.benefit_up_to))
            if service.benefit_cents is not None
            else None
        ),
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
        slot_minutes=office.slot_minutes,
        windows=office.windows,
        latitude=office.latitude,
        longitude=office.longitude,
        stops={int(day): StopRecord(stop["place"], stop["lat"], stop["lon"]) for day, stop in (office.stops or {}).items()},
    )
