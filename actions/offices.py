"""Finding an office: address, hours today, accessibility, services; and opening hours."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.listed import reference_in
from actions.shared import backend, button, call, known_office, latest_metadata, now, office_buttons, resolve_one, venue
from onewindow.backend.geo import checked_position
from onewindow.backend.records import OfficeRecord
from onewindow.text.dates import parse_date, spoken_date
from onewindow.text.wording import distance_text, join_words, periods_text, week_text

MAX_LISTED = 4
NO_OFFICE = "I could not find an office {where}. A person from the service centre can help you."


def day_text(office: OfficeRecord, day: date, today: date) -> str:
    """The hours on `day` ("Open today from ...", "Closed on Sunday 29 November. Next open ...")."""
    when = "today" if day == today else f"on {spoken_date(day)}"
    periods = office.hours_on(day)
    if periods:
        return f"Open {when} from {periods_text(periods)}."
    for ahead in range(1, 8):
        later = day + timedelta(days=ahead)
        if office.hours_on(later):
            return f"Closed {when}. Next open {spoken_date(later)}, {periods_text(office.hours_on(later))}."
    return "Closed at the moment."


def today_text(office: OfficeRecord, today: date) -> str:
    return day_text(office, today, today)


def day_asked(tracker: Tracker, today: date) -> Optional[date]:
    """The day the latest message asks about ("on saturday", "tomorrow"), if it names one."""
    for value in tracker.get_latest_entity_values("date"):
        answer = parse_date(str(value), today)
        if answer.value is not None and answer.value >= today:
            return answer.value
    return None


def place_text(office: OfficeRecord, day: date, today: date) -> str:
    """The address, or for a mobile point where it stops on `day` ("today at Oakfield village green")."""
    if day.weekday() not in office.stops:
        return office.address
    when = "today" if day == today else f"on {spoken_date(day)}"
    return f"{when} at {office.place_on(day).place}"


def office_details(office: OfficeRecord, today: date, service_names: List[str]) -> str:
    access = f" Access: {join_words(office.accessibility)}." if office.accessibility else ""
    note = f" {office.note}" if office.note else ""
    offered = ""
    if service_names:
        more = len(office.service_ids) - len(service_names)
        tail = f", and {more} more" if more > 0 else ""
        offered = f" Services here include {join_words(service_names)}{tail}."
    return (
        f"{office.name}, {place_text(office, today, today)}. {today_text(office, today)}{access} "
        f"Phone {office.phone}.{note}{offered}"
    )


def office_listing(offices: List[OfficeRecord], today: date) -> str:
    """Every office numbered, as its button; the first few with where and when."""
    return " ".join(
        f"{number}. {o.name}, {place_text(o, today, today)}. {today_text(o, today)}"
        if number <= MAX_LISTED
        else f"{number}. {o.name}."
        for number, o in enumerate(offices, start=1)
    )


def shared_position(tracker: Tracker) -> Optional[Tuple[float, float]]:
    """(latitude, longitude) when the citizen shared a location with the latest message."""
    location = latest_metadata(tracker).get("location") or {}
    return checked_position(location.get("latitude"), location.get("longitude"))


def _current(tracker: Tracker, slot: str) -> Optional[str]:
    """The office or district named in this message; the remembered one only if none was named."""
    named = [e["entity"] for e in tracker.latest_message.get("entities", []) if e["entity"] in ("office", "district")]
    if named and slot not in named:
        return None
    return tracker.get_slot(slot)


class ActionAnswerOfficeQuestion(Action):
    """find_office and ask_opening_hours, narrowed by office, district and the service in context."""

    def name(self) -> Text:
        return "action_answer_office_question"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        catalogue = backend().catalogue
        today = now().date()
        hours_question = tracker.get_intent_of_latest_message() == "ask_opening_hours"
        position = shared_position(tracker)
        if position:
            nearest = await self._nearest(dispatcher, position, tracker.get_slot("service"), today)
            return [SlotSet("office", nearest)] if nearest else []  # the nearest office is the one settled on
        office_ids = await resolve_one("office", _current(tracker, "office"))
        if len(office_ids) == 1:
            office = await known_office(office_ids[0])
            await self._describe(dispatcher, office, today, day_asked(tracker, today) if hours_question else None, hours_question)
            return [SlotSet("office", office.id)]
        district_ids = await resolve_one("district", _current(tracker, "district"))
        reference = await call(reference_in, tracker, ("service",))  # "where do I go for the rent one", after a list
        service_ids = [reference[1]] if reference else await resolve_one("service", tracker.get_slot("service"))
        district = district_ids[0] if len(district_ids) == 1 else None
        service = service_ids[0] if len(service_ids) == 1 else None
        if district is None and service is None:
            await self._ask_district(dispatcher, hours_question)
            return []
        offices = await call(catalogue.offices, service_id=service, district_id=district)
        note = ""
        if not offices and district and service:
            offices = await call(catalogue.offices, service_id=service)
            note = "No office in that district offers this service. These ones do. "
        await self._list(dispatcher, offices, today, service, note)
        return [SlotSet("district", district), *([SlotSet("service", service)] if reference else [])]

    @staticmethod
    async def _describe(
        dispatcher: CollectingDispatcher, office: OfficeRecord, today: date, day: Optional[date], hours_question: bool
    ) -> None:
        if day is not None and day != today:
            text = f"{office.name}: {day_text(office, day, today)} All its opening hours: {week_text(office.hours)}"
        elif hours_question:
            text = f"{office.name} opening hours. {week_text(office.hours)} {today_text(office, today)}"
        else:
            names = [s.name for s in await call(backend().catalogue.services, office.service_ids[:3])]
            text = office_details(office, today, names)
        dispatcher.utter_message(
            text=text,
            buttons=[
                button("Book an appointment here", "book_appointment", office=office.id),
                button("Opening hours", "ask_opening_hours", office=office.id),
            ],
        )
        if office.latitude is not None:
            dispatcher.utter_message(json_message=venue(office, day or today))

    @staticmethod
    async def _nearest(
        dispatcher: CollectingDispatcher, position: Tuple[float, float], service: Optional[str], today: date
    ) -> Optional[str]:
        """Lists the offices nearest to `position`; returns the nearest one's id."""
        service_ids = await resolve_one("service", service)  # an ambiguous "passport" narrows to offices for either
        records = await call(backend().catalogue.services, service_ids) if service_ids else []
        nearest = await call(backend().catalogue.nearest_offices, *position, [r.id for r in records])
        if not nearest:
            dispatcher.utter_message(
                text=NO_OFFICE.format(where="near you"), buttons=[button("Talk to a person", "request_human")]
            )
            return None
        subject = f" for {join_words([r.name.lower() for r in records], last='or')}" if records else ""
        lines = " ".join(
            f"{number}. {o.name}, {place_text(o, today, today)}, {distance_text(km)} away. {today_text(o, today)}"
            for number, (o, km) in enumerate(nearest, start=1)
        )
        dispatcher.utter_message(
            text=f"The nearest offices{subject}: {lines}",
            buttons=[button(o.name, "find_office", office=o.id) for o, _ in nearest],
        )
        dispatcher.utter_message(json_message=venue(nearest[0][0], today))
        return nearest[0][0].id

    @staticmethod
    async def _list(
        dispatcher: CollectingDispatcher,
        offices: List[OfficeRecord],
        today: date,
        service: Optional[str],
        note: str,
    ) -> None:
        if not offices:
            dispatcher.utter_message(
                text=NO_OFFICE.format(where="for that"), buttons=[button("Talk to a person", "request_human")]
            )
            return
        record = await call(backend().catalogue.service, service) if service else None
        subject = f" for {record.name.lower()}" if record else ""
        lines = office_listing(offices, today)
        dispatcher.utter_message(
            text=f"{note}Offices{subject}: {lines}",
            buttons=office_buttons(offices, "find_office"),
        )

    @staticmethod
    async def _ask_district(dispatcher: CollectingDispatcher, hours_question: bool) -> None:
        offices = await call(backend().catalogue.offices)
        intent = "ask_opening_hours" if hours_question else "find_office"
        dispatcher.utter_message(  # every office, service centres first: a caller without words chooses one
            text="Which office, or which part of the city are you in?",
            buttons=[button(o.name, intent, office=o.id) for o in offices],
        )
