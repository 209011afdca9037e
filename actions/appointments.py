"""Booking, rescheduling, cancelling and checking appointments."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Any, Callable, Dict, List, Optional, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.forms import TaskFormValidation
from actions.handoff import linked_phone
from actions.menu import main_menu_buttons
from actions.ownership import FORGET_PROOF, FORMATS, RecordProof, gate, refusal
from actions.shared import (
    abilities_of,
    backend,
    button,
    call,
    channel_of,
    choices_offered_this_turn,
    first,
    known_office,
    known_service,
    now,
    office_buttons,
    requester_of,
    resolve_one,
    service_buttons,
    venue,
)
from onewindow.backend import BookingError
from onewindow.backend.citizens import normalise_phone
from onewindow.backend.ownership import NotYours
from onewindow.backend.records import AppointmentRecord
from onewindow.text.channel_wording import KEYPAD, Prompt
from onewindow.text.dates import parse_date, parse_time, spoken_date, spoken_datetime, spoken_time
from onewindow.text.wording import join_words

DomainDict = Dict[Text, Any]
Slots = Dict[Text, Any]
BOOKABLE_EXAMPLES = ["passport_renewal", "id_card_renewal", "birth_registration", "marriage_registration", "pension_application"]
NAME_PREFIX = re.compile(r"^(my name is|my name's|name is|i am|i'm|it is|it's|this is|call me)\s+", re.I)
CHAT_DAYS = 4  # a chat offers the first free days and takes any typed day; a call offers every free day
AT_COUNTER = "to be given at the counter"  # citizen_name of a booking made under the caller's number

DAY_NOT_UNDERSTOOD = Prompt(
    "Sorry, I did not understand the day.",
    chat="You can type, for example, next Monday or 3 December.",
    voice="You can say, for example, next Monday or 3 December.",
    keypad="Please choose one of the days.",
)
TIME_NOT_UNDERSTOOD = Prompt(
    "Sorry, I did not understand the time.",
    chat="You can type, for example, 10 am or half past two.",
    voice="You can say, for example, 10 am or half past two.",
    keypad="Please choose one of the times.",
)
NAME_REFUSED = Prompt(
    chat="Please type the name for the appointment, using letters only.",
    voice="Please say the name for the appointment.",
    keypad="That is not a name.",
)
ASK_NAME = Prompt(
    "What name should the appointment be under?",
    chat="Please type your full name.",
    voice="Please say your full name.",
)
NO_FREE_DAYS = Prompt(
    "Sorry, this office has no free appointments in the next two months. Please choose another office.",
    chat="Or type stop.",
    voice="Or say stop.",
)
ASK_PHONE = Prompt("What phone number can the office call if something changes?")
ASK_WHICH_APPOINTMENT = Prompt(
    "Your upcoming appointments: {listing} Which one is it?",
    chat="You can also type its number.",
    voice="You can also say its number.",
    keypad="You can also key in its ten digits.",
)
NONE_UPCOMING = Prompt(
    "You have no upcoming appointments with us.",
    chat="If you have an appointment number, type it now. To book a new appointment, choose the main menu.",
    voice="If you have an appointment number, say it now. To book a new appointment, choose the main menu.",
    keypad="If you have an appointment number, key in its ten digits now. To book a new appointment, choose the main menu.",
)
ASK_SERVICE = Prompt(
    "Which service is the appointment for?",
    chat="You can type its name, for example passport renewal.",
    voice="You can say its name, for example passport renewal.",
)
ASK_OFFICE = Prompt(
    "Which office would you like to go to? {count} {offer} {service}.",
    chat="You can also type your district.",
    voice="You can also say your district.",
)

PROBLEMS = {
    "not_bookable": "That service does not take appointments.",
    "not_offered": "That office does not offer this service.",
    "past": "That day has already passed.",
    "too_far": "That is too far ahead. You can book up to two months ahead.",
    "closed_day": "The office is closed on that day.",
    "outside_hours": "The office is not open at that time.",
    "fully_booked": "That day is fully booked.",
    "slot_taken": "That time is already taken.",
    "too_soon": "That time is now too close to book.",
    "duplicate": "You already have an appointment at that time.",
    "bad_phone": "That does not look like a phone number.",
    "unknown_reference": "I could not find an appointment with that number. Please check it.",
    "not_active": "That appointment has already been cancelled.",
}


def times_text(starts: List[datetime]) -> str:
    return join_words([spoken_datetime(start) for start in starts], last="or")


def alternatives_buttons(starts: List[datetime]) -> List[Dict[str, str]]:
    return [button(spoken_datetime(s), "inform", date=s.date().isoformat(), time=s.strftime("%H:%M")) for s in starts]


def report_problem(dispatcher: CollectingDispatcher, error: BookingError) -> None:
    text = PROBLEMS.get(error.reason, "That did not work.")
    if error.alternatives:
        text += f" The nearest free times are {times_text(error.alternatives)}."
    dispatcher.utter_message(text=text, buttons=alternatives_buttons(error.alternatives))


def confirmation_text(record: AppointmentRecord, verb: str) -> str:
    items = " ".join(f"{n}. {item}." for n, item in enumerate(record.documents, start=1))
    return (
        f"Your appointment is {verb}. {record.service_name} at {record.office_name}, "
        f"{record.office_address}, on {spoken_datetime(record.starts_at)}. "
        f"Your appointment number is {record.reference}. Please bring: {items} "
        "Please arrive ten minutes early. You can change or cancel it here at any time."
    )


async def send_visit_card(dispatcher: CollectingDispatcher, record: AppointmentRecord) -> None:
    """For channels that show them: the checklist of documents to bring and the office on a map."""
    dispatcher.utter_message(
        json_message={
            "checklist": {
                "title": f"{record.service_name}: bring these to {record.office_name}",
                "items": list(record.documents),
                "reference": record.reference,
            }
        }
    )
    office = await call(backend().catalogue.office, record.office_id)
    if office and office.latitude is not None:
        dispatcher.utter_message(json_message=venue(office, record.starts_at.date()))


class InFormOrder:
    """Validate slots in the form's order, so the office is known before the date, and so on."""

    async def get_validation_events(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Dict[Text, Any]]:
        order = self.domain_slots(domain)  # type: ignore[attr-defined]  # a mixin: FormValidationAction, beside it in the form class, has it
        unordered = tracker.slots_to_validate

        def ordered() -> Slots:
            return dict(sorted(unordered().items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)))

        tracker.slots_to_validate = ordered
        return await super().get_validation_events(dispatcher, tracker, domain)  # type: ignore[misc]  # FormValidationAction's, next in the form class's MRO


