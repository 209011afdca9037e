"""The hotline by keypad alone, and a caller who is never stuck: whole calls over AudioSocket on loopback
against the real stack (gateway, Rasa, action server, database), checked from the stored conversation.

Keypad-only calls run on a gateway without speech, as for a caller whose language the speech model
does not know. The caller is driven by what the assistant offered: each step reads the choices of
the latest assistant message in the conversation (Rasa's tracker), finds the wanted one by its title
and presses its key, computed here from its place (1 to 8 on each page, 9 for the next page), never
by the code under test. After each call every bot turn the caller heard is checked for chat or
speech wording ("type", "say", "tell me"...), which a keypad-only call must never hear.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
from ruamel.yaml import YAML
from sqlalchemy import select

from harness.speech_models import KOREAN_MODEL
from harness.stack import Stack, free_port, http_get
from onewindow.backend.citizens import normalise_phone
from onewindow.storage import models
from onewindow.text.dates import spoken_time
from tests import expect
from tests.phone import PhoneCall, RunningGateway, ScriptedRecogniser, recorded_speech, run, saved_transcript, wait_until
from voice.call import CallSettings
from voice.phone_wording import spell_code
from voice.recognition import SpeechRecogniser
from voice.speech_language import keypad_only

pytestmark = pytest.mark.stack
CATALOGUE = Path(__file__).resolve().parent.parent / "catalogue"
PAGE = 8
NOT_FOR_A_KEYPAD = re.compile(r"\b(?:type|typing|tap|click|button|buttons|say|tell me)\b", re.IGNORECASE)
SPEECH = recorded_speech("agent-pass")  # 3.3 s of a real human voice


def catalogue(name: str, key: str) -> Dict[str, Dict[str, Any]]:
    document = YAML(typ="safe").load((CATALOGUE / name).read_text(encoding="utf-8"))
    return {entry["id"]: entry for entry in document[key]}


@pytest.fixture(scope="module")
def keypad(stack: Stack) -> Iterator[RunningGateway]:
    """A hotline that cannot hear speech: every task must work by keys."""
    running = RunningGateway(stack, None, hears=keypad_only("keypad-only test"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def script() -> ScriptedRecogniser:
    return ScriptedRecogniser()


@pytest.fixture(scope="module")
def speaking(stack: Stack, script: ScriptedRecogniser) -> Iterator[RunningGateway]:
    """A hotline that hears (scripted) English speech."""
    running = RunningGateway(stack, script)
    yield running
    running.stop()


def new_number() -> str:
    """A mobile number no citizen in the sample data has."""
    return f"04{random.randint(20, 89)}{random.randint(100000, 999999)}"


# --- a caller who follows the menus --------------------------------------------------------------


@dataclass
class Caller:
    """A caller on `phone` whose conversation is `sender` in the stack; presses keys as soon as a turn starts."""

    stack: Stack
    gateway: RunningGateway
    phone: PhoneCall
    sender: str

    def events(self) -> List[Dict[str, Any]]:
        return self.stack.tracker(self.sender)["events"]

    def bot_count(self) -> int:
        try:
            return sum(1 for e in self.events() if e["event"] == "bot")
        except Exception:  # the conversation does not exist yet
            return 0

    def choices(self) -> List[str]:
        """The titles of the buttons of the assistant's latest message (not a turn the gateway answered itself)."""
        for event in reversed(self.events()):
            if event["event"] == "bot" and not (event.get("metadata") or {}).get("handled"):
                return [b["title"] for b in (event.get("data") or {}).get("buttons") or []]
        return []

    async def answered(self, before: int, timeout: float = 30.0) -> None:
        """Wait until the assistant answered (a new bot message in the conversation) and its audio has started."""
        deadline = time.monotonic() + timeout
        while await asyncio.to_thread(self.bot_count) <= before:
            assert time.monotonic() < deadline, "no answer in the conversation"
            assert not self.phone.hung_up_by_gateway, "the gateway hung up"
            await asyncio.sleep(0.1)
        frames = len(self.phone.received)
        while len(self.phone.received) < frames + 5 and not self.phone.hung_up_by_gateway:
            assert time.monotonic() < deadline, "the answer was never spoken"
            await asyncio.sleep(0.02)

    async def start(self) -> None:
        """The greeting and the main menu."""
        await self.answered(0)

    async def press(self, keys: str) -> None:
        """Press keys and wait for the answer to start."""
        before = await asyncio.to_thread(self.bot_count)
        for key in keys:
            await self.phone.press(key)
        await self.answered(before)

    async def pick(self, pattern: str) -> str:
        """Choose the offered option whose title matches `pattern`: 9 to the page it is on, then its key."""
        titles = await asyncio.to_thread(self.choices)
        found = [n for n, title in enumerate(titles) if re.search(pattern, title, re.IGNORECASE)]
        assert found, f"no choice like {pattern!r} in {titles}"
        page, place = divmod(found[0], PAGE)
        for _ in range(page):
            await self.press("9")
        await self.press(str(place + 1))
        return titles[found[0]]

    async def pick_last(self) -> str:
        """Choose the last option offered (paging through every page before it)."""
        titles = await asyncio.to_thread(self.choices)
        return await self.pick(f"^{re.escape(titles[-1])}$")


