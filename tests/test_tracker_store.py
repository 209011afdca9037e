"""LeanSQLTrackerStore writes and reads the same rows as Rasa's own SQLTrackerStore, on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Iterator, List

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import select
from sqlalchemy.engine import make_url

from onewindow.settings import PROJECT_ROOT
from onewindow.tracker_events import events as events_table
from onewindow.tracker_events import tracker_engine
from onewindow.tracker_store import STORED_EVENTS, LeanSQLTrackerStore
from tests.conftest import DATABASE_KINDS, empty_database


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(PROJECT_ROOT / "domain.yml"))


@pytest.fixture(params=DATABASE_KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from empty_database(request.param, tmp_path)


def stores(url: str, domain: Domain) -> tuple:
    """(lean, stock) tracker stores on the same database, configured the way endpoints.yml does."""
    parsed = make_url(url)
    settings = (
        {"dialect": "sqlite", "db": parsed.database}
        if parsed.get_backend_name() == "sqlite"
        else {"host": url}
    )
    return LeanSQLTrackerStore(domain, **settings), SQLTrackerStore(domain, **settings)


def turn(text: str, intent: str, at: float) -> List[Event]:
    return [
        UserUttered(text, {"name": intent, "confidence": 0.9}, timestamp=at),
        ActionExecuted("action_answer_service_question", timestamp=at + 0.1),
        BotUttered(f"answer to {text}", timestamp=at + 0.2),
        SlotSet("service", "passport_renewal", timestamp=at + 0.3),
        ActionExecuted("action_listen", timestamp=at + 0.4),
    ]


def stored_rows(url: str) -> list:
    engine = tracker_engine(url=url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(events_table.c.sender_id, events_table.c.type_name, events_table.c.intent_name,
                   events_table.c.action_name, events_table.c.data).order_by(events_table.c.id)
        ).all()
    engine.dispose()
    return rows


def test_what_one_store_writes_the_other_reads_identically(url: str, domain: Domain) -> None:
    lean, stock = stores(url, domain)
    start = time.time() - 100
    opening = [ActionExecuted("action_session_start", timestamp=start), SessionStarted(timestamp=start),
               ActionExecuted("action_listen", timestamp=start)]
    tracker = DialogueStateTracker.from_events("citizen-1", opening + turn("how much is a passport", "ask_fee", start + 1), domain.slots)
    asyncio.run(lean.save(tracker))
    by_stock = asyncio.run(stock.retrieve("citizen-1"))
    by_lean = asyncio.run(lean.retrieve("citizen-1"))
    assert by_stock is not None and by_lean is not None
    assert by_lean.current_state() == by_stock.current_state() == tracker.current_state()
    assert [e.as_dict() for e in by_lean.events] == [e.as_dict() for e in tracker.events]

    # the next turn, saved by each store in turn, adds only the new events
    for store, text, at in ((lean, "and how long does it take", start + 2), (stock, "can I do it online", start + 3)):
        current = asyncio.run(store.retrieve("citizen-1"))
        for event in turn(text, "ask_processing_time", at):
            current.update(event)
        asyncio.run(store.save(current))
    rows = stored_rows(url)
    assert len(rows) == len(opening) + 3 * 5
    assert [r.type_name for r in rows].count("user") == 3 and {r.sender_id for r in rows} == {"citizen-1"}
    assert [r.intent_name for r in rows if r.type_name == "user"] == ["ask_fee", "ask_processing_time", "ask_processing_time"]
    assert [r.action_name for r in rows][:1] == ["action_session_start"]


def test_saving_the_same_tracker_twice_stores_each_event_once(url: str, domain: Domain) -> None:
    lean, _ = stores(url, domain)
    tracker = DialogueStateTracker.from_events("citizen-2", turn("hello", "greet", time.time()), domain.slots)
    asyncio.run(lean.save(tracker))  # not read here: counted in the table first
    assert getattr(tracker, STORED_EVENTS) == 5
    asyncio.run(lean.save(tracker))
    tracker.update(BotUttered("anything else?"))
    asyncio.run(lean.save(tracker))
    assert len(stored_rows(url)) == 6


def test_only_the_latest_session_is_read_unless_all_are_asked_for(url: str, domain: Domain) -> None:
    lean, stock = stores(url, domain)
    old, new = time.time() - 7200, time.time() - 10
    events = (
        [SessionStarted(timestamp=old)] + turn("hello", "greet", old + 1)
        + [SessionStarted(timestamp=new)] + turn("thanks", "thank", new + 1)
    )
    asyncio.run(lean.save(DialogueStateTracker.from_events("citizen-3", events, domain.slots)))
    latest = asyncio.run(lean.retrieve("citizen-3"))
    assert [e.as_dict() for e in latest.events] == [e.as_dict() for e in asyncio.run(stock.retrieve("citizen-3")).events]
    assert len(latest.events) == 6 and getattr(latest, STORED_EVENTS) == 6
    assert len(asyncio.run(lean.retrieve_full_tracker("citizen-3")).events) == 12
    assert asyncio.run(lean.retrieve("nobody")) is None


def test_a_conversation_deleted_while_being_handled_is_not_written_back(url: str, domain: Domain) -> None:
    """/forget deletes the rows outside Rasa; the tracker Rasa holds must not put them back."""
    lean, _ = stores(url, domain)
    asyncio.run(lean.save(DialogueStateTracker.from_events("citizen-4", turn("hello", "greet", time.time()), domain.slots)))
    held = asyncio.run(lean.retrieve("citizen-4"))
    engine = tracker_engine(url=url)
    with engine.begin() as connection:
        connection.execute(events_table.delete().where(events_table.c.sender_id == "citizen-4"))
    engine.dispose()
    held.update(BotUttered("goodbye"))
    asyncio.run(lean.save(held))
    assert [r.type_name for r in stored_rows(url)] == ["bot"]
