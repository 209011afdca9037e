"""What the citizen already said is taken, and a reference to the choices just offered is understood, inside
every task form: over REST against the real Rasa server, action server, model and database."""

from __future__ import annotations

import itertools
import json
import os
from datetime import date
from typing import Any, Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actions.listed import NUMBER_WORDS, ORDINAL_WORDS
from harness.stack import Stack
from onewindow.backend import ServiceBackend
from onewindow.channels.senders import sign_sender

pytestmark = pytest.mark.stack
senders = itertools.count(1)
STACK_SETTINGS = settings(
    max_examples=int(os.environ.get("ONEWINDOW_FUZZ_EXAMPLES", "80")) // 6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
ASKS_PROOF = "last four digits"


@pytest.fixture(scope="module")
def backend(stack: Stack) -> ServiceBackend:
    return ServiceBackend.from_url(stack.database_url)


@pytest.fixture(scope="module")
def reference(backend: ServiceBackend) -> str:
    """An appointment booked by someone whose phone number ends in 4957."""
    start = backend.bookings.next_free("north_centre", date.today(), 2)[1]
    return backend.bookings.book("passport_renewal", "north_centre", start, "Ana Silva", "0412 344 957", "rest").reference


def texts(messages: List[Dict[str, Any]]) -> str:
    return " ".join(m.get("text", "") for m in messages if m.get("text"))


def slot(stack: Stack, sender: str, name: str) -> Optional[Any]:
    return stack.tracker(sender)["slots"].get(name)


def written(reference: str, style: int) -> str:
    """The reference as citizens write it: as given, lower case, spaces for dashes, no separators."""
    return [reference, reference.lower(), reference.replace("-", " "), reference.replace("-", "")][style]


PROOFS = st.sampled_from(
    [
        "my phone number ends in {d}",
        "and my phone ends with {d}",
        "the last four digits are {d}",
        "last 4 digits {d}",
        "the last four digits of my phone are {d}",
        "my number ends in {s}",
        "my phone number is 0412 344 957",
        "my phone ending {d}",
        "the last digits are {d}",
    ]
)
OPENINGS = {
    "check_appointment_form": "I want to check my appointment",
    "cancel_appointment": "I want to cancel my appointment",
    "reschedule_form": "I need to move my appointment",
}


@STACK_SETTINGS
@given(proof=PROOFS, style=st.integers(0, 3), opening=st.sampled_from(sorted(OPENINGS.values())), together=st.booleans())
def test_proof_digits_given_with_the_reference_are_not_asked_again(
    stack: Stack, reference: str, proof: str, style: int, opening: str, together: bool
) -> None:
    sender = f"said-proof-{next(senders)}"
    said = f"The number is {written(reference, style)} and {proof.format(d='4957', s='4 9 5 7')}."
    if together:  # all in the opening message
        answer = texts(stack.say(sender, f"{opening}, {said}"))
    else:  # the form asked for the number first
        stack.say(sender, opening)
        answer = texts(stack.say(sender, said))
    assert ASKS_PROOF not in answer, answer
    assert slot(stack, sender, "record_proof") == "4957"
    assert slot(stack, sender, "appointment_reference") == reference


def test_application_status_takes_the_digits_said_with_its_number(stack: Stack) -> None:
    sender = f"said-proof-{next(senders)}"
    answer = texts(stack.say(sender, "what is the status of APP-48291-37508, the last four digits of my phone are 0110"))
    assert ASKS_PROOF not in answer and "APP-48291-37508" in answer and "We are checking your photo." in answer, answer


def test_wrong_digits_with_the_reference_are_refused_once(stack: Stack, reference: str) -> None:
    sender = f"said-proof-{next(senders)}"
    answer = texts(stack.say(sender, f"check my appointment {reference}, my phone ends in 1111"))
    assert answer.count("do not match") == 1 and "North Service Centre" not in answer
    assert slot(stack, sender, "record_proof") is None


STREETS = st.builds(
    lambda name, kind: f"{name} {kind}",
    st.sampled_from(["cedar", "oak", "maple", "elm", "river", "station", "king", "mill", "church", "green"]),
    st.sampled_from(["lane", "street", "road", "avenue", "drive", "way", "close", "court", "crescent", "terrace"]),
)
REPORTS = st.sampled_from(
    [
        "i want to report a broken street light on {street} outside number {n}",
        "the street light is broken outside number {n} {street}",
        "hello, there is a big hole in the road at {n} {street}. please fix it",
        "can i report a fallen tree on {street}",
        "water is leaking from a pipe in front of the library on {street}",
        "there is a pothole on {street}",
        "report a pothole at {n} {street}, it is deep",
        "rubbish dumped near the school on {street}",
        "I would like to report graffiti on {street} near number {n}",
    ]
)


@STACK_SETTINGS
@given(street=STREETS, report=REPORTS, n=st.sampled_from(["four", "12", "7", "twenty"]))
def test_a_place_in_the_opening_report_is_not_asked_again(stack: Stack, street: str, report: str, n: str) -> None:
    sender = f"said-place-{next(senders)}"
    answer = texts(stack.say(sender, report.format(street=street, n=n)))
    assert "Where is it" not in answer, answer
    assert street in (slot(stack, sender, "report_location") or "")


def reference_to(position: int, count: int, style: int) -> str:
    """The citizen's words for the `position`-th (1-based) of `count` offered choices."""
    ordinals = {v: k for k, v in ORDINAL_WORDS.items() if v > 0}
    numbers = {v: k for k, v in NUMBER_WORDS.items()}
    if position == count and style == 4:
        return "the last one"
    suffixed = f"{position}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(position, 'th') }"
    return [
        f"the {ordinals[position]} one",
        f"number {position}",
        f"option {numbers[position]}",
        f"the {ordinals[position]}",
        f"{ordinals[position]} one please",
        ordinals[position],
        f"the {suffixed} one",
        f"{ordinals[position].capitalize()} please.",
    ][style]


def buttons_of(messages: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [b for m in messages for b in m.get("buttons") or []]


def payload_value(button: Dict[str, Any], entity: str) -> Any:
    payload = button["payload"]
    return json.loads(payload[payload.index("{") :]).get(entity)


@STACK_SETTINGS
@given(data=st.data())
def test_a_reference_to_the_offered_choices_answers_each_question_of_the_booking(stack: Stack, data: st.DataObject) -> None:
    sender = f"said-choice-{next(senders)}"
    messages = stack.say(sender, "I want to book an appointment for a passport renewal")
    referred = 0
    for entity, slot_name in (("office", "office"), ("date", "appointment_date"), ("time", "appointment_time")):
        offered = [b for b in buttons_of(messages) if entity in b["payload"]]
        if len(offered) < 2:
            continue  # one choice only (the form settled it or offers it alone): nothing to refer to
        count = min(len(offered), 10)
        position = data.draw(st.integers(1, count), label=f"{entity} position")
        words = reference_to(
            position, len(offered) if position == count else count, data.draw(st.integers(0, 7), label="wording")
        )
        messages = stack.say(sender, words)
        wanted = payload_value(offered[-1] if words == "the last one" else offered[position - 1], entity)
        assert slot(stack, sender, slot_name) == wanted, (words, texts(messages))
        referred += 1
    assert referred, "no question offered two or more choices"


def test_a_named_part_of_an_offered_office_answers_which_office(stack: Stack) -> None:
    sender = f"said-choice-{next(senders)}"
    messages = stack.say(sender, "I want to book an appointment for a passport renewal")
    offices = [b for b in buttons_of(messages) if "office" in b["payload"]]
    assert len(offices) >= 2, texts(messages)
    first_word = offices[-1]["title"].split()[0]
    stack.say(sender, f"the {first_word.lower()} one")
    assert slot(stack, sender, "office") == payload_value(offices[-1], "office")


@STACK_SETTINGS
@given(data=st.data())
def test_a_reference_to_the_offered_kinds_of_problem_answers_which_kind(stack: Stack, data: st.DataObject) -> None:
    sender = f"said-choice-{next(senders)}"
    offered = [b for b in buttons_of(stack.say(sender, "I want to report a problem")) if "report_category" in b["payload"]]
    assert len(offered) >= 2
    position = data.draw(st.integers(1, min(len(offered), 10)), label="position")
    words = reference_to(position, min(len(offered), 10), data.draw(st.integers(0, 7), label="wording"))
    answer = texts(stack.say(sender, words))
    assert slot(stack, sender, "report_category") == payload_value(offered[position - 1], "report_category"), (words, answer)
    assert "Where is it" in answer


@pytest.fixture(scope="module")
def linked_phone(backend: ServiceBackend) -> str:
    """A phone number with three upcoming appointments."""
    for start in backend.bookings.next_free("north_centre", date.today(), 3):
        backend.bookings.book("passport_renewal", "north_centre", start, "Ben Ode", "0412 377 100", "telegram")
    return "0412 377 100"


def linked_chat(backend: ServiceBackend, phone: str, chat: str) -> Tuple[str, Dict[str, Any]]:
    """A signed Telegram chat linked to `phone`: its sender id and its messages' metadata."""
    backend.citizens.link_identity("telegram", chat, phone)
    return f"telegram:{chat}", {"sender_signature": sign_sender(f"telegram:{chat}")}


@pytest.mark.parametrize("position", [1, 2, 3])
def test_a_linked_chat_chooses_which_appointment_by_its_place_in_the_list(
    stack: Stack, backend: ServiceBackend, linked_phone: str, position: int
) -> None:
    sender, signed = linked_chat(backend, linked_phone, f"990{position}")
    first = stack.say(sender, "I want to check my appointment", signed)
    offered = [b for b in buttons_of(first) if "reference" in b["payload"]]
    assert len(offered) == 3, texts(first)
    answer = texts(stack.say(sender, reference_to(position, len(offered), position % 4), signed))
    chosen = payload_value(offered[position - 1], "reference")
    assert slot(stack, sender, "appointment_reference") == chosen and chosen in answer, answer


def test_a_linked_chat_checking_again_is_not_asked_for_digits(stack: Stack, backend: ServiceBackend, linked_phone: str) -> None:
    sender, signed = linked_chat(backend, linked_phone, "9904")
    stack.say(sender, "I want to check my appointment", signed)
    first = texts(stack.say(sender, "the second one", signed))
    again = texts(stack.say(sender, "check my appointment again", signed))
    assert ASKS_PROOF not in again and "four digits" not in again and slot(stack, sender, "record_proof") == "linked", (
        first,
        again,
    )


def test_the_word_linked_typed_as_proof_opens_nothing(stack: Stack, reference: str) -> None:
    sender = f"said-proof-{next(senders)}"
    assert ASKS_PROOF in texts(stack.say(sender, f"check my appointment {reference}"))
    answer = texts(stack.say(sender, "linked"))
    assert "North Service Centre" not in answer and slot(stack, sender, "record_proof") is None, answer