async def keypad_call(stack: Stack, gateway: RunningGateway, caller: Optional[str], steps: Any) -> PhoneCall:
    """A call from `caller` (None: the PBX passes no number): `steps(caller)` drives it, then the caller hangs up."""
    phone = PhoneCall(gateway.address.port)
    if caller:
        gateway.register(phone, caller)
    async with phone:
        person = Caller(stack, gateway, phone, f"phone:{normalise_phone(caller) if caller else phone.call_id}")
        await person.start()
        await steps(person)
        if not phone.hung_up_by_gateway:
            await phone.hang_up()
    return phone


def heard(gateway: RunningGateway, phone: PhoneCall) -> List[str]:
    """What the bot said in the call, turn by turn, checked to have no chat or speech wording."""
    said = [t["text"] for t in saved_transcript(gateway, phone).turns if t["speaker"] == "bot"]
    wrong = [text for text in said if NOT_FOR_A_KEYPAD.search(text)]
    assert not wrong, f"a keypad-only caller heard: {wrong}"
    return said


def appointments_of(gateway: RunningGateway, phone: str) -> List[Any]:
    with gateway.backend.engine.connect() as connection:
        return connection.execute(
            select(models.Appointment.__table__, models.AppointmentSlot.starts_at)
            .join(models.Citizen.__table__, models.Appointment.citizen_id == models.Citizen.id)
            .join(models.AppointmentSlot.__table__, models.Appointment.slot_id == models.AppointmentSlot.id)
            .where(models.Citizen.phone == phone)
        ).fetchall()


def book_for(gateway: RunningGateway, phone: str, days_ahead: int = 3) -> Any:
    start = gateway.backend.bookings.next_free("central_centre", date.today() + timedelta(days=days_ahead), 1)[0]
    return gateway.backend.bookings.book("passport_renewal", "central_centre", start, "Li Wei", phone, "rest")


# --- every top task by keypad alone ----------------------------------------------------------------


