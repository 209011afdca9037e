"""Write a validated catalogue into the database (insert or update, never lose bookings)."""

from __future__ import annotations

from typing import Optional

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from onewindow.service_catalogue.loader import Catalogue
from onewindow.service_catalogue.schema import WEEKDAYS, parse_day_hours
from onewindow.storage import models


def week_periods(hours: dict) -> dict:
    """{"mon": "08:00-12:00, 13:00-17:00"} -> {"mon": [["08:00", "12:00"], ["13:00", "17:00"]]}."""
    return {day: [[o.strftime("%H:%M"), c.strftime("%H:%M")] for o, c in parse_day_hours(hours[day])] for day in WEEKDAYS}


def seed_catalogue(session: Session, catalogue: Catalogue) -> None:
    """Replace the catalogue tables' content; entries removed from the files become inactive."""
    city = catalogue.city
    session.merge(
        models.City(
            id=1,
            name=city["name"],
            currency=city["currency"],
            hotline_number=city["hotline"]["number"],
            hotline_hours=week_periods(city["hotline"]["hours"]),
        )
    )
    for district in catalogue.districts:
        session.merge(models.District(id=district["id"], name=district["name"]))
    _seed_offices(session, catalogue)
    _seed_services(session, catalogue)
    _seed_life_events(session, catalogue)
    session.execute(update(models.ReportCategory).values(active=False))
    for category in catalogue.report_categories:
        session.merge(
            models.ReportCategory(
                id=category["id"],
                name=category["name"],
                department=category["department"],
                urgent=category["urgent"],
                active=True,
            )
        )
    session.execute(delete(models.Alias))
    for kind, phrases in catalogue.aliases().items():
        for phrase, ids in phrases.items():
            session.add_all(models.Alias(kind=kind, phrase=phrase, target_id=i) for i in ids)
    session.flush()


def office_stops(stops: dict) -> Optional[dict]:
    """The catalogue's stops by weekday number, as the offices table stores them (None without stops)."""
    return {
        str(WEEKDAYS.index(day)): {"place": stop["place"], "lat": stop["location"]["lat"], "lon": stop["location"]["lon"]}
        for day, stop in stops.items()
    } or None


def _seed_offices(session: Session, catalogue: Catalogue) -> None:
    session.execute(update(models.Office).values(active=False))
    session.execute(delete(models.OpeningHours))
    for office in catalogue.offices:
        session.merge(
            models.Office(
                id=office["id"],
                name=office["name"],
                kind=office["kind"],
                district_id=office["district"],
                address=office["address"],
                latitude=office["location"]["lat"],
                longitude=office["location"]["lon"],
                phone=office["phone"],
                accessibility=office.get("accessibility") or [],
                windows=office["windows"],
                slot_minutes=office["slot_minutes"],
                note=office.get("note"),
                stops=office_stops(office.get("stops") or {}),
                active=True,
            )
        )
        for weekday, day in enumerate(WEEKDAYS):
            for opens, closes in parse_day_hours(office["hours"][day]):
                session.add(models.OpeningHours(office_id=office["id"], weekday=weekday, opens=opens, closes=closes))


def benefit_columns(benefit: Optional[dict]) -> dict:
    """The services table's benefit columns for the catalogue's benefit field (all None without one)."""
    if not benefit:
        return {"benefit_cents": None, "benefit_up_to": None, "benefit_period": None, "benefit_basis": None}
    return {
        "benefit_cents": round(benefit["amount"] * 100),
        "benefit_up_to": bool(benefit.get("up_to", False)),
        "benefit_period": benefit["period"],
        "benefit_basis": benefit["basis"],
    }


def _seed_services(session: Session, catalogue: Catalogue) -> None:
    session.execute(update(models.Service).values(active=False))
    session.execute(delete(models.ServiceOffice))
    for service in catalogue.services:
        session.merge(
            models.Service(
                id=service["id"],
                name=service["name"],
                department=service["department"],
                description=service["description"],
                eligibility=service["eligibility"],
                documents=service["documents"],
                fee_cents=round(service["fee"] * 100),
                fee_note=service.get("fee_note"),
                **benefit_columns(service.get("benefit")),
                processing_days=service["processing_days"],
                online_available=service["online"]["available"],
                online_where=service["online"].get("where"),
                one_visit=service["one_visit"],
                bookable=service["bookable"],
                active=True,
            )
        )
        session.add_all(
            models.ServiceOffice(service_id=service["id"], office_id=office_id) for office_id in dict.fromkeys(service["offices"])
        )


def _seed_life_events(session: Session, catalogue: Catalogue) -> None:
    session.execute(update(models.LifeEvent).values(active=False))
    session.execute(delete(models.LifeEventStep))
    for event in catalogue.life_events:
        session.merge(
            models.LifeEvent(
                id=event["id"], name=event["name"], summary=event["summary"], sympathy=event.get("sympathy"), active=True
            )
        )
        session.add_all(
            models.LifeEventStep(life_event_id=event["id"], position=position, service_id=step["service"], when=step["when"])
            for position, step in enumerate(event["steps"], start=1)
        )