class DateTimeValidation(InFormOrder):
    """Date, time and confirmation checks shared by booking and rescheduling."""

    async def validate_appointment_date(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Slots:
        answer = parse_date(str(first(value)), now().date())
        if answer.problem == "impossible":
            dispatcher.utter_message(text="That date does not exist. Please give another day.")
            return {"appointment_date": None}
        if answer.value is None:
            dispatcher.utter_message(text=DAY_NOT_UNDERSTOOD.render(abilities_of(tracker)))
            return {"appointment_date": None}
        service, office = tracker.get_slot("service"), tracker.get_slot("office")
        if service and office:
            try:
                await call(backend().bookings.check_day, service, office, answer.value)
            except BookingError as error:
                report_problem(dispatcher, error)
                return {"appointment_date": None}
        elif answer.value < now().date():
            dispatcher.utter_message(text=PROBLEMS["past"])
            return {"appointment_date": None}
        return {"appointment_date": answer.value.isoformat()}

    async def validate_appointment_time(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Slots:
        day_text = tracker.get_slot("appointment_date")
        service, office = tracker.get_slot("service"), tracker.get_slot("office")
        if not (day_text and service and office):
            return {"appointment_time": None}  # asked again once the day is known
        day = date.fromisoformat(day_text)
        wanted = parse_time(str(first(value)))
        try:
            free = await call(backend().bookings.check_day, service, office, day)
            if wanted.period:
                start = _first_in_period(free, wanted.period)
            elif wanted.value:
                start = await call(backend().bookings.check_time, office, day, wanted.value, free)
            else:
                dispatcher.utter_message(text=TIME_NOT_UNDERSTOOD.render(abilities_of(tracker)))
                return {"appointment_time": None}
        except BookingError as error:
            report_problem(dispatcher, error)
            return {
                "appointment_time": None,
                **({"appointment_date": None} if error.reason in ("fully_booked", "closed_day", "past") else {}),
            }
        return {"appointment_time": start.strftime("%H:%M")}

    async def validate_booking_confirmed(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Slots:
        return {"booking_confirmed": bool(value)}


def _first_in_period(free: List[datetime], period: tuple) -> datetime:
    for start in free:
        if period[0] <= start.time() < period[1]:
            return start
    raise BookingError("slot_taken", free[:3])


class ReferenceValidation(RecordProof, InFormOrder):
    """Checks an appointment number and its owner, then fills in the appointment's service and office."""

    kind = "appointment"
    reference_slot = "appointment_reference"

    def fetch(self) -> Callable[..., Tuple[Any, Optional[AppointmentRecord]]]:
        return backend().ownership.appointment

    def unknown_text(self, code: str) -> str:
        return PROBLEMS["unknown_reference"]

    def accepted(self, record: AppointmentRecord, dispatcher: CollectingDispatcher) -> Slots:
        """The service and office of a proven appointment; a cancelled one can only be checked."""
        if record.status != "booked" and self.form_name() != "check_appointment_form":  # type: ignore[attr-defined]  # a mixin: FormValidationAction has it
            dispatcher.utter_message(text=PROBLEMS["not_active"])
            return {"appointment_reference": None}
        return {"service": record.service_id, "office": record.office_id}

    async def validate_appointment_reference(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Slots:
        return await self.check_reference(value, dispatcher, tracker)


BOOKING_AT = Prompt(
    "I will book it at the {office}.",
    chat="To use another office, type which one.",
    voice="To use another office, say which one.",
)


def booking_at(office_name: str, tracker: Tracker) -> str:
    """Which office a booking is for when the citizen did not just choose it, and that it can change."""
    return BOOKING_AT.render(abilities_of(tracker), office=office_name)


def not_offered(office_name: str, service_name: str) -> str:
    return f"The {office_name} does not offer {service_name.lower()}."


class ValidateAppointmentForm(DateTimeValidation, TaskFormValidation):
    def name(self) -> Text:
        return "validate_appointment_form"

    async def validate_service(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Slots:
        ids = await resolve_one("service", str(first(value)))
        services = await call(backend().catalogue.services, ids) if ids else []
        bookable = [s for s in services if s.bookable]
        if len(bookable) == 1:
            return {"service": bookable[0].id, **await self._settled_office(dispatcher, tracker, bookable[0])}
        if len(bookable) > 1:
            names = join_words([s.name for s in bookable], last="or")
            dispatcher.utter_message(text=f"Do you mean {names}?", buttons=service_buttons(bookable, "inform"))
        elif services:
            where = services[0].online_where
            dispatcher.utter_message(
                text=f"{services[0].name} does not need an appointment."
                + (f" You can do it online, at the {where}." if where else "")
            )
        return {"service": None}

    @staticmethod
    async def _settled_office(dispatcher: CollectingDispatcher, tracker: Tracker, service: Any) -> Slots:
        """The office settled before the service (asked about, found, chosen): kept if it offers the service, and said."""
        office_id = tracker.get_slot("office")
        if not office_id or "office" in tracker.slots_to_validate():
            return {}  # no office yet, or it is validated next, with this service
        office = await call(backend().catalogue.office, office_id)
        if office is None:
            return {"office": None}
        if service.id not in office.service_ids:
            dispatcher.utter_message(text=not_offered(office.name, service.name))
            return {"office": None}
        dispatcher.utter_message(text=booking_at(office.name, tracker))
        return {}

    async def validate_office(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Slots:
        service = tracker.get_slot("service")
        said = str(first(value))
        named = await resolve_one("office", said)
        if not service:  # an office named before the service: kept, and checked once the service is known
            return {"office": named[0] if len(named) == 1 else None}
        offices = await call(backend().catalogue.offices, service_id=service)
        matches = [o for o in offices if o.id in named]
        if not matches:
            districts = await resolve_one("district", said)
            matches = [o for o in offices if o.district_id in districts]
        if len(matches) == 1:
            if tracker.get_slot("requested_slot") != "office":  # not the answer to "which office?": say which one
                dispatcher.utter_message(text=booking_at(matches[0].name, tracker))
            return {"office": matches[0].id}
        if not matches and len(named) == 1:  # an office that does not offer the service: the form asks for one that does
            office, record = await known_office(named[0]), await known_service(service)
            dispatcher.utter_message(text=not_offered(office.name, record.name))
        return {"office": None}

    async def extract_citizen_name(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Slots:
        """The name on the citizen record of a chat or caller the channel vouched for: not asked again."""
        if tracker.get_slot("citizen_name") or tracker.get_slot("requested_slot") == "citizen_name":
            return {}
        identity = requester_of(tracker).identity
        name = await call(backend().citizens.name_for_identity, *identity) if identity else None
        return {"citizen_name": name} if name else {}

    async def validate_citizen_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Slots:
        on_call = abilities_of(tracker).on_call
        if (
            on_call
            and tracker.get_slot("requested_slot") == "citizen_name"
            and tracker.get_intent_of_latest_message() == "affirm"
        ):
            phone = await call(linked_phone, tracker)  # none when the exchange passed no number: the caller gives one next
            return {"citizen_name": AT_COUNTER, **({"citizen_phone": phone} if phone else {})}
        name = NAME_PREFIX.sub("", " ".join(str(first(value)).split())).strip(" .,!")
        letters = sum(ch.isalpha() for ch in name)
        if not 2 <= len(name) <= 100 or letters < 2 or any(ch.isdigit() or ch in "<>{}[]/\\=;@#$%*_|~^`" for ch in name):
            dispatcher.utter_message(text=NAME_REFUSED.render(abilities_of(tracker)))
            return {"citizen_name": None}
        return {"citizen_name": name}

    async def validate_citizen_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Slots:
        phone = normalise_phone(str(first(value)))
        if phone is None:
            dispatcher.utter_message(
                text="That does not look like a phone number. Please give it with the area code, for example 0412 345 678."
            )
        return {"citizen_phone": phone}


class ValidateRescheduleForm(ReferenceValidation, DateTimeValidation, TaskFormValidation):
    def name(self) -> Text:
        return "validate_reschedule_form"


class ValidateCancelForm(ReferenceValidation, TaskFormValidation):
    def name(self) -> Text:
        return "validate_cancel_form"


class ValidateCheckAppointmentForm(ReferenceValidation, TaskFormValidation):
    def name(self) -> Text:
        return "validate_check_appointment_form"


# --- questions the forms ask, with buttons built from real data -------------------


def ending_in(phone: str) -> str:
    """ "ending in 5 6 7 8": the last four digits, said one by one."""
    return "ending in " + " ".join(phone[-4:])


class ActionAskCitizenName(Action):
    """Asks for the name; a caller may book under their number instead (the office takes the name at the counter)."""

    def name(self) -> Text:
        return "action_ask_citizen_name"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        abilities = abilities_of(tracker)
        buttons = []
        if abilities.on_call:  # the office takes the name at the counter
            phone = await call(linked_phone, tracker)
            under = f"the number you are calling from, {ending_in(phone)}" if phone else "a phone number instead of a name"
            buttons = [button(f"Book under {under}. The office takes your name at the counter", "affirm")]
        dispatcher.utter_message(text=ASK_NAME.render(abilities), buttons=buttons)
        return []


class ActionAskCitizenPhone(Action):
    """Asks for a phone number; the number a channel vouched for (the caller's, a linked chat's) is one button."""

    def name(self) -> Text:
        return "action_ask_citizen_phone"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        abilities = abilities_of(tracker)
        phone = await call(linked_phone, tracker)
        whose = "you are calling from" if abilities.on_call else "linked to this chat"
        buttons = [button(f"The number {whose}, {ending_in(phone)}", "inform", phone=phone)] if phone else []
        dispatcher.utter_message(text=ASK_PHONE.render(abilities), buttons=buttons)
        return []


class ActionAskAppointmentReference(Action):
    """Asks for the appointment number; a chat or caller the channel vouched for picks from its appointments."""

    text = f"What is your appointment number? {FORMATS['appointment']}"

    def name(self) -> Text:
        return "action_ask_appointment_reference"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        upcoming = await call(backend().ownership.upcoming_appointments, requester_of(tracker))
        if upcoming is None:  # nobody known: the number is the way in
            dispatcher.utter_message(text=self.text)
            return []
        abilities = abilities_of(tracker)
        if not upcoming:
            dispatcher.utter_message(
                text=NONE_UPCOMING.render(abilities),
                buttons=[button("Main menu", "main_menu"), button("Talk to a person", "request_human")],
            )
            return []
        listing = " ".join(
            f"{n}. {r.reference}: {r.service_name} at {r.office_name}, {spoken_datetime(r.starts_at)}."
            for n, r in enumerate(upcoming, start=1)
        )
        dispatcher.utter_message(
            text=ASK_WHICH_APPOINTMENT.render(abilities, listing=listing),
            buttons=[
                button(f"{r.reference}, {spoken_date(r.starts_at.date())}", "inform", reference=r.reference) for r in upcoming
            ],
        )
        return []


class ActionAskService(Action):
    def name(self) -> Text:
        return "action_ask_service"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        if choices_offered_this_turn(tracker):  # "Do you mean A or B?" is the question this turn
            return []
        abilities = abilities_of(tracker)
        services = await call(backend().catalogue.services, BOOKABLE_EXAMPLES)
        if abilities.mode == KEYPAD:  # no words to name one: every bookable service, the common ones first
            others = sorted(
                (s for s in await call(backend().catalogue.services) if s.bookable and s not in services), key=lambda s: s.name
            )
            services = [*services, *others]
        dispatcher.utter_message(text=ASK_SERVICE.render(abilities), buttons=service_buttons(services, "inform"))
        return []


class ActionAskOffice(Action):
    def name(self) -> Text:
        return "action_ask_office"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        service = await known_service(tracker.get_slot("service"))
        offices = await call(backend().catalogue.offices, service_id=service.id)
        districts = [d for said in tracker.get_latest_entity_values("district") for d in await resolve_one("district", said)]
        nearby = [o for o in offices if o.district_id in districts]
        if len(nearby) > 1:  # the district just named has several: only those
            dispatcher.utter_message(text="Which of these offices?", buttons=office_buttons(nearby, "inform"))
            return []
        dispatcher.utter_message(
            text=ASK_OFFICE.render(
                abilities_of(tracker),
                count=len(offices),
                offer="office offers" if len(offices) == 1 else "offices offer",
                service=service.name.lower(),
            ),
            buttons=office_buttons(offices, "inform"),
        )
        return []


class ActionAskAppointmentDate(Action):
    def name(self) -> Text:
        return "action_ask_appointment_date"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        office = tracker.get_slot("office")
        current = await _current_day(tracker)
        abilities = abilities_of(tracker)
        wanted = CHAT_DAYS if abilities.typing else backend().bookings.horizon_days  # a call offers every free day
        free = [
            start
            for start in await call(backend().bookings.next_free, office, now().date(), wanted + 1)
            if start.date() != current
        ][:wanted]
        if not free:
            dispatcher.utter_message(text=NO_FREE_DAYS.render(abilities))
            return [SlotSet("office", None)]
        days = [start.date() for start in free]
        dispatcher.utter_message(
            text=f"Which day would you like? The first free days are {join_words([spoken_date(d) for d in days[:CHAT_DAYS]], last='and')}.",
            buttons=[button(spoken_date(d), "inform", date=d.isoformat()) for d in days],
        )
        return []


async def _current_day(tracker: Tracker) -> Optional[date]:
    """The day of the appointment being moved (None when booking): moving it offers other days."""
    if tracker.active_loop_name != "reschedule_form":
        return None
    _, record = await call(backend().ownership.appointment, tracker.get_slot("appointment_reference"), requester_of(tracker))
    return record.starts_at.date() if record else None


class ActionAskAppointmentTime(Action):
    def name(self) -> Text:
        return "action_ask_appointment_time"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        day = date.fromisoformat(tracker.get_slot("appointment_date"))
        free = await call(backend().bookings.free_slots, tracker.get_slot("office"), day)
        dispatcher.utter_message(  # every free time is a button: the phone pages them
            text=f"What time on {spoken_date(day)}? Free times start at {spoken_time(free[0].time())}, and the last is {spoken_time(free[-1].time())}."
            if free
            else "That day has no free times left. Please choose another day.",
            buttons=[button(spoken_time(s.time()), "inform", time=s.strftime("%H:%M")) for s in free],
        )
        return [] if free else [SlotSet("appointment_date", None)]


class ActionAskBookingConfirmed(Action):
    def name(self) -> Text:
        return "action_ask_booking_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        service = await known_service(tracker.get_slot("service"))
        office = await known_office(tracker.get_slot("office"))
        moment = _slot_start(tracker)
        if tracker.active_loop_name == "reschedule_form":
            text = f"Shall I move appointment {tracker.get_slot('appointment_reference')} to {spoken_datetime(moment)}?"
        else:
            name = tracker.get_slot("citizen_name")
            whom = f"under the number {ending_in(tracker.get_slot('citizen_phone'))}" if name == AT_COUNTER else f"for {name}"
            text = f"Please check: {service.name} at {office.name}, on {spoken_datetime(moment)}, {whom}. Shall I book it?"
        dispatcher.utter_message(text=text, buttons=[button("Yes", "affirm"), button("No", "deny")])
        return []


class ActionAskCancelConfirmed(Action):
    def name(self) -> Text:
        return "action_ask_cancel_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        _, record = await call(backend().ownership.appointment, tracker.get_slot("appointment_reference"), requester_of(tracker))
        if record is None:
            refusal(dispatcher, "appointment")
            return []
        dispatcher.utter_message(
            text=f"Shall I cancel your appointment for {record.service_name} at {record.office_name} on {spoken_datetime(record.starts_at)}?",
            buttons=[button("Yes, cancel it", "affirm"), button("No, keep it", "deny")],
        )
        return []


def _slot_start(tracker: Tracker) -> datetime:
    day = date.fromisoformat(tracker.get_slot("appointment_date"))
    return datetime.combine(day, time.fromisoformat(tracker.get_slot("appointment_time")))


# --- what happens when a form is complete ----------------------------------------

RESET_BOOKING = [SlotSet("appointment_date", None), SlotSet("appointment_time", None), SlotSet("booking_confirmed", None)]


class ActionBookAppointment(Action):
    def name(self) -> Text:
        return "action_book_appointment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        if not tracker.get_slot("booking_confirmed"):
            dispatcher.utter_message(
                text="All right, I have not booked anything. Is there anything else I can do for you?",
                buttons=main_menu_buttons(),
            )
            return RESET_BOOKING
        try:
            record = await call(
                backend().bookings.book,
                tracker.get_slot("service"),
                tracker.get_slot("office"),
                _slot_start(tracker),
                None if tracker.get_slot("citizen_name") == AT_COUNTER else tracker.get_slot("citizen_name"),
                tracker.get_slot("citizen_phone"),
                channel_of(tracker),
            )
        except BookingError as error:
            report_problem(dispatcher, error)
            return [*RESET_BOOKING, FollowupAction("appointment_form")]
        at_counter = (
            " Please give your name at the counter when you arrive." if tracker.get_slot("citizen_name") == AT_COUNTER else ""
        )
        dispatcher.utter_message(text=confirmation_text(record, "booked") + at_counter)
        await send_visit_card(dispatcher, record)
        await link_caller(tracker)
        return [*RESET_BOOKING, SlotSet("appointment_reference", record.reference)]


async def link_caller(tracker: Tracker) -> None:
    """A caller who booked under the number they are calling from is that citizen: later calls find their appointments."""
    identity = requester_of(tracker).identity
    phone = normalise_phone(tracker.get_slot("citizen_phone"))
    if identity and identity[0] == "phone" and phone and normalise_phone(identity[1]) == phone:
        await call(backend().citizens.link_identity, "phone", identity[1], phone)


class ActionRescheduleAppointment(Action):
    def name(self) -> Text:
        return "action_reschedule_appointment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        if not await gate(dispatcher, tracker, "appointment", "appointment_reference"):
            return [*RESET_BOOKING, *FORGET_PROOF]
        if not tracker.get_slot("booking_confirmed"):
            dispatcher.utter_message(text="All right, I have not changed your appointment.")
            return RESET_BOOKING
        try:
            record = await call(
                backend().ownership.reschedule_appointment,
                tracker.get_slot("appointment_reference"),
                requester_of(tracker),
                _slot_start(tracker),
            )
        except NotYours:
            refusal(dispatcher, "appointment")
            return [*RESET_BOOKING, *FORGET_PROOF]
        except BookingError as error:
            report_problem(dispatcher, error)
            return [*RESET_BOOKING, FollowupAction("reschedule_form")]
        dispatcher.utter_message(text=confirmation_text(record, "moved"))
        await send_visit_card(dispatcher, record)
        return RESET_BOOKING


class ActionCancelAppointment(Action):
    def name(self) -> Text:
        return "action_cancel_appointment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        reset = [SlotSet("cancel_confirmed", None)]
        if not await gate(dispatcher, tracker, "appointment", "appointment_reference"):
            return [*reset, *FORGET_PROOF]
        if not tracker.get_slot("cancel_confirmed"):
            dispatcher.utter_message(text="All right, your appointment is still booked.")
            return reset
        try:
            record = await call(
                backend().ownership.cancel_appointment, tracker.get_slot("appointment_reference"), requester_of(tracker)
            )
        except NotYours:
            refusal(dispatcher, "appointment")
            return [*reset, *FORGET_PROOF]
        except BookingError as error:
            report_problem(dispatcher, error)
            return reset
        dispatcher.utter_message(
            text=f"Your appointment {record.reference} on {spoken_datetime(record.starts_at)} is cancelled. The time is free for someone else now."
        )
        return [*reset, SlotSet("appointment_reference", None), *FORGET_PROOF]


class ActionCheckAppointment(Action):
    def name(self) -> Text:
        return "action_check_appointment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict[Text, Any]]:
        _, record = await call(backend().ownership.appointment, tracker.get_slot("appointment_reference"), requester_of(tracker))
        if record is None:
            refusal(dispatcher, "appointment")
            return FORGET_PROOF
        if record.status != "booked":
            dispatcher.utter_message(text=f"Appointment {record.reference} was cancelled. You can book a new one.")
            return []
        dispatcher.utter_message(
            text=(
                f"Appointment {record.reference}: {record.service_name} at {record.office_name}, "
                f"{record.office_address}, on {spoken_datetime(record.starts_at)}."
            ),
            buttons=[
                button("Change the time", "reschedule_appointment", reference=record.reference),
                button("Cancel it", "cancel_appointment", reference=record.reference),
                button("What to bring", "ask_documents", service=record.service_id),
            ],
        )
        return []
