"""Simulated citizens for the conversation-level measure (tests/test_citizen_goals.py).

A goal (tests/citizen_goals.yml) is what one citizen wants and knows, written in their own style.
The citizen sends its first own turn; after each answer it decides, as a person reading the screen:
- a form asking for a slot (the tracker's requested slot) gets the goal's fact for that slot, or the
  button whose title matches a wish (`choose`); asked the same thing again (not understood), the
  citizen presses the offered button closest to what it meant, or for a day or time the first one;
- a question with a wished button ("Do you mean ...?", a menu) gets the press;
- otherwise the citizen's next own turn, then a wished follow-up button ("What to bring"), and asked
  which service it means, the service in its own words; else it has nothing more to say.
It stops when the goal's success criteria all hold, or after MAX_TURNS messages. Success is read
from what really happened, never from the assistant's wording: an appointment in the database, a
report or handoff stored for this conversation, the tracker, or facts read from the catalogue
(documents, fee, benefit amount, hours, the application's status) present in one answer.
"""

from __future__ import annotations

import re
import statistics
import time as clock
from dataclasses import dataclass, field
from datetime import date, timedelta
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
import yaml
from sqlalchemy import select

from harness.stack import Stack
from onewindow.backend import ServiceBackend
from onewindow.backend.records import ServiceRecord
from onewindow.storage import models
from onewindow.text.dates import WEEKDAY_NAMES, spoken_datetime
from onewindow.text.wording import money, periods_text, processing_time, week_text
from tests import expect

MAX_TURNS = 12
AREAS = ("appointments", "services", "life events", "offices and hours", "applications", "reports", "handoff")
STYLES = ("terse", "elderly", "typos", "spoken", "non-native")
SLOT_FACTS = (
    "service",
    "office",
    "appointment_date",
    "appointment_time",
    "citizen_name",
    "citizen_phone",
    "booking_confirmed",
    "cancel_confirmed",
    "appointment_reference",
    "application_reference",
    "record_proof",
    "report_category",
    "report_location",
    "report_description",
)
PRESS_FIRST = "press the first"  # a fact meaning: press the first button the question offers
FLEXIBLE = ("appointment_date", "appointment_time")  # asked again, a citizen takes the first one offered
CLOSE_ENOUGH = 0.6  # how alike a fact and a button title must be for the citizen to press it
FICTIONAL_PHONE = re.compile(r"^0491 57\d \d{3}$")  # the block Australia reserves for fiction, as the demo data
MISUNDERSTOOD_ACTION = "action_handle_low_confidence"  # asks to rephrase, the second time hands over
GOALS_REPORT = pytest.StashKey[str]()  # the printed table, shown by tests/conftest.py at the end of the run
Message = Dict[str, Any]


@dataclass(frozen=True)
class Goal:
    """One citizen: own turns, facts to answer questions with, wishes among buttons, and what success is."""

    id: str
    area: str
    style: str
    say: List[str]
    success: Dict[str, Any]
    facts: Dict[str, str] = field(default_factory=dict)
    choose: List[str] = field(default_factory=list)
    given: Dict[str, Any] = field(default_factory=dict)


def load_goals(path: Path) -> List[Goal]:
    """The goals of a YAML file (a list under `goals`)."""
    return [Goal(**entry) for entry in yaml.safe_load(path.read_text(encoding="utf-8"))["goals"]]


@dataclass
class Exchange:
    said: str
    replies: List[Message]


@dataclass
class Talk:
    """One goal's conversation so far: who talks, the values of its given records, every exchange."""

    sender: str
    values: Dict[str, str]
    exchanges: List[Exchange] = field(default_factory=list)

    @property
    def heard(self) -> List[Message]:
        return [reply for exchange in self.exchanges for reply in exchange.replies]

    @property
    def turns(self) -> int:
        return len(self.exchanges)


@dataclass
class Outcome:
    goal: Goal
    success: bool
    turns: int  # citizen messages sent: to success, or in all when it failed
    reason: str  # what was missing when it failed
    exchanges: List[Exchange]
    misses: int = 0  # times the assistant said it did not understand


