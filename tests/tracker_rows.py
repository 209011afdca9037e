"""Rasa tracker store rows built by hand (the shape Rasa 3.6's SQLTrackerStore writes), for exact control
over times, intents and confidences in console tests (tests that need real Rasa rows use harness.stack),
and the real console started on a set of sample conversations."""

from __future__ import annotations

import itertools
import json
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, Iterator, List, Optional

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from console.filters import day_start
from onewindow.backend import ServiceBackend
from onewindow.backend.transcripts import CallRecord
from onewindow.rasa_plugins.events_table import events, tracker_database_url, tracker_engine
from onewindow.storage import models
from onewindow.storage.db import make_engine
from tests.console_server import RunningConsole, StaffClient, create_staff_user, logged_in_client

if TYPE_CHECKING:
    from harness.stack import Stack


def user(
    text: str, intent: str, confidence: float = 0.95, entities: Iterable[Dict[str, Any]] = (), channel: str = ""
) -> Dict[str, Any]:
    return {
        "event": "user",
        "text": text,
        "input_channel": "rest",
        "metadata": {"channel": channel} if channel else {},
        "parse_data": {"intent": {"name": intent, "confidence": confidence}, "entities": list(entities), "text": text},
    }


def bot(text: str, staff: Optional[str] = None) -> Dict[str, Any]:
    return {"event": "bot", "text": text, "data": {}, "metadata": {"staff": staff} if staff else {}}


def action(name: str) -> Dict[str, Any]:
    return {"event": "action", "name": name, "policy": "RulePolicy", "confidence": 1.0}


def slot(name: str, value: Any) -> Dict[str, Any]:
    return {"event": "slot", "name": name, "value": value}


def session() -> List[Dict[str, Any]]:
    """What Rasa writes when a session starts."""
    return [action("action_session_start"), {"event": "session_started"}, action("action_listen")]


def write(engine: Engine, sender: str, rows: Iterable[Dict[str, Any]], start: float, step: float = 1.0) -> None:
    """Insert `rows` for `sender`, the first at `start` (epoch seconds), then one every `step` seconds."""
    values = []
    for number, event in enumerate(rows):
        timestamp = start + number * step
        kind = event["event"]
        values.append(
            {
                "sender_id": sender,
                "type_name": kind,
                "timestamp": timestamp,
                "intent_name": event["parse_data"]["intent"]["name"] if kind == "user" else None,
                "action_name": event.get("name") if kind in ("action", "slot") else None,
                "data": json.dumps({**event, "timestamp": timestamp}),
            }
        )
    with engine.begin() as connection:
        connection.execute(insert(events), values)


PASSWORD = "correct horse battery"
usernames = (f"member{n}" for n in itertools.count(1))
DAY1 = date(2026, 3, 2)
DAY2 = DAY1 + timedelta(days=1)
T1 = day_start(DAY1) + 9 * 3600
T2 = day_start(DAY2) + 10 * 3600
SENDERS = {"web-a", "telegram:123456789", "phone:0499887766", "kiosk:7", "web-xss"}


def write_sample_conversations(tracker: Engine, service: Engine) -> None:
    """Five conversations on DAY1 (one continued on DAY2), with a handoff claimed after 12 minutes."""
    write(
        tracker,
        "web-a",
        [
            *session(),
            user("hello", "greet", 0.99),
            action("utter_greet"),
            bot("Hi, how can I help?"),
            user("what do I need for a passport", "ask_documents", 0.9),
            action("action_documents"),
            slot("service", "passport_renewal"),
            slot("requested_slot", None),
            bot("Bring your old passport."),
        ],
        T1,
    )
    write(tracker, "web-a", [*session(), user("thanks", "thank", 0.97), bot("You are welcome.")], T2)
    write(
        tracker,
        "telegram:123456789",
        [
            *session(),
            user("book an appointment", "book_appointment", 0.98),
            slot("citizen_name", "Ana Silva"),
            slot("citizen_phone", "0412 345 678"),
            user("my number is 0412 345 678", "inform", 0.4),
            bot("Thanks Ana Silva, I have 0412 345 678."),
        ],
        T1 + 60,
    )
    write(tracker, "phone:0499887766", [*session(), user("zzz", "nlu_fallback", 0.0), bot("Sorry?")], T1 + 120)
    write(
        tracker,
        "kiosk:7",
        [
            *session(),
            user("100% sure_thing", "out_of_scope", 0.8),
            bot("I cannot help with that."),
            user("I want a person", "request_human", 0.99),
            action("action_request_human"),
            bot("A person will reply."),
            bot("Hello, this is Sam.", staff="sam"),
        ],
        T1 + 180,
    )
    write(tracker, "web-xss", [*session(), user("<script>alert(1)</script>", "nlu_fallback", 0.0)], T1 + 240)
    requested = datetime.utcfromtimestamp(T1 + 185)
    with service.begin() as connection:
        connection.execute(
            insert(models.HandoffRequest.__table__).values(
                reference="HO-100001",
                sender_id="kiosk:7",
                channel="kiosk",
                reason="citizen_request",
                summary={},
                priority=2,
                status="claimed",
                created_at=requested,
                claimed_by="sam",
                claimed_at=requested + timedelta(minutes=12),
                callback_requested=False,
            )
        )


@contextmanager
def console_with_samples(workdir: Path) -> Iterator[RunningConsole]:
    """The real console (`python -m console serve`) on a fresh SQLite service database and tracker store in
    `workdir`, holding the sample conversations and a phone call transcript for the phone conversation."""
    with RunningConsole(f"sqlite:///{workdir / 'onewindow.db'}", workdir) as console:
        tracker, service = tracker_engine(url=tracker_database_url(console.endpoints)), make_engine(console.database_url)
        try:
            write_sample_conversations(tracker, service)
            started = datetime.utcfromtimestamp(T1 + 120)
            ServiceBackend(service).transcripts.save(
                CallRecord(
                    "call-1",
                    "phone",
                    "phone:0499887766",
                    started,
                    started + timedelta(seconds=40),
                    "caller_hung_up",
                    3.5,
                    [{"at": started.isoformat(), "speaker": "caller", "text": "zzz", "confidence": 0.31, "audio_seconds": 1.5}],
                )
            )
        finally:
            tracker.dispose()
            service.dispose()
        yield console


@contextmanager
def staff(console: RunningConsole, role: str, landing: str = "/transcripts") -> Iterator[StaffClient]:
    """A new staff member with `role`, logged in (`client.username`, `client.csrf_token`)."""
    username = next(usernames)
    create_staff_user(console.database_url, username, role, PASSWORD)
    client = logged_in_client(console.base_url, username, PASSWORD, landing=landing)
    try:
        yield client
    finally:
        client.close()


def age_conversation(stack: "Stack", sender: str, seconds: float) -> None:
    """Move every stored event of the conversation `seconds` into the past, as if the citizen had been silent."""
    engine = tracker_engine(url=stack.tracker_database_url)
    with engine.begin() as connection:
        rows = connection.execute(select(events.c.id, events.c.data).where(events.c.sender_id == sender)).all()
        for event_id, data in rows:
            event = json.loads(data)
            event["timestamp"] -= seconds
            connection.execute(
                events.update().where(events.c.id == event_id).values(timestamp=event["timestamp"], data=json.dumps(event))
            )
    engine.dispose()