def test_book_an_appointment_by_keypad_under_the_callers_number_at_a_time_on_a_later_page(
    stack: Stack, keypad: RunningGateway
) -> None:
    number = new_number()
    chosen: Dict[str, str] = {}

    async def steps(caller: Caller) -> None:
        await caller.pick(r"appointment")
        await caller.pick(r"\bbook")
        await caller.pick(r"passport renewal")
        await caller.pick(r"central")
        days = await asyncio.to_thread(caller.choices)  # the second day offered is never today (its times depend on the hour)
        chosen["day"] = await caller.pick(f"^{re.escape(days[1])}$")
        titles = await asyncio.to_thread(caller.choices)
        assert len(titles) > PAGE, f"every free time is offered: {titles}"
        chosen["time"] = await caller.pick_last()  # on the last page
        await caller.pick(r"number you are calling from")  # no name can be keyed: booked under the number
        if not any(re.match("yes", t, re.IGNORECASE) for t in await asyncio.to_thread(caller.choices)):
            await caller.pick(r"number you are calling from")  # the caller's number, confirmed with one key
        await caller.pick(r"^yes")
        await asyncio.sleep(1)

    phone = run(lambda: keypad_call(stack, keypad, number, steps))
    said = " ".join(heard(keypad, phone))
    rows = appointments_of(keypad, number)
    assert len(rows) == 1 and rows[0].channel == "phone" and rows[0].status == "booked", said
    assert spell_code(rows[0].reference) in said
    assert spoken_time(rows[0].starts_at.time()) == chosen["time"] or chosen["time"] in spoken_time(rows[0].starts_at.time())


def test_check_an_appointment_by_keypad_finds_it_by_the_callers_number(stack: Stack, keypad: RunningGateway) -> None:
    number = new_number()
    booked = book_for(keypad, number)

    async def steps(caller: Caller) -> None:
        await caller.pick(r"appointment")
        await caller.pick(r"check")
        await asyncio.sleep(2)

    phone = run(lambda: keypad_call(stack, keypad, number, steps))
    assert spell_code(booked.reference) in " ".join(heard(keypad, phone))


def test_move_an_appointment_by_keypad(stack: Stack, keypad: RunningGateway) -> None:
    number = new_number()
    booked = book_for(keypad, number)

    async def steps(caller: Caller) -> None:
        await caller.pick(r"appointment")
        await caller.pick(r"move|change|reschedule")
        if any(spell_code(booked.reference) in t or booked.reference in t for t in await asyncio.to_thread(caller.choices)):
            await caller.pick(re.escape(booked.reference))
        await caller.pick(r".")  # the first other day offered
        await caller.pick_last()  # its last time (today's first one may pass the booking lead during the call)
        await caller.pick(r"^yes")
        await asyncio.sleep(1)

    phone = run(lambda: keypad_call(stack, keypad, number, steps))
    heard(keypad, phone)
    rows = appointments_of(keypad, number)
    assert len(rows) == 1 and rows[0].status == "booked" and rows[0].starts_at != booked.starts_at


def test_cancel_an_appointment_by_keypad(stack: Stack, keypad: RunningGateway) -> None:
    number = new_number()
    book_for(keypad, number)

    async def steps(caller: Caller) -> None:
        await caller.pick(r"appointment")
        await caller.pick(r"cancel")
        if not any(re.match("yes", t, re.IGNORECASE) for t in await asyncio.to_thread(caller.choices)):
            await caller.pick(r".")  # which appointment: the caller's one
        await caller.pick(r"^yes")
        await asyncio.sleep(1)

    phone = run(lambda: keypad_call(stack, keypad, number, steps))
    heard(keypad, phone)
    assert [row.status for row in appointments_of(keypad, number)] == ["cancelled"]


def test_documents_fee_and_time_of_a_service_by_keypad(stack: Stack, keypad: RunningGateway) -> None:
    passport = catalogue("services.yml", "services")["passport_renewal"]

    async def steps(caller: Caller) -> None:
        await caller.pick(r"documents|fees")
        await caller.pick(re.escape(passport["department"]))
        await caller.pick(r"passport renewal")
        for wanted in (r"document|bring", r"cost|fee", r"how long|time"):  # when they are choices of their own
            if any(re.search(wanted, title, re.IGNORECASE) for title in await asyncio.to_thread(caller.choices)):
                await caller.pick(wanted)
        await asyncio.sleep(1)

    phone = run(lambda: keypad_call(stack, keypad, None, steps))
    said = " ".join(heard(keypad, phone))
    assert all(document in said for document in passport["documents"]), said
    assert f"{passport['fee']} dollars" in said
    assert re.search(r"\b(?:10|ten) (?:working )?days\b|\btwo weeks\b", said), said