def texts(replies: List[Message]) -> List[str]:
    return [r["text"] for r in replies if r.get("text")]


def flat(text: str) -> str:
    return " ".join(text.lower().split())


def mentions(replies: List[Message], *needles: str) -> bool:
    """Whether one reply contains every needle (case and spacing do not matter)."""
    return any(all(flat(n) in flat(t) for n in needles) for t in texts(replies))


def last_four(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())[-4:]


def next_weekday(name: str, today: date) -> date:
    """`today` for "today", tomorrow for "tomorrow", else the next day with that name (today included)."""
    if name in ("today", "tomorrow"):
        return today + timedelta(days=name == "tomorrow")
    return today + timedelta(days=(WEEKDAY_NAMES.index(name) - today.weekday()) % 7)


# --- what the world looks like before a goal, and whether the goal was met -----------------


class World:
    """The real stack and its database: prepares what a goal assumes, and judges its outcome."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.backend = ServiceBackend.from_url(stack.database_url)

    def prepare(self, goal: Goal) -> Dict[str, str]:
        """Create what the goal assumes exists; the values its turns and facts may name ({reference}, {proof})."""
        values: Dict[str, str] = {}
        wanted = goal.given.get("appointment")
        if wanted:
            start = self.backend.bookings.next_free(wanted["office"], date.today() + timedelta(days=2), 1)[0]
            record = self.backend.bookings.book(
                wanted["service"], wanted["office"], start, wanted["name"], wanted["phone"], "rest"
            )
            values.update(reference=record.reference, starts_at=record.starts_at.isoformat(), proof=last_four(wanted["phone"]))
        application = goal.given.get("application")
        if application:
            values.update(reference=application, proof=last_four(self._application_phone(application)))
        values["reference_spoken"] = values.get("reference", "").lower().replace("-", " ")  # "bk 48291 37506"
        return values

    def _application_phone(self, reference: str) -> str:
        with self.backend.engine.connect() as connection:
            return connection.scalar(
                select(models.Citizen.phone)
                .join(models.Application, models.Application.citizen_id == models.Citizen.id)
                .where(models.Application.reference == reference)
            )

    def unmet(self, goal: Goal, talk: Talk) -> Optional[str]:
        """The first success criterion that does not hold yet, or None when the goal is met."""
        for kind, wanted in goal.success.items():
            if not CRITERIA[kind](self, wanted, talk):
                return f"{kind}: {wanted}"
        return None

    def service(self, service_id: str) -> ServiceRecord:
        record = self.backend.catalogue.service(service_id)
        assert record is not None, f"unknown service {service_id!r} in a goal"
        return record

    def currency(self) -> str:
        return self.backend.catalogue.city().currency


def booked(world: World, wanted: Dict[str, str], _talk: Talk) -> bool:
    appointments = world.backend.bookings.upcoming_for_phone(wanted["phone"])
    return any(a.service_id == wanted["service"] and a.office_id == wanted.get("office", a.office_id) for a in appointments)


def moved(world: World, _wanted: Any, talk: Talk) -> bool:
    record = expect.booking(world.backend, talk.values["reference"])
    return record.status == "booked" and record.starts_at.isoformat() != talk.values["starts_at"]


def cancelled(world: World, _wanted: Any, talk: Talk) -> bool:
    return expect.booking(world.backend, talk.values["reference"]).status == "cancelled"


def told_appointment(world: World, _wanted: Any, talk: Talk) -> bool:
    record = expect.booking(world.backend, talk.values["reference"])
    return mentions(talk.heard, record.office_name, spoken_datetime(record.starts_at))


def told_documents(world: World, service_id: str, talk: Talk) -> bool:
    return mentions(talk.heard, *world.service(service_id).documents)


def told_fee(world: World, service_id: str, talk: Talk) -> bool:
    service = world.service(service_id)
    return mentions(talk.heard, service.name, money(service.fee, world.currency()))


def told_benefit(world: World, service_id: str, talk: Talk) -> bool:
    service = world.service(service_id)
    benefit = getattr(service, "benefit", None)  # None: the catalogue says nothing about the amount
    return benefit is not None and mentions(talk.heard, service.name, money(benefit.amount, world.currency()))


def told_processing_time(world: World, service_id: str, talk: Talk) -> bool:
    service = world.service(service_id)
    return mentions(talk.heard, service.name, processing_time(service.processing_days))


def told_online(world: World, service_id: str, talk: Talk) -> bool:
    service = world.service(service_id)
    return (
        mentions(talk.heard, expect.present(service.online_where, f"where {service.name} is done online"))
        if service.online_available
        else mentions(talk.heard, service.name, "office")
    )


def told_about(world: World, service_id: str, talk: Talk) -> bool:
    """How to get a service: its name with its documents or its description (not only its name in a list)."""
    service = world.service(service_id)
    return mentions(talk.heard, service.name, *service.documents) or mentions(talk.heard, service.description)


def told_life_event(world: World, event_id: str, talk: Talk) -> bool:
    event = expect.life_event(world.backend.catalogue, event_id)
    return mentions(talk.heard, *[step.service.name for step in event.steps])


def told_offices_for(world: World, service_id: str, talk: Talk) -> bool:
    """Where to go in person: the answer names an office that offers the service, with its address."""
    offices = world.backend.catalogue.offices(service_id=service_id)
    today = date.today()
    return any(mentions(talk.heard, office.name, office.place_on(today).place) for office in offices)


def told_address(world: World, office_id: str, talk: Talk) -> bool:
    office = expect.office(world.backend.catalogue, office_id)
    return mentions(talk.heard, office.name, office.place_on(date.today()).place)


def told_hours(world: World, wanted: Dict[str, str], talk: Talk) -> bool:
    office = expect.office(world.backend.catalogue, wanted["office"])
    day = next_weekday(wanted["day"], date.today())
    return mentions(talk.heard, office.name, periods_text(office.hours_on(day)))


def told_status(world: World, reference: str, talk: Talk) -> bool:
    record = expect.present(world.backend.applications.status(reference), f"application {reference!r}")
    return mentions(talk.heard, record.reference, record.status)


def reported(world: World, category: str, talk: Talk) -> bool:
    with world.backend.engine.connect() as connection:
        stored = connection.scalars(select(models.Report.category_id).where(models.Report.sender_id == talk.sender)).all()
    return category in stored


def handed_over(world: World, reason: str, talk: Talk) -> bool:
    handoff = world.backend.handoffs.active(talk.sender)
    return handoff is not None and reason in (handoff.reason, "any")


def told_staff_hours(world: World, _wanted: Any, talk: Talk) -> bool:
    """When people answer: the city's staff hours, as the catalogue has them."""
    return mentions(talk.heard, week_text(world.backend.catalogue.city().hotline_hours))


