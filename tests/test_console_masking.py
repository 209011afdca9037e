"""Masking personal data by kind (console.masking) on generated inputs, and in the real console over HTTP: pages,
CSV, JSON and NLU exports, and the search rules (agents search the masked text only; every search is audited
without its text)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date
from typing import Iterator, List

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from console.masking import EMAIL_MASK, MASK, Masker, names_in
from onewindow.rasa_plugins.events_table import tracker_database_url, tracker_engine
from onewindow.storage import models
from onewindow.storage.db import make_engine
from tests.console_server import RunningConsole
from tests.tracker_rows import T1, bot, console_with_samples, session, slot, staff, user, write

LINK = re.compile(r'<a href="/transcripts/(\d+)">')
QUICK = settings(max_examples=60, deadline=None)
letters = st.text(alphabet="abcdefghijklmnopqrstuvwxyzáéíñóöü", min_size=3, max_size=10)
names = st.builds(lambda first, last: f"{first.capitalize()} {last.capitalize()}", letters, letters)
surnames = letters.map(str.capitalize)
separators = st.sampled_from(["", " ", "-", "."])
phones = st.builds(
    lambda digits, sep: sep.join(re.findall("..?", digits)), st.text(alphabet="0123456789", min_size=8, max_size=12), separators
)
streets = st.builds(
    lambda number, name, kind: f"{number} {name} {kind}",
    st.integers(1, 9999),
    surnames,
    st.sampled_from(["Street", "St", "Road", "Avenue", "lane", "Drive", "Court", "Crescent"]),
)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2199, 12, 31))


def digits_of(text: str) -> str:
    return re.sub(r"\D", "", text)


@QUICK
@given(
    name=names,
    template=st.sampled_from(
        [
            "my name is {}",
            "My name is {} and I need help",
            "I'm {}.",
            "call me {}",
            "Please check: X at Y, on Monday, for {}. Shall I book it?",
            "Thank you, {}!",
            "Dr. {} asked me to write",
        ]
    ),
)
def test_names_said_in_any_of_the_usual_ways_are_masked(name: str, template: str) -> None:
    masked = Masker()(template.format(name))
    assert name.split()[0] not in masked and MASK in masked


@QUICK
@given(
    surname=surnames, title=st.sampled_from(["Ms", "Mr", "Mrs", "Dr.", "Miss"]), later=st.sampled_from(["{} called", "ask {}"])
)
def test_a_title_and_a_surname_are_masked_and_so_is_the_surname_elsewhere_in_the_conversation(
    surname: str, title: str, later: str
) -> None:
    mask = Masker(texts=[f"I spoke to {title} {surname} yesterday"])
    assert surname not in mask(f"{title} {surname} is my mother")
    assert surname.lower() not in mask(later.format(surname)).lower()


@QUICK
@given(name=names)
def test_a_slot_value_masks_the_whole_name_and_each_of_its_parts(name: str) -> None:
    first, last = name.split()
    mask = Masker([name])
    for text in (f"booked for {name}", f"Ms {last} will come", f"{first} says hello", f"{name.upper()}!"):
        masked = mask(text)
        assert first.lower() not in masked.lower() and last.lower() not in masked.lower(), text


@QUICK
@given(phone=phones, before=st.sampled_from(["call me on ", "my ID is ", "number: ", ""]))
def test_phone_and_id_numbers_keep_only_their_last_two_digits(phone: str, before: str) -> None:
    masked = Masker()(f"{before}{phone} thanks")
    assert digits_of(masked) == digits_of(phone)[-2:] and MASK in masked


@QUICK
@given(email=st.emails())
def test_email_addresses_are_masked(email: str) -> None:
    masked = Masker()(f"write to {email} please")
    assert email not in masked and EMAIL_MASK in masked and email.split("@")[0] not in masked.split()


@QUICK
@given(address=streets)
def test_street_addresses_are_masked(address: str) -> None:
    masked = Masker()(f"the bin outside {address} was not emptied")
    assert address not in masked and address.split()[1] not in masked and "(address)" in masked


@QUICK
@given(day=days, style=st.sampled_from(["%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%Y-%m-%d %H:%M"]))
def test_dates_and_times_are_shown_as_they_are(day: date, style: str) -> None:
    written = day.strftime(style.replace(" %H:%M", "")) + (" 10:30" if "%H" in style else "")
    assert Masker()(f"appointment on {written}") == f"appointment on {written}"


def test_what_the_city_publishes_is_not_masked() -> None:
    text = "The North office at 45 Hillcrest Road, North: call 0800 100 202"
    assert Masker()(text) == text
    assert names_in("I am looking for the office") == [] and names_in("Hello There") == []


# --- over HTTP: pages, exports, search ---------------------------------------------------------------------------

SENDER = "telegram:555000111"
SAID = [
    "hello, my name is Rosa Delgado",
    "my e-mail is rosa.delgado@example.org and I live at 12 Harbour Lane",
    "I need to see Mr Quispe about 0412 555 019",
]


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConsole]:
    with console_with_samples(tmp_path_factory.mktemp("console-masking")) as running:
        tracker = tracker_engine(url=tracker_database_url(running.endpoints))
        write(
            tracker,
            SENDER,
            [
                *session(),
                user(SAID[0], "inform", 0.3),
                slot("appointment_date", "2026-12-03"),
                bot("Thank you, Rosa."),
                user(SAID[1], "nlu_fallback", 0.0),
                bot("Please check: Passport at Central, for Rosa Delgado. Shall I book it?"),
                slot("citizen_name", None),
                user(SAID[2], "nlu_fallback", 0.0),
                slot("requested_slot", "citizen_name"),
                bot("What name should the appointment be under?"),
                user("Quilla Mamani", "inform", 0.6),
                slot("citizen_name", None),  # an answer the form refused
                user("hello", "greet", 0.9),
                user("is mamani booked now", "nlu_fallback", 0.0),
            ],
            T1 + 600,
        )
        tracker.dispose()
        yield running


def leaks(text: str) -> List[str]:
    return [
        secret
        for secret in (
            "Rosa",
            "Delgado",
            "rosa.delgado",
            "Harbour Lane",
            "Quispe",
            "0412 555 019",
            "555000111",
            "Quilla",
            "Mamani",
            "mamani",
        )
        if secret in text
    ]


def search_audit(console: RunningConsole, username: str) -> List[dict]:
    engine = make_engine(console.database_url)
    try:
        with engine.connect() as connection:
            return [
                row.detail
                for row in connection.execute(
                    select(models.AuditEntry.detail).where(
                        models.AuditEntry.username == username, models.AuditEntry.action == "transcripts.search"
                    )
                )
            ]
    finally:
        engine.dispose()


def test_pages_and_every_export_mask_personal_data_by_kind(console: RunningConsole) -> None:
    with staff(console, "agent") as agent:
        listing = agent.get("/transcripts", params={"channel": "telegram"}).text
        key = LINK.findall(listing)
        page = "".join(agent.get(f"/transcripts/{k}").text for k in key)
        exported_csv = agent.get("/transcripts/export.csv", params={"channel": "telegram"}).text
        exported_json = agent.get("/transcripts/export.json", params={"channel": "telegram"}).text
        improve = agent.get("/improve").text
        for event_id in re.findall(r'name="event_id" value="(\d+)"', improve):
            agent.post(
                "/improve/corrections",
                data={
                    "csrf_token": agent.csrf_token,
                    "event_id": event_id,
                    "intent": "inform",
                },
            )
        nlu = agent.get("/improve/export.yml").text
    for name, body in (
        ("list", listing),
        ("page", page),
        ("improve", improve),
        ("csv", exported_csv),
        ("json", exported_json),
        ("nlu", nlu),
    ):
        assert leaks(body) == [], name
    assert "2026-12-03" in page and "Thank you, ••••." in page and "for ••••. Shall I book it?" in page
    texts = [row["text"] for row in csv.DictReader(io.StringIO(exported_csv))]
    assert "my e-mail is ••••@•••• and I live at •••• (address)" in texts and "I need to see Mr •••• about •••• 19" in texts
    assert "Rosa" not in json.dumps(json.loads(exported_json), ensure_ascii=False)
    examples = "\n".join(block["examples"] for block in yaml.safe_load(nlu)["nlu"])
    assert "Mr •••• about •••• 19" in examples and "is •••• booked now" in examples
    assert '<p class="text">hello</p>' in page  # the next message was no answer to the question for a name: shown


@pytest.mark.parametrize("query", ["0412 555 019", "0412", "rosa.delgado@example.org", "Delgado", "Harbour Lane"])
def test_agents_search_only_the_masked_text(console: RunningConsole, query: str) -> None:
    with staff(console, "agent") as agent:
        found = agent.get("/transcripts", params={"q": query})
        username = agent.username
    assert found.status_code == 200 and "No conversation matches" in found.text and LINK.findall(found.text) == []
    [detail] = search_audit(console, username)
    assert detail["in_clear"] is False and query not in json.dumps(detail) and detail["length"] == len(query)


def test_agents_find_what_they_are_shown(console: RunningConsole) -> None:
    with staff(console, "agent") as agent:
        masked = agent.get("/transcripts", params={"q": "Mr •••• about •••• 19"}).text
        plain = agent.get("/transcripts", params={"q": "need to see"}).text
    assert "telegram:•••• 11" in masked and "telegram:•••• 11" in plain


@pytest.mark.parametrize("query", ["0412 555 019", "rosa.delgado@example.org", "Delgado"])
def test_supervisors_search_personal_data_in_clear_and_it_is_audited_without_the_text(
    console: RunningConsole, query: str
) -> None:
    with staff(console, "supervisor") as supervisor:
        found = supervisor.get("/transcripts", params={"q": query})
        exported = supervisor.get("/transcripts/export.csv", params={"q": query})
        username = supervisor.username
    assert "telegram:•••• 11" in found.text and len(LINK.findall(found.text)) == 1
    assert {row["sender"] for row in csv.DictReader(io.StringIO(exported.text))} == {"telegram:•••• 11"}
    details = search_audit(console, username)
    assert len(details) == 2 and all(d["in_clear"] is True and query not in json.dumps(d) for d in details)
    assert details[0]["query"] == details[1]["query"]  # the same search can be matched up, not read


PROOF_SENDER = "telegram:777000222"
ASK_PROOF = "To keep your appointment private, please tell me the last four digits of the phone number on the appointment."


def test_the_digits_given_as_proof_are_masked_also_when_the_form_refused_them(console: RunningConsole) -> None:
    tracker = tracker_engine(url=tracker_database_url(console.endpoints))
    write(
        tracker,
        PROOF_SENDER,
        [
            *session(),
            user("check my appointment BK-48291-37508", "check_appointment", 0.9),
            slot("requested_slot", "record_proof"),
            bot(ASK_PROOF),
            user("7394", "inform", 0.5),
            slot("record_proof", None),
            bot("Those digits do not match the phone number on this appointment. Please try again."),
            slot("requested_slot", "record_proof"),
            user("it is 6 2 0 5", "inform", 0.5),
            slot("record_proof", "6205"),
            slot("requested_slot", None),
            bot("Your appointment is on 2026-12-03 at 10:30."),
        ],
        T1 + 900,
    )
    tracker.dispose()
    with staff(console, "agent") as agent:
        keys = LINK.findall(agent.get("/transcripts", params={"channel": "telegram"}).text)
        page = next(text for text in (agent.get(f"/transcripts/{k}").text for k in keys) if ASK_PROOF in text)
        exports = [agent.get(f"/transcripts/export.{kind}", params={"channel": "telegram"}).text for kind in ("csv", "json")]
    for body in (page, *exports):
        assert not [digits for digits in ("7394", "6 2 0 5", "6205") if digits in body]
    assert '<p class="text">••••</p>' in page and '<p class="text">it is ••••</p>' in page
    assert "on 2026-12-03 at 10:30." in page  # dates and times are not proof digits