def test_a_life_event_bundle_by_keypad(stack: Stack, keypad: RunningGateway) -> None:
    birth = catalogue("life_events.yml", "life_events")["birth"]
    services = catalogue("services.yml", "services")

    async def steps(caller: Caller) -> None:
        await caller.pick(r"life event")
        await caller.pick(r"birth|baby")
        await asyncio.sleep(1)

    phone = run(lambda: keypad_call(stack, keypad, None, steps))
    said = " ".join(heard(keypad, phone)).lower()
    for step in birth["steps"]:
        name = services[step["service"]]["name"].lower()
        assert name.split(" or ")[0] in said, name


def test_an_offices_hours_by_keypad(stack: Stack, keypad: RunningGateway) -> None:
    north = catalogue("offices.yml", "offices")["north_centre"]

    async def steps(caller: Caller) -> None:
        await caller.pick(r"office")
        await caller.pick(r"north")
        await asyncio.sleep(1)

    phone = run(lambda: keypad_call(stack, keypad, None, steps))
    said = " ".join(heard(keypad, phone))
    opens, closes = north["hours"]["mon"].split("-")
    hours = [spoken_time(datetime.strptime(t, "%H:%M").time()) for t in (opens, closes)]
    assert north["name"] in said and all(h in said for h in hours), said


def test_application_status_by_keypad_for_the_callers_number(stack: Stack, keypad: RunningGateway) -> None:
    record = keypad.backend.applications.status("APP-100001")
    assert record is not None

    async def steps(caller: Caller) -> None:
        await caller.pick(r"application")
        titles = await asyncio.to_thread(caller.choices)
        if any("APP" in t for t in titles):  # the caller's applications, found by their number
            await caller.pick(r"APP-100001")
        elif not titles:  # asked for the application number: keyed in
            await caller.press("100001#")
        await asyncio.sleep(2)

    phone = run(lambda: keypad_call(stack, keypad, "0491 570 006", steps))  # the sample data's number for APP-100001
    said = " ".join(heard(keypad, phone)).lower()
    assert record.status.replace("_", " ").lower() in said, said


def test_report_a_problem_by_keypad(stack: Stack, keypad: RunningGateway) -> None:
    async def steps(caller: Caller) -> None:
        await caller.pick(r"report")
        await caller.pick(r"pothole|road")
        for _ in range(4):  # the location and the description, by the choices offered, then yes
            titles = await asyncio.to_thread(caller.choices)
            if not titles:
                break
            await caller.pick(r"^yes" if any(re.match("yes", t, re.I) for t in titles) else r".")
        await asyncio.sleep(1)

    number = new_number()
    phone = run(lambda: keypad_call(stack, keypad, number, steps))
    said = " ".join(heard(keypad, phone))
    with keypad.backend.engine.connect() as connection:
        reports = connection.execute(select(models.Report.__table__).where(models.Report.channel == "phone")).fetchall()
    assert reports and any(spell_code(r.reference) in said for r in reports), said


def test_a_person_from_the_main_menu_by_keypad(stack: Stack, keypad: RunningGateway) -> None:
    async def steps(caller: Caller) -> None:
        await caller.pick(r"person")
        await caller.phone.wait_hangup()

    phone = run(lambda: keypad_call(stack, keypad, None, steps))
    said = heard(keypad, phone)
    assert keypad.control(f"/calls/{phone.call_id}/outcome") == "transfer"
    handoff = keypad.backend.handoffs.active(f"phone:{phone.call_id}")
    assert handoff is not None and spell_code(handoff.reference) in said[-1]
    assert " ".join(said).count(spell_code(handoff.reference)) == 1, "the reference is read once"
    assert re.search(r"\bwait is about \d+ minutes?\b", said[-1]), said[-1]