def not_asked(world: World, slots: List[str], talk: Talk) -> bool:
    """The assistant never asked for these (an office the citizen already named, for example)."""
    events = world.stack.tracker(talk.sender)["events"]
    asked = {e.get("value") for e in events if e.get("event") == "slot" and e.get("name") == "requested_slot"}
    return not asked & set(slots)


def within_turns(_world: World, most: int, talk: Talk) -> bool:
    """The rest was met within this many citizen messages (a listed item referred to is answered at once)."""
    return talk.turns <= most


CRITERIA: Dict[str, Callable[..., bool]] = {
    "appointment": booked,
    "moved": moved,
    "cancelled": cancelled,
    "told_appointment": told_appointment,
    "documents": told_documents,
    "fee": told_fee,
    "benefit": told_benefit,
    "processing_time": told_processing_time,
    "online": told_online,
    "how_to_get": told_about,
    "life_event": told_life_event,
    "offices_for": told_offices_for,
    "address": told_address,
    "hours": told_hours,
    "status": told_status,
    "report": reported,
    "handoff": handed_over,
    "staff_hours": told_staff_hours,
    "not_asked": not_asked,
    "within_turns": within_turns,
}


# --- the citizen ------------------------------------------------------------------------


class Citizen:
    """Decides the next message from what the assistant just said and what the form asks for."""

    def __init__(self, goal: Goal, values: Dict[str, str]) -> None:
        self.goal = goal
        self.facts = {"booking_confirmed": "yes", "cancel_confirmed": "yes", **goal.facts}
        self.facts = {slot: text.format(**values) for slot, text in self.facts.items()}
        self.own = [turn.format(**values) for turn in goal.say]
        self.answered: Dict[str, int] = {}
        self.seen: List[Dict[str, str]] = []

    def first(self) -> str:
        return self.own.pop(0)

    def next(self, replies: List[Message], asked: Optional[str]) -> Optional[str]:
        """The next message, or None when the citizen has nothing more to say.

        A form's question gets its answer; a question with a wished button gets the press; then the
        citizen's next own turn; then a wished button among the answer's follow-ups; last, a citizen
        asked which service they mean names it.
        """
        buttons = [b for r in replies for b in r.get("buttons") or []]
        self.seen = buttons or self.seen  # earlier buttons stay on screen (a chat keeps them)
        question = any("?" in t for t in texts(replies))
        answer = self._answer(asked, buttons) if asked else None
        if answer is None and question:
            answer = self._wished(buttons)
        if answer is None and self.own:
            answer = self.own.pop(0)
        if answer is None:
            answer = self._wished(buttons)
        if answer is None and question and "service" in self.facts and "service" not in self.answered:
            answer = self._answer("service", buttons)
        return answer

    def _answer(self, slot: str, buttons: List[Dict[str, str]]) -> Optional[str]:
        """The fact for `slot`, or the wished button; a day or time asked again: the first one offered."""
        times = self.answered.get(slot, 0)
        self.answered[slot] = times + 1
        wished = self._wished(buttons)
        if wished:
            return wished
        fact = self.facts.get(slot)
        offered = buttons or self.seen
        if offered and fact == PRESS_FIRST:
            return offered[0]["payload"]
        if offered and times:  # not understood the first time: press the button closest to what was meant
            return closest(fact, offered) or (offered[0]["payload"] if slot in FLEXIBLE else fact)
        return fact if fact != PRESS_FIRST else None

    def _wished(self, buttons: List[Dict[str, str]]) -> Optional[str]:
        for wish in self.goal.choose:
            for offered in buttons:
                if flat(wish) in flat(offered.get("title", "")):
                    return offered["payload"]
        return None


