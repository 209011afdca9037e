"""Questions about one service: what it is, documents, fee, time, online or in person."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.listed import reference_in
from actions.routes import documents_listing, route_buttons, route_text, stated_mode
from actions.shared import abilities_of, backend, button, call, known_service, now, resolve_one, service_buttons
from onewindow.backend.records import ServiceRecord
from onewindow.text.channel_wording import Abilities, Prompt
from onewindow.text.wording import join_words, money, processing_time

POPULAR = ["passport_renewal", "id_card_renewal", "birth_registration", "pension_application", "unemployment_benefit"]
ASK_WHICH_SERVICE = Prompt(
    "Which service is it about?",
    chat="You can type its name, for example passport renewal.",
    voice="You can say its name, for example passport renewal.",
)


def about(service: ServiceRecord, currency: str) -> str:
    """What it is, who can apply, what it costs and how long it takes."""
    return (
        f"{service.name}. {service.description} Who can apply: {service.eligibility} "
        f"{fee(service, currency)} It takes {processing_time(service.processing_days)}."
    )


def overview(service: ServiceRecord, currency: str) -> str:
    return f"{about(service, currency)} {online(service)}"


PERIOD_WORDS = {"week": "a week", "month": "a month", "year": "a year", "once": "as one payment"}


def payment(service: ServiceRecord, currency: str) -> str:
    """What a benefit pays: "Child benefit pays 150 dollars a month. That is for each child, ..."."""
    benefit = service.benefit
    if benefit is None:
        return ""
    most = "up to " if benefit.up_to else ""
    return f"{service.name} pays {most}{money(benefit.amount, currency)} {PERIOD_WORDS[benefit.period]}. {benefit.basis}"


def amount(service: ServiceRecord, currency: str) -> str:
    """ "How much do I get": the benefit's amount, or plainly that the service pays nothing, and its fee."""
    if service.benefit is None:
        return f"{service.name} is not a payment: it does not pay you money. {fee(service, currency)}"
    return (
        f"{payment(service, currency)} It is free to apply."
        if service.fee == 0
        else f"{payment(service, currency)} {fee(service, currency)}"
    )


def documents(service: ServiceRecord, _currency: str) -> str:
    listing = documents_listing(service)
    visit = (
        " If you bring all of these, one visit is enough."
        if service.one_visit
        else " You may need to come back once to collect the result."
    )
    return f"For {service.name.lower()}, please bring {len(service.documents)} things. {listing}{visit}"


def fee(service: ServiceRecord, currency: str) -> str:
    """What it costs; a benefit that is free to apply for also says what it pays."""
    price = money(service.fee, currency)
    if price == "free" and service.benefit:
        text = f"It is free to apply for {service.name.lower()}. {payment(service, currency)}"
    else:
        text = f"{service.name} is free." if price == "free" else f"{service.name} costs {price}."
    return f"{text} {service.fee_note}" if service.fee_note else text


def duration(service: ServiceRecord, _currency: str) -> str:
    return f"{service.name} takes {processing_time(service.processing_days)}."


def online(service: ServiceRecord, _currency: str = "") -> str:
    if service.online_available:
        return (
            f"You can do {service.name.lower()} fully online, at the {service.online_where}. "
            "You can also go to an office if you prefer."
        )
    visit = " One visit is enough if you bring all the documents." if service.one_visit else ""
    return f"{service.name} cannot be done fully online. You need to go to an office.{visit}"


ASPECTS: Dict[str, Callable[[ServiceRecord, str], str]] = {
    "ask_service_info": overview,
    "ask_documents": documents,
    "ask_fee": fee,
    "ask_benefit_amount": amount,
    "ask_processing_time": duration,
    "ask_online": online,
}


# questions about how to get a service: a stated constraint (in person, from home) shapes their answer
ROUTE_ASPECTS = ("ask_service_info", "ask_online")


def follow_up_buttons(service: ServiceRecord, aspect: str) -> List[Dict[str, str]]:
    options = [
        ("What to bring", "ask_documents", True),
        ("Where to go", "find_office", True),
        ("Book an appointment", "book_appointment", service.bookable),
        ("How much you get", "ask_benefit_amount", service.benefit is not None),
        ("How much it costs", "ask_fee", service.benefit is None),
    ]
    return [button(title, intent, service=service.id) for title, intent, ok in options if ok and intent != aspect]


class ActionAnswerServiceQuestion(Action):
    """Answers from the database; asks which service when it is unknown or ambiguous."""

    def name(self) -> Text:
        return "action_answer_service_question"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[Text, Any]) -> List[Dict[Text, Any]]:
        intent = tracker.get_intent_of_latest_message()
        aspect = intent if intent in ASPECTS else tracker.get_slot("question") or "ask_service_info"
        reference = await call(reference_in, tracker, ("service",))  # "the rent one", after a list of services
        ids = [reference[1]] if reference else await resolve_one("service", tracker.get_slot("service"))
        if len(ids) != 1:
            await self._ask_which(dispatcher, ids, aspect, tracker.get_slot("service"), abilities_of(tracker))
            return [SlotSet("question", aspect), SlotSet("service", None)]
        service = await known_service(ids[0])
        city = await call(backend().catalogue.city)
        mode = stated_mode(tracker.get_slot("mode"))
        if mode and aspect in ROUTE_ASPECTS:
            offices = await call(backend().catalogue.offices, service_id=service.id)
            route = route_text(mode, service, offices, now().date(), city, abilities_of(tracker))
            text = f"{about(service, city.currency)} {route}" if aspect == "ask_service_info" else route
            dispatcher.utter_message(text=text, buttons=route_buttons(mode, service, offices))
        else:
            dispatcher.utter_message(text=ASPECTS[aspect](service, city.currency), buttons=follow_up_buttons(service, aspect))
        return [SlotSet("question", None), SlotSet("service", service.id)]

    @staticmethod
    async def _ask_which(
        dispatcher: CollectingDispatcher, ids: List[str], aspect: str, said: Optional[str], abilities: Abilities
    ) -> None:
        if ids:
            services = await call(backend().catalogue.services, ids)
            names = join_words([s.name for s in services], last="or")
            dispatcher.utter_message(text=f"Do you mean {names}?", buttons=service_buttons(services, aspect))
            return
        services = await call(backend().catalogue.services, POPULAR)
        opening = f"Sorry, I do not know a service called {said}. " if said else ""
        dispatcher.utter_message(  # the other services by department, for a caller without words
            text=opening + ASK_WHICH_SERVICE.render(abilities),
            buttons=[*service_buttons(services, aspect), button("Other services", "main_menu", menu="services")],
        )