def test_repeat_slower_more_and_wrong_keys_are_in_the_conversation(stack: Stack, keypad: RunningGateway) -> None:
    """Every turn of a call, also those the gateway answers itself, is in the conversation staff see."""

    pressed: List[str] = []

    async def steps(caller: Caller) -> None:
        offered = len(await asyncio.to_thread(caller.choices))
        assert 0 < offered < PAGE, "the main menu fits one page"
        pressed.extend(["*", "#", "9", str(offered + 1)])  # the last one chooses nothing
        for key in pressed:
            await caller.press(key)

    phone = run(lambda: keypad_call(stack, keypad, None, steps))
    heard(keypad, phone)
    events = stack.tracker(f"phone:{phone.call_id}")["events"]
    local = [e for e in events if (e.get("metadata") or {}).get("handled")]
    assert [e["text"] for e in local if e["event"] == "user"] == [f"key {key}" for key in pressed]
    assert [e["metadata"]["handled"] for e in local if e["event"] == "bot"] == ["repeat", "slower", "more", "wrong_key"]
    assert all(e["text"] for e in local if e["event"] == "bot"), "what the caller heard back"
    first_user = next(e for e in events if e["event"] == "user")
    assert first_user["text"] == "/main_menu" and first_user["metadata"]["input"] == "call_start"
    assert first_user["metadata"]["speech"] is False


# --- a caller is never stuck -----------------------------------------------------------------------


def test_two_misses_bring_the_keypad_menu_and_a_third_a_person(
    stack: Stack, speaking: RunningGateway, script: ScriptedRecogniser
) -> None:
    async def call() -> PhoneCall:
        async with PhoneCall(speaking.address.port) as phone:
            caller = Caller(stack, speaking, phone, f"phone:{phone.call_id}")
            await caller.start()
            menu = await asyncio.to_thread(caller.choices)
            for confidence in (0.1, 0.0, 0.2):
                before = await asyncio.to_thread(caller.bot_count)
                script.will_hear("annyeonghaseyo" if confidence else "", confidence)
                await phone.say(SPEECH)
                await caller.answered(before)
                if confidence == 0.0:
                    assert await asyncio.to_thread(caller.choices) == menu, "the second miss: the main menu"
            await phone.wait_hangup()
            return phone

    phone = run(call)
    events = stack.tracker(f"phone:{phone.call_id}")["events"]
    misses = [e for e in events if e["event"] == "user" and e["parse_data"]["intent"]["name"] == "nlu_fallback"]
    assert len(misses) == 3 and misses[0]["metadata"]["heard"] == "annyeonghaseyo" and misses[0]["metadata"]["confidence"] == 0.1
    assert speaking.control(f"/calls/{phone.call_id}/outcome") == "transfer"
    handoff = speaking.backend.handoffs.active(f"phone:{phone.call_id}")
    assert handoff is not None and handoff.reason == "not_understood"


def test_a_silent_caller_is_put_through_to_a_person(stack: Stack, keypad: RunningGateway) -> None:
    async def call() -> PhoneCall:
        async with PhoneCall(keypad.address.port) as phone:
            await phone.wait_hangup(timeout=120)
            return phone

    phone = run(call)
    record = saved_transcript(keypad, phone)
    assert record.outcome == "transferred"
    assert any(t["text"].startswith("Are you still there?") for t in record.turns)
    handoff = keypad.backend.handoffs.active(f"phone:{phone.call_id}")
    assert handoff is not None and handoff.reason == "silence"
    events = stack.tracker(f"phone:{phone.call_id}")["events"]
    assert any(e["event"] == "bot" and (e.get("metadata") or {}).get("handled") == "reprompt" for e in events)
    assert [e["metadata"]["input"] for e in events if e["event"] == "user"][-1] == "silence"