def closest(fact: Optional[str], buttons: List[Dict[str, str]]) -> Optional[str]:
    """The payload of the button whose title is most like `fact` ("yse" -> "Yes"), if one is close enough."""
    if not fact:
        return None
    scored = [(SequenceMatcher(None, flat(fact), flat(b.get("title", ""))).ratio(), b["payload"]) for b in buttons]
    best = max(scored, default=(0.0, None))
    return best[1] if best[0] >= CLOSE_ENOUGH else None


def asked_slot(tracker: Dict[str, Any]) -> Optional[str]:
    """The slot an active form is asking for, as the tracker says."""
    loop = (tracker.get("active_loop") or {}).get("name")
    return tracker.get("slots", {}).get("requested_slot") if loop else None


def run_goal(world: World, goal: Goal) -> Outcome:
    """Hold the goal's conversation over REST until it is met, the citizen has nothing to say, or MAX_TURNS."""
    talk = Talk(f"goal-{goal.id}", world.prepare(goal))
    citizen = Citizen(goal, talk.values)
    message: Optional[str] = citizen.first()
    missing: Optional[str] = None
    try:
        while message is not None and talk.turns < MAX_TURNS:
            replies = world.stack.say(talk.sender, message, timeout=60)
            talk.exchanges.append(Exchange(message, replies))
            missing = world.unmet(goal, talk)
            if missing is None:
                return Outcome(goal, True, talk.turns, "", talk.exchanges, misses(world, talk))
            message = citizen.next(replies, asked_slot(world.stack.tracker(talk.sender)))
    except OSError as error:  # the stack did not answer (an HTTP error, a timeout): the citizen was failed
        return Outcome(goal, False, talk.turns, f"no answer: {error!r}", talk.exchanges)
    reason = "turn limit" if message is not None else "nothing more to say"
    return Outcome(goal, False, talk.turns, f"{reason}; not met: {missing}", talk.exchanges, misses(world, talk))


