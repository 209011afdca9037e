"""How to get a service the way the citizen said they can or must: in person, or from home (entity and slot `mode`)."""

from __future__ import annotations

from datetime import date
from typing import Dict, List, Optional

from actions.offices import office_listing
from actions.shared import button, office_buttons
from onewindow.backend.records import CityRecord, OfficeRecord, ServiceRecord
from onewindow.text.channel_wording import Abilities, Prompt

IN_PERSON = "in_person"
ONLINE = "online"  # from home: online, by post, without going out
MODES = (IN_PERSON, ONLINE)
NO_VISIT_HELP = Prompt(
    chat="If you cannot get to an office, a person at the city hotline, {hotline}, can tell you what help there is.",
    voice="If you cannot get to an office, a person can tell you what help there is: just ask for one.",
    keypad="If you cannot get to an office, a person can tell you what help there is: choose a person in the main menu.",
)


def stated_mode(value: object) -> Optional[str]:
    """The constraint the citizen stated (the slot may hold a list when several phrases were said: the last counts)."""
    if isinstance(value, list):
        value = value[-1] if value else None
    return value if value in MODES else None


def documents_listing(service: ServiceRecord) -> str:
    return " ".join(f"{number}. {item}." for number, item in enumerate(service.documents, start=1))


def in_person(service: ServiceRecord, offices: List[OfficeRecord], today: date) -> str:
    """Where to go, when they are open, what to bring and booking; the online way only as an aside."""
    opening = (
        f"You can do {service.name.lower()} in person at an office, or online at the {service.online_where}."
        if service.online_available
        else f"{service.name} is done in person, at an office."
    )
    where = f" These offices offer it: {office_listing(offices, today)}" if offices else ""
    booking = " You can book an appointment first, so you do not have to wait." if service.bookable else ""
    visit = " One visit is enough if you bring all of them." if service.one_visit else ""
    return f"{opening}{where} Bring these {len(service.documents)} things: {documents_listing(service)}{visit}{booking}"


def from_home(service: ServiceRecord, offices: List[OfficeRecord], today: date, city: CityRecord, abilities: Abilities) -> str:
    """The online route, or plainly that there is none, and the offices."""
    if service.online_available:
        return (
            f"You can do {service.name.lower()} from home, online, at the {service.online_where}. "
            f"You do not need to go to an office. Have these ready: {documents_listing(service)}"
        )
    where = f" These offices offer it: {office_listing(offices, today)}" if offices else ""
    return (
        f"{service.name} cannot be done online or from home. You need to go to an office{' once' if service.one_visit else ''}."
        f"{where} {NO_VISIT_HELP.render(abilities, hotline=city.hotline_number)}"
    )


def route_text(
    mode: str, service: ServiceRecord, offices: List[OfficeRecord], today: date, city: CityRecord, abilities: Abilities
) -> str:
    """The answer for the constraint the citizen stated, worded for their channel."""
    return in_person(service, offices, today) if mode == IN_PERSON else from_home(service, offices, today, city, abilities)


def route_buttons(mode: str, service: ServiceRecord, offices: List[OfficeRecord]) -> List[Dict[str, str]]:
    """The offices listed (when the answer lists them), then booking and what to bring."""
    listed = offices if mode == IN_PERSON or not service.online_available else []
    extra = [button("Book an appointment", "book_appointment", service=service.id)] if service.bookable and listed else []
    if mode == ONLINE and service.online_available:
        extra = [button("How long it takes", "ask_processing_time", service=service.id)]
    return [*office_buttons(listed, "find_office"), *extra]
