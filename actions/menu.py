"""The main menu: every top task reachable by choosing, on any channel (a phone caller by keypad alone).

The hotline sends "/main_menu" when a call starts; a chat gets it by asking for the menu. One intent,
main_menu, with the entity `menu` naming a submenu: appointments, services (the departments),
department (the services of one), service (what to bring, the fee and the time for one) and offices.
Every list is sent whole, each choice a button: the phone pages long lists.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.services import documents, duration, fee
from actions.shared import abilities_of, backend, button, call, leave_task
from onewindow.text.channel_wording import Prompt

MENU = Prompt(
    chat="How can I help? Choose one of these, or type your question.",
    voice="How can I help? Say what you need, or choose one of these.",
    keypad="How can I help? Please choose one of these.",
)
APPOINTMENTS = Prompt("Appointments. What would you like to do?")
DEPARTMENTS = Prompt(
    "Documents and fees. Which department looks after the service?",
    chat="You can also type the name of the service.",
    voice="You can also say the name of the service.",
)
SERVICES = Prompt("{department}. Which service is it?")
OFFICES = Prompt(
    "Offices and hours. Which office?",
    chat="You can also type your district.",
    voice="You can also say your district.",
)


def menu_button() -> Dict[str, str]:
    return button("Main menu", "main_menu")


def main_menu_buttons() -> List[Dict[str, str]]:
    """The top tasks: appointments, documents and fees, life events, offices, status, a report, a person."""
    return [
        button("Appointments", "main_menu", menu="appointments"),
        button("Documents and fees", "main_menu", menu="services"),
        button("Life events", "life_event"),
        button("Offices and hours", "main_menu", menu="offices"),
        button("Application status", "check_status"),
        button("Report a problem", "report_issue"),
        button("Talk to a person", "request_human"),
    ]


def send_main_menu(dispatcher: CollectingDispatcher, tracker: Tracker, opening: str = "") -> None:
    """The main menu, after `opening` when there is one (the miss ladder's apology)."""
    text = MENU.render(abilities_of(tracker))
    dispatcher.utter_message(text=f"{opening} {text}" if opening else text, buttons=main_menu_buttons())


def entity(tracker: Tracker, name: str) -> Optional[str]:
    return next(iter(tracker.get_latest_entity_values(name)), None)


class ActionMainMenu(Action):
    """The main menu or one of its submenus; it leaves any task under way."""

    def name(self) -> Text:
        return "action_main_menu"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[EventType]:
        submenu = entity(tracker, "menu")
        events: List[EventType] = leave_task()
        if submenu == "appointments":
            dispatcher.utter_message(
                text=APPOINTMENTS.render(abilities_of(tracker)),
                buttons=[
                    button("Book an appointment", "book_appointment"),
                    button("Check an appointment", "check_appointment"),
                    button("Move an appointment", "reschedule_appointment"),
                    button("Cancel an appointment", "cancel_appointment"),
                    menu_button(),
                ],
            )
        elif submenu == "services":
            await self._departments(dispatcher, tracker)
        elif submenu == "department":
            await self._services(dispatcher, tracker, entity(tracker, "department"))
        elif submenu == "service":
            events += await self._service(dispatcher, tracker, entity(tracker, "service"))
        elif submenu == "offices":
            offices = await call(backend().catalogue.offices)
            dispatcher.utter_message(
                text=OFFICES.render(abilities_of(tracker)),
                buttons=[*(button(o.name, "ask_opening_hours", office=o.id) for o in offices), menu_button()],
            )
        else:
            send_main_menu(dispatcher, tracker)
        return events

    @staticmethod
    async def _departments(dispatcher: CollectingDispatcher, tracker: Tracker) -> None:
        services = await call(backend().catalogue.services)
        departments = sorted({s.department for s in services})
        dispatcher.utter_message(
            text=DEPARTMENTS.render(abilities_of(tracker)),
            buttons=[*(button(d, "main_menu", menu="department", department=d) for d in departments), menu_button()],
        )

    async def _services(self, dispatcher: CollectingDispatcher, tracker: Tracker, department: Optional[str]) -> None:
        services = [s for s in await call(backend().catalogue.services) if s.department == department]
        if not services:
            await self._departments(dispatcher, tracker)
            return
        dispatcher.utter_message(
            text=SERVICES.render(abilities_of(tracker), department=department),
            buttons=[
                *(button(s.name, "main_menu", menu="service", service=s.id) for s in sorted(services, key=lambda s: s.name)),
                button("Other departments", "main_menu", menu="services"),
                menu_button(),
            ],
        )

    async def _service(self, dispatcher: CollectingDispatcher, tracker: Tracker, service_id: Optional[str]) -> List[EventType]:
        service = await call(backend().catalogue.service, service_id) if service_id else None
        if service is None:
            await self._departments(dispatcher, tracker)
            return []
        city = await call(backend().catalogue.city)
        options = [button("Where to go", "find_office", service=service.id)]
        if service.bookable:
            options.append(button("Book an appointment", "book_appointment", service=service.id))
        dispatcher.utter_message(
            text=" ".join((documents(service, city.currency), fee(service, city.currency), duration(service, city.currency))),
            buttons=[
                *options,
                button("Other services", "main_menu", menu="department", department=service.department),
                menu_button(),
            ],
        )
        return [SlotSet("service", service.id)]