def misses(world: World, talk: Talk) -> int:
    """How often the assistant told the citizen it did not understand (its low-confidence action, in the tracker)."""
    events = world.stack.tracker(talk.sender)["events"]
    return sum(1 for e in events if e.get("event") == "action" and e.get("name") == MISUNDERSTOOD_ACTION)


# --- the report ---------------------------------------------------------------------------


def shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def rate(outcomes: List[Outcome]) -> float:
    return 100.0 * sum(o.success for o in outcomes) / len(outcomes) if outcomes else 0.0


def turns_text(outcomes: List[Outcome]) -> str:
    """Mean and median citizen messages to success."""
    turns = [o.turns for o in outcomes if o.success]
    return f"mean {statistics.mean(turns):.1f}, median {statistics.median(turns):g}" if turns else "none met"


def group_lines(outcomes: List[Outcome], key: Callable[[Goal], str], order: Tuple[str, ...]) -> List[str]:
    """One line per group: goals met, the rate and the turns to success."""
    lines = []
    for name in order:
        chosen = [o for o in outcomes if key(o.goal) == name]
        if chosen:
            met = sum(o.success for o in chosen)
            lines.append(f"  {name:<18} {met:>3}/{len(chosen):<3} {rate(chosen):5.1f} %   turns to success {turns_text(chosen)}")
    return lines


def report(outcomes: List[Outcome], seconds: float, threshold: float) -> str:
    """The table of goals, the failures with their last exchanges, and the totals by area and style."""
    lines = [f"{'goal':<44} {'area':<18} {'style':<11} {'success':<8} {'turns':<6} not understood"]
    for o in outcomes:
        lines.append(
            f"{o.goal.id:<44} {o.goal.area:<18} {o.goal.style:<11} {'yes' if o.success else 'NO':<8} {o.turns:<6} {o.misses or ''}"
        )
    failed = [o for o in outcomes if not o.success]
    if failed:
        lines += ["", "Failed goals, with their last exchanges:"]
    for o in failed:
        lines.append(f"- {o.goal.id}: {o.reason}")
        for exchange in o.exchanges[-3:]:
            lines.append(f"    citizen:   {shorten(exchange.said)}")
            lines += [f"    assistant: {shorten(text)}" for text in texts(exchange.replies) or ["(no text)"]]
    met = sum(o.success for o in outcomes)
    lines += [
        "",
        f"Task success: {met}/{len(outcomes)} goals = {rate(outcomes):.1f} % (the build fails below {threshold:g} %)",
        f"Turns to success: {turns_text(outcomes)} (citizen messages, at most {MAX_TURNS})",
        f"Not understood: {sum(o.misses for o in outcomes)} of {sum(o.turns for o in outcomes)} citizen messages,"
        f" in {sum(bool(o.misses) for o in outcomes)} goals",
        "By area:",
        *group_lines(outcomes, lambda g: g.area, AREAS),
        "By style:",
        *group_lines(outcomes, lambda g: g.style, STYLES),
        f"Time: {seconds:.0f} s for {len(outcomes)} conversations over REST against the real stack",
    ]
    return "\n".join(lines)


def timed(run: Callable[[], List[Outcome]]) -> Tuple[List[Outcome], float]:
    started = clock.monotonic()
    outcomes = run()
    return outcomes, clock.monotonic() - started
