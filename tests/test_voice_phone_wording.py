"""The hotline's words: bot responses rendered for the ear (voice.phone_wording) and callers' words for the NLU (voice.normalise).

Most tests use responses made by the real actions on a real seeded SQLite database. Seeding
takes about a second, so this module seeds once and builds every real response it needs
in one module-scoped fixture (the same `seed` and `point_actions_at` the conftest fixtures use).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
from ruamel.yaml import YAML

from actions import offices as office_actions
from actions.appointments import ActionAskAppointmentReference, ActionAskBookingConfirmed, ActionBookAppointment
from actions.handoff import ActionRequestHuman
from actions.life_events import ActionLifeEvent
from actions.offices import ActionAnswerOfficeQuestion
from actions.services import ActionAnswerServiceQuestion
from onewindow.__main__ import seed
from tests.action_harness import load_domain, make_tracker, run_action, slot_events
from tests.conftest import point_actions_at
from voice.normalise import normalise_caller_text
from voice.phone_wording import Option, SpokenTurn, by_key, choose, make_options, speak_responses, spell_code, spell_phone

CATALOGUE = Path(__file__).resolve().parent.parent / "catalogue"
THURSDAY_MORNING = datetime(2026, 11, 26, 10, 0)
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
Responses = List[Dict[str, Any]]


def catalogue(name: str, key: str) -> Dict[str, Dict[str, Any]]:
    """The entries of a catalogue file by id, as written (the oracle for what the actions say)."""
    document = YAML(typ="safe").load((CATALOGUE / name).read_text(encoding="utf-8"))
    return {entry["id"]: entry for entry in document[key]}


def said_aloud(spelled: str, letter_names: Dict[str, str] | None = None) -> str:
    """How a caller repeats a spelled code or number: "B K, 4 8 2" -> "b k four eight two"."""
    words = []
    for ch in spelled.replace(",", ""):
        if ch.isdigit():
            words.append(DIGIT_NAMES[int(ch)])
        elif ch.isalpha():
            words.append((letter_names or {}).get(ch.lower(), ch.lower()))
    return " ".join(words)


def spelled_by_hand(reference: str) -> str:
    """ "BK-826846" -> "B K, 8 2 6, 8 4 6", "BK-48291-37506" -> "B K, 4 8 2, 9 1 3, 7 5 0 6", written here
    independently of the code under test."""
    prefix, digits = reference.split("-", 1)
    digits = digits.replace("-", "")
    groups = [digits[:3], digits[3:6]] + ([digits[6:]] if len(digits) > 6 else [])
    return ", ".join([" ".join(prefix)] + [" ".join(group) for group in groups])


def found(option: Optional[Option]) -> Option:
    """The option chosen, which must be one."""
    assert option is not None, "no option was chosen"
    return option


def button(title: str, payload: str) -> Dict[str, str]:
    """A Rasa REST button."""
    return {"title": title, "payload": payload}


# --- real responses from the real actions ---------------------------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    """Responses the real actions send, on a database seeded once for this module."""
    url = f"sqlite:///{tmp_path_factory.mktemp('voice') / 'onewindow.db'}"
    seed(url, demo=True)
    with pytest.MonkeyPatch.context() as monkeypatch:
        pointed = point_actions_at(url, monkeypatch)
        backend = next(pointed)
        monkeypatch.setattr(office_actions, "now", lambda: THURSDAY_MORNING)
        start = backend.bookings.next_free("central_centre", date.today() + timedelta(days=1), 1)[0]
        booking = {
            "service": "work_permit",
            "office": "central_centre",
            "appointment_date": start.date().isoformat(),
            "appointment_time": start.strftime("%H:%M"),
            "citizen_name": "Ana Silva",
            "citizen_phone": "0412345678",
            "booking_confirmed": True,
        }
        passport = {"service": "passport_renewal"}
        booked, events = run_action(ActionBookAppointment(), make_tracker(booking))
        yield {
            "office": run_action(ActionAnswerOfficeQuestion(), make_tracker({"office": "central_centre"}, intent="find_office"))[
                0
            ],
            "offices": run_action(ActionAnswerOfficeQuestion(), make_tracker(passport, intent="find_office"))[0],
            "documents": run_action(ActionAnswerServiceQuestion(), make_tracker(passport, intent="ask_documents"))[0],
            "confirm": run_action(ActionAskBookingConfirmed(), make_tracker(booking, active_loop="appointment_form"))[0],
            "booked": booked,
            "reference": slot_events(events)["appointment_reference"],
            "human": run_action(ActionRequestHuman(), make_tracker({}, intent="request_human"))[0],
            "life_event": run_action(ActionLifeEvent(), make_tracker({"life_event": "birth"}, intent="life_event"))[0],
            "ask_reference": run_action(ActionAskAppointmentReference(), make_tracker({}))[0],
            "greet": [load_domain()["responses"]["utter_greet"][0]],
        }
        next(pointed, None)  # the actions' backend is disposed and forgotten


def test_office_list_is_read_as_its_choices_each_with_its_key(real: Dict[str, Any]) -> None:
    responses: Responses = real["offices"]
    rest = re.search(r" (4\. [^.]+\. [^.]+\. 5\. [^.]+\. 6\. [^.]+\.)$", responses[0]["text"])
    assert rest, "the chat numbers all 6 offices, the first 4 with their hours"
    turn = speak_responses(responses)
    assert turn.more is None and len(turn.pages) == 1
    for key, name in enumerate([b["title"] for b in responses[0]["buttons"]], start=1):
        assert f"For {name}, press {key}." in turn.text
        assert f"{key}. {name}" not in turn.text, "no list number is read next to a key"
    assert "Open today from 8:30 am to 5 pm. For South Service Centre, press 4." in turn.text, "an item's details, then its key"
    assert turn.text.endswith("For Immigration Office, press 6. For a person, press 0.")
    assert [(o.key, o.title, o.payload) for o in turn.options] == [
        (str(n), b["title"], b["payload"]) for n, b in enumerate(responses[0]["buttons"], start=1)
    ]


def test_one_office_says_its_phone_number_slowly_and_offers_its_buttons(real: Dict[str, Any]) -> None:
    responses: Responses = real["office"]
    central = catalogue("offices.yml", "offices")["central_centre"]
    assert central["phone"] == "0800 100 201" and f"Phone {central['phone']}." in responses[0]["text"]
    assert responses[1]["custom"]["venue"]["address"] == central["address"]
    turn = speak_responses(responses)
    assert "Phone 0 8 0 0, 1 0 0, 2 0 1." in turn.text and central["phone"] not in turn.text
    assert turn.text.count(central["address"]) == 1, "the map pin adds nothing"
    assert turn.text.endswith("To book an appointment here, press 1. For opening hours, press 2. For a person, press 0.")
    assert [o.payload for o in turn.options] == [b["payload"] for b in responses[0]["buttons"]]
    assert choose("what are the opening hours", turn.options) is turn.options[1]


def test_office_list_choices_by_name_number_or_key(real: Dict[str, Any]) -> None:
    options = speak_responses(real["offices"]).options
    titles = [o.title for o in options]
    north = options[titles.index("North Service Centre")]
    assert choose("north service centre", options) is north
    assert choose("the north one please", options) is north
    assert choose(north.key, options) is north
    assert choose("the second one", options) is options[1]
    assert choose("number four", options) is options[3]
    assert choose("service centre", options) is None, "every option is a service centre"
    assert choose("the last one", options) is options[-1]


def test_service_answer_with_follow_up_buttons(real: Dict[str, Any]) -> None:
    responses: Responses = real["documents"]
    documents = catalogue("services.yml", "services")["passport_renewal"]["documents"]
    assert len(documents) == 3
    turn = speak_responses(responses)
    assert turn.more is None
    assert all(f"{n}. {item}." in turn.text for n, item in enumerate(documents, start=1))
    assert turn.text.endswith(
        "For where to go, press 1. To book an appointment, press 2. For how much it costs, press 3. For a person, press 0."
    )
    assert [o.payload for o in turn.options] == [b["payload"] for b in responses[0]["buttons"]]
    assert choose("where do I go", turn.options) is turn.options[0]
    assert choose("how much does it cost", turn.options) is turn.options[2]
    assert choose("how long does it take", turn.options) is None, "a new question goes to the NLU"


def test_booking_question_is_answered_yes_or_no(real: Dict[str, Any]) -> None:
    turn = speak_responses(real["confirm"])
    assert turn.text.startswith("Please check: Work permit at Central Service Centre, on ")
    assert turn.text.endswith("Shall I book it? Say yes or press 1, say no or press 2. For a person, press 0.")
    keypad = speak_responses(real["confirm"], speech=False)
    assert keypad.text.endswith("Shall I book it? For yes, press 1. For no, press 2. For a person, press 0.")
    yes, no = turn.options
    assert (yes.key, yes.payload, no.key, no.payload) == ("1", "/affirm", "2", "/deny")
    for said in ("yes", "yeah", "yep", "correct", "that's right", "yes please", "1", "one"):
        assert choose(said, turn.options) is yes, said
    for said in ("no", "nope", "no thanks", "2", "two"):
        assert choose(said, turn.options) is no, said
    assert choose("that's not right", turn.options) is None, "a negation is not a yes"


def test_booking_confirmation_spells_the_reference_and_cuts_the_documents(real: Dict[str, Any]) -> None:
    responses: Responses = real["booked"]
    reference = real["reference"]
    documents = catalogue("services.yml", "services")["work_permit"]["documents"]
    assert len(documents) == 5 and responses[1]["custom"]["checklist"]["items"] == documents
    turn = speak_responses(responses)
    assert reference not in turn.text
    assert f"Your appointment number is {spelled_by_hand(reference)}." in turn.text
    assert "Please bring: 1. " in turn.text and f"3. {documents[2]}" in turn.text and documents[3] not in turn.text
    assert turn.text.count(documents[0]) == 1, "the checklist repeats the text's list: it is not read twice"
    assert "There are 2 more. To hear them, say more or press 9." in turn.text
    assert "There are 2 more. To hear them, press 9." in speak_responses(responses, speech=False).text
    assert turn.text.endswith("Please arrive ten minutes early. You can change or cancel it here at any time.")
    assert turn.more == f"4. {documents[3]}. 5. {documents[4]}."
    assert turn.options == ()
    assert "Market Square" in turn.text and "latitude" not in turn.text, "the venue adds nothing"


def test_booking_confirmation_reference_round_trips(real: Dict[str, Any]) -> None:
    reference = real["reference"]
    spelled = spell_code(reference)
    assert normalise_caller_text(said_aloud(spelled)) == reference
    assert normalise_caller_text(f"I want to cancel {said_aloud(spelled)}") == f"I want to cancel {reference}"


def test_handoff_spells_its_number_and_the_hotline(real: Dict[str, Any]) -> None:
    responses: Responses = real["human"]
    reference = responses[0]["custom"]["handoff"]["reference"]
    hotline = YAML(typ="safe").load((CATALOGUE / "city.yml").read_text())["city"]["hotline"]["number"]
    assert hotline == "0800 100 200"
    turn = speak_responses(responses)
    assert f"Your request number is {spelled_by_hand(reference)}. You are number 1 in the queue" in turn.text
    assert "the city hotline on 0 8 0 0, 1 0 0, 2 0 0" in turn.text
    assert "citizen_request" not in turn.text  # the structured signal is not read out


def test_life_event_list_aligned_with_its_buttons(real: Dict[str, Any]) -> None:
    responses: Responses = real["life_event"]
    steps = catalogue("life_events.yml", "life_events")["birth"]["steps"]
    assert len(steps) == 5 == len(responses[0]["buttons"])
    turn = speak_responses(responses)
    assert turn.more is None, "the steps are the choices: all read, each with its key"
    assert "Birth registration: Within 30 days of the birth. For birth registration, press 1." in turn.text
    assert "Only if you plan to travel abroad with your baby. For new passport, press 5. That is 5 services" in turn.text
    assert turn.text.endswith("For a person, press 0.")
    assert found(choose("child benefit", turn.options)).payload == '/ask_documents{"service":"child_benefit"}'
    assert found(choose("maternity", turn.options)).key == "4"


def test_appointment_number_question_groups_the_spelled_example(real: Dict[str, Any]) -> None:
    text = real["ask_reference"][0]["text"]
    assert text.endswith("for example B K 4 8 2 9 1 3 7 5 0 6.")
    assert speak_responses(real["ask_reference"]).text.endswith(
        "for example B K, 4 8 2, 9 1 3, 7 5 0 6. Key in the number, then press hash."
    )


def test_greeting_buttons_read_as_sentences_and_need_no_person_key(real: Dict[str, Any]) -> None:
    turn = speak_responses(real["greet"])
    assert turn.text.endswith(
        "For I have a life event, press 1. To find an office, press 2. To book an appointment, press 3. "
        "To check an application, press 4. To report a problem, press 5. To talk to a person, press 6."
    ), "one option already asks for a person"
    assert found(choose("I want to report a pothole", turn.options)).payload == "/report_issue"
    assert choose("I have a question", turn.options) is None


# --- spelling codes and numbers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "spoken"),
    [
        ("BK-482913", "B K, 4 8 2, 9 1 3"),
        ("APP-100001", "A P P, 1 0 0, 0 0 1"),
        ("RPT-000123", "R P T, 0 0 0, 1 2 3"),
        ("HO-643282", "H O, 6 4 3, 2 8 2"),
        ("bk 482913", "B K, 4 8 2, 9 1 3"),
        ("APP-48291-37508", "A P P, 4 8 2, 9 1 3, 7 5 0 8"),
    ],
)
def test_spell_code(code: str, spoken: str) -> None:
    assert spell_code(code) == spoken


@pytest.mark.parametrize(
    ("number", "spoken"),
    [
        ("0800 100 200", "0 8 0 0, 1 0 0, 2 0 0"),
        ("0412 345 678", "0 4 1 2, 3 4 5, 6 7 8"),
        ("0412345678", "0 4 1 2, 3 4 5, 6 7 8"),
        ("0412-345-678", "0 4 1 2, 3 4 5, 6 7 8"),
        ("+61 412 345 678", "plus 6 1, 4 1 2, 3 4 5, 6 7 8"),
    ],
)
def test_spell_phone(number: str, spoken: str) -> None:
    assert spell_phone(number) == spoken


@pytest.mark.parametrize("code", ["BK-482913", "APP-100001", "RPT-000123", "HO-643282", "APP-100005", "BK-48291-37508"])
def test_spelled_codes_said_back_become_the_code(code: str) -> None:
    assert normalise_caller_text(said_aloud(spell_code(code))) == code
    assert normalise_caller_text(spell_code(code)) == code
    names = {"b": "bee", "k": "kay", "a": "ay", "p": "pee", "r": "ar", "t": "tee", "h": "aitch", "o": "oh"}
    assert normalise_caller_text(said_aloud(spell_code(code), names)) == code


def test_phone_numbers_said_back_become_digits() -> None:
    assert normalise_caller_text(said_aloud(spell_phone("0412 345 678"))) == "0412345678"


# --- speak_responses, rule by rule ----------------------------------------------------------


def test_texts_are_joined_and_markup_is_not_spoken() -> None:
    turn = speak_responses(
        [
            {"text": "**Done.** Your <b>ticket</b> is `RPT-123456`."},
            {"text": "See [the city portal](https://example.org) &amp; _more_ \U0001f600\n- one\n- two"},
        ]
    )
    assert turn == SpokenTurn("Done. Your ticket is R P T, 1 2 3, 4 5 6. See the city portal & more. one. two", (), None)


def test_iso_dates_and_times_become_natural() -> None:
    turn = speak_responses([{"text": "Free on 2026-11-24 at 14:30, or 2026-11-25T09:00. Opens 08:30, closes 5 pm."}])
    assert turn.text == ("Free on Tuesday 24 November at 2:30 pm, or Wednesday 25 November at 9 am. Opens 8:30 am, closes 5 pm.")
    assert speak_responses([{"text": "Not a date: 2026-02-31."}]).text == "Not a date: 2026-02-31."


def test_numbers_that_are_not_phones_stay_as_they_are() -> None:
    text = "1 Market Square, open 8:30 am to 5 pm, 120 dollars, 220 Station Avenue, 2026 2027, 3 more."
    assert speak_responses([{"text": text}]).text == text


def test_short_lists_are_read_whole_and_max_listed_is_a_parameter() -> None:
    text = "Bring: 1. Your ID card. 2. A photo. 3. The form. 4. The fee. That is all."
    assert speak_responses([{"text": text}], max_listed=4) == SpokenTurn(text, (), None)
    turn = speak_responses([{"text": text}], max_listed=2)
    assert turn.text == ("Bring: 1. Your ID card. 2. A photo. There are 2 more. To hear them, say more or press 9. That is all.")
    assert turn.more == "3. The form. 4. The fee."


def test_a_closed_office_item_keeps_all_its_sentences() -> None:
    text = (
        "Offices: 1. A, 1 Road. Open today. 2. B, 2 Road. Open today. "
        "3. C, 3 Road. Closed today. Next open Monday 30 November, 8:30 am to 5 pm."
    )
    turn = speak_responses([{"text": text}], max_listed=2)
    assert turn.more == "3. C, 3 Road. Closed today. Next open Monday 30 November, 8:30 am to 5 pm."


def test_checklist_is_read_when_the_text_does_not_say_it() -> None:
    checklist = {"title": "Passport: bring these", "items": ["Your ID card", "One photo"], "reference": "BK-482913"}
    turn = speak_responses([{"text": "Booked."}, {"custom": {"checklist": checklist}}])
    assert turn.text == "Booked. Please bring: 1. Your ID card. 2. One photo."


@pytest.mark.parametrize(
    "custom",
    [
        {"venue": {"latitude": 52.1, "longitude": 5.1, "title": "North", "address": "45 Hillcrest Road"}},
        {"handoff": {"reference": "HO-123456", "reason": "citizen_request", "priority": 2}},
    ],
)
def test_venue_handoff_and_image_add_nothing(custom: Dict[str, Any]) -> None:
    turn = speak_responses([{"text": "Here it is."}, {"custom": custom}, {"image": "https://example.org/map.png"}])
    assert turn == SpokenTurn("Here it is.", (), None)


def test_options_are_paged_by_eight_with_nine_for_more_and_zero_for_a_person() -> None:
    buttons = [button(f"Choice {name}", f'/inform{{"n":{n}}}') for n, name in enumerate("abcdefghijk", start=1)]
    turn = speak_responses([{"text": "Pick one.", "buttons": buttons}])
    assert [(o.page, o.key) for o in turn.options] == [(0, str(n)) for n in range(1, 9)] + [(1, "1"), (1, "2"), (1, "3")]
    assert turn.text.endswith("For choice h, press 8. For more choices, press 9. For a person, press 0.")
    assert turn.pages[1] == (
        "For choice i, press 1. For choice j, press 2. For choice k, press 3. "
        "To hear the first choices again, press 9. For a person, press 0."
    )
    assert found(by_key("1", turn.options, 1)).title == "Choice i" and by_key("9", turn.options, 0) is None
    assert choose("choice k", turn.options) is turn.options[-1], "said words find an option on any page"
    assert choose("0", turn.options) is None


def test_yes_no_style_titles_with_more_words() -> None:
    buttons = [button("Yes, cancel it", "/affirm"), button("No, keep it", "/deny")]
    turn = speak_responses([{"text": "Shall I cancel it?", "buttons": buttons}])
    assert turn.text == "Shall I cancel it? Say yes or press 1, say no or press 2. For a person, press 0."
    yes, no = turn.options
    assert yes.keywords[:2] == ("yes cancel it", "cancel") and "yeah" in yes.keywords and "nope" in no.keywords
    assert choose("no keep it", turn.options) is no
    assert choose("yeah cancel it", turn.options) is yes
    assert choose("don't cancel it", turn.options) is None, "left to the NLU, never taken as a yes"


def test_only_buttons_is_a_turn_too() -> None:
    turn = speak_responses([{"buttons": [button("Opening hours", "/ask_opening_hours")]}])
    assert turn.text == "For opening hours, press 1. For a person, press 0."


# --- option keywords and choose -------------------------------------------------------------


def test_short_forms_only_when_unambiguous() -> None:
    options = make_options([button("Passport renewal or replacement", "/a"), button("ID card renewal or replacement", "/b")])
    assert options[0].keywords == ("passport renewal or replacement", "passport")
    assert options[1].keywords == ("id card renewal or replacement", "id", "card")
    assert choose("passport", options) is options[0]
    assert choose("the id card please", options) is options[1]
    assert choose("renewal", options) is None


def test_choose_by_time_and_date_titles() -> None:
    times = make_options([button("9 am", "/t9"), button("10 am", "/t10"), button("2:30 pm", "/t1430")])
    assert choose(normalise_caller_text("ten o'clock"), times) is times[1]
    assert choose(normalise_caller_text("half past two"), times) is times[2]
    assert by_key("2", times) is times[1], "a key press is a position"
    assert choose("2", times) is times[1], "no title has the number 2: the second"
    afternoon = make_options([button("1 pm", "/t13"), button("1:30 pm", "/t1330"), button("2 pm", "/t14")])
    assert choose("two", afternoon) is afternoon[2], "a number said is a time in the titles before it is a key"
    assert choose("one", afternoon) is afternoon[0] and choose("the second one", afternoon) is afternoon[1]
    days = make_options([button("Monday 30 November", "/d30"), button("Tuesday 1 December", "/d1")])
    assert choose(normalise_caller_text("the first of december"), days) is days[1]
    assert choose("monday", days) is days[0]


def test_choose_understands_spoken_dates_times_and_codes_as_said() -> None:
    days = make_options([button("Tuesday 24 November", "/d24"), button("Wednesday 25 November", "/d25")])
    assert choose("the twenty fifth of november", days) is days[1]
    times = make_options([button("9 am", "/t9"), button("10 am", "/t10")])
    assert choose("ten o'clock", times) is times[1]
    mine = make_options([button("BK-482913, Tuesday 24 November", "/a"), button("BK-100200, Tuesday 24 November", "/b")])
    assert choose("b k one zero zero two zero zero", mine) is mine[1]


@pytest.mark.parametrize("said", ["", "   ", "7", "the fifth one", "hello", "0"])
def test_choose_returns_none_when_nothing_fits(said: str) -> None:
    options = make_options([button("Yes", "/affirm"), button("No", "/deny")])
    assert choose(said, options) is None


def test_option_is_what_the_call_loop_expects() -> None:
    option = make_options([button("Find an office", "/find_office")])[0]
    assert option == Option("1", "Find an office", "/find_office", ("find an office", "find", "office"))


# --- normalise_caller_text ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "written"),
    [
        ("two four seven", "247"),
        ("oh four one two three four five six seven eight", "0412345678"),
        ("my number is oh four one two double three four five six seven", "my number is 0412334567"),
        ("double five", "55"),
        ("triple zero", "000"),
        ("one", "one"),
        ("press one", "press one"),
        ("option two", "option two"),
        ("I have two children", "I have two children"),
        ("oh I see", "oh I see"),
        ("b k four eight two nine one three", "BK-482913"),
        ("bee kay four eight two nine one three", "BK-482913"),
        ("a p p one zero zero zero zero one", "APP-100001"),
        ("status of a p p one oh oh oh oh five please", "status of APP-100005 please"),
        ("r p t dash nine nine nine one two three", "RPT-999123"),
        ("h oh one two three four five six", "HO-123456"),
        ("the twenty fourth of november", "24 November"),
        ("november twenty fourth", "24 November"),
        ("november twenty four", "24 November"),
        ("the 24th of november", "24 November"),
        ("book it for the second of december please", "book it for 2 December please"),
        ("may the fourth", "4 May"),
        ("one may ask", "one may ask"),
        ("the third", "the third"),
        ("tomorrow", "tomorrow"),
        ("next monday", "next monday"),
        ("half past two", "2:30"),
        ("quarter past ten", "10:15"),
        ("quarter to three", "2:45"),
        ("two thirty pm", "2:30 pm"),
        ("two oh five p m", "2:05 pm"),
        ("eleven fifteen a.m. tomorrow", "11:15 am tomorrow"),
        ("ten o'clock", "10:00"),
        ("ten am", "10 am"),
        ("five to ten days", "five to ten days"),
        ("Passport renewal, please!", "Passport renewal, please!"),
        ("", ""),
    ],
)
def test_normalise_caller_text(said: str, written: str) -> None:
    assert normalise_caller_text(said) == written


@pytest.mark.parametrize(
    "text, asks",
    [
        ("What is your application number? It is A P P and ten digits.", True),
        ("To check it is yours: what are the last four digits of the phone number on it? Please key them in.", True),
        ("What phone number should the office use?", True),
        ("Your appointment number is BK-48291-37506. Please arrive ten minutes early.", False),
        ("Which office suits you?", False),
    ],
)
def test_a_question_for_a_number_collects_keyed_digits(text: str, asks: bool) -> None:
    turn = speak_responses([{"text": text}], speech=False)
    assert turn.asks_number is asks
    assert ("Key in the number, then press hash." in turn.text) is (asks and "key them in" not in text)