def test_a_caller_who_hangs_up_during_the_transfer_announcement_leaves_the_queue(stack: Stack, keypad: RunningGateway) -> None:
    async def call() -> PhoneCall:
        async with PhoneCall(keypad.address.port) as phone:
            caller = Caller(stack, keypad, phone, f"phone:{phone.call_id}")
            await caller.start()
            await caller.press("0")  # the announcement has started
            await phone.hang_up()
            return phone

    phone = run(call)
    record = saved_transcript(keypad, phone)
    assert record.outcome == "caller_hung_up"
    assert keypad.control(f"/calls/{phone.call_id}/outcome") == "hangup"
    sender = f"phone:{phone.call_id}"
    assert keypad.backend.handoffs.active(sender) is None, "no open handoff is left in the staff queue"
    with keypad.backend.engine.connect() as connection:
        row = connection.execute(select(models.HandoffRequest.__table__).where(models.HandoffRequest.sender_id == sender)).one()
    assert (row.status, row.outcome) == ("withdrawn", "caller_left")


def test_a_speech_model_in_another_language_is_reported_in_health_and_speech_is_off(stack: Stack) -> None:
    gateway = RunningGateway(stack, SpeechRecogniser(str(KOREAN_MODEL)))
    try:
        health = json.loads(gateway.control("/health"))
        assert health["speech"] is False and health["speech_model_language"] == "ko"
        assert health["assistant_language"] == "en" and health["speech_language_matches"] is False
        assert "ko" in health["speech_reason"] and "en" in health["speech_reason"]

        async def steps(caller: Caller) -> None:
            await caller.pick(r"office")

        phone = run(lambda: keypad_call(stack, gateway, None, steps))
        heard(gateway, phone)  # no prompt offers speaking
    finally:
        gateway.stop()


def test_the_gateway_reports_a_mismatched_speech_model_at_start(stack: Stack, tmp_path: Path) -> None:
    """`python -m voice gateway` with the Korean model for the English assistant: said at start, and in /health."""
    control = free_port()
    env = {
        **os.environ,
        "VOSK_MODEL_PATH": str(KOREAN_MODEL),
        "VOICE_PORT": str(free_port()),
        "VOICE_CONTROL_PORT": str(control),
        "DATABASE_URL": stack.database_url,
        "RASA_URL": f"http://127.0.0.1:{stack.rasa_port}",
        "RASA_API_URL": stack.api_url,
        **stack.api_env(),
    }
    log = tmp_path / "voice.log"
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "voice", "gateway"], env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: http_get(f"http://127.0.0.1:{control}/health"), timeout=60)
        health = json.loads(expect.present(http_get(f"http://127.0.0.1:{control}/health"), "the gateway's health answer"))
        assert health["speech"] is False and health["speech_model_language"] == "ko"
        text = log.read_text()
        assert "the speech model's language (ko) is not the assistant's (en)" in text
        listening = [json.loads(line) for line in text.splitlines() if '"gateway.listening"' in line]
        assert listening and listening[0]["speech"] is False and listening[0]["speech_model_language"] == "ko"
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_silence_may_be_set_to_hang_up_instead(stack: Stack) -> None:
    gateway = RunningGateway(stack, None, CallSettings(silence_timeout=3.0, silence_action="hangup"), keypad_only("test"))
    try:

        async def call() -> PhoneCall:
            async with PhoneCall(gateway.address.port) as phone:
                await phone.wait_hangup(timeout=120)
                return phone

        phone = run(call)
        record = saved_transcript(gateway, phone)
        assert record.outcome == "no_response" and "Goodbye" in record.turns[-1]["text"]
        assert gateway.backend.handoffs.active(f"phone:{phone.call_id}") is None
    finally:
        gateway.stop()
    with pytest.raises(ValueError):
        CallSettings(silence_action="voicemail")
