"""LeanSQLTrackerStore writes and reads the same rows as Rasa's own SQLTrackerStore, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, Event, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy import select
from sqlalchemy.engine import make_url

from onewindow.rasa_plugins.events_table import events as events_table
from onewindow.rasa_plugins.events_table import tracker_engine
from onewindow.rasa_plugins.patches.tracker_store import STORED_EVENTS, LeanSQLTrackerStore
from onewindow.settings import PROJECT_ROOT
from tests.conftest import DATABASE_KINDS, empty_database


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(PROJECT_ROOT / "domain.yml"))


@pytest.fixture(params=DATABASE_KINDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from empty_database(request.param, tmp_path)


def settings_for(url: str) -> dict:
    """Tracker store settings for the database at `url`, the way endpoints.yml gives them."""
    parsed = make_url(url)
    return {"dialect": "sqlite", "db": parsed.database} if parsed.get_backend_name() == "sqlite" else {"host": url}


def stores(url: str, domain: Domain) -> tuple:
    """(lean, stock) tracker stores on the same database."""
    return LeanSQLTrackerStore(domain, **settings_for(url)), SQLTrackerStore(domain, **settings_for(url))


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
            select(
                events_table.c.sender_id,
                events_table.c.type_name,
                events_table.c.intent_name,
                events_table.c.action_name,
                events_table.c.data,
            ).order_by(events_table.c.id)
        ).all()
    engine.dispose()
    return rows


def test_what_one_store_writes_the_other_reads_identically(url: str, domain: Domain) -> None:
    lean, stock = stores(url, domain)
    start = time.time() - 100
    opening = [
        ActionExecuted("action_session_start", timestamp=start),
        SessionStarted(timestamp=start),
        ActionExecuted("action_listen", timestamp=start),
    ]
    tracker = DialogueStateTracker.from_events(
        "citizen-1", opening + turn("how much is a passport", "ask_fee", start + 1), domain.slots
    )
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
        [SessionStarted(timestamp=old)]
        + turn("hello", "greet", old + 1)
        + [SessionStarted(timestamp=new)]
        + turn("thanks", "thank", new + 1)
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


def _opened(sender: str, at: float, domain: Domain) -> DialogueStateTracker:
    opening = [
        ActionExecuted("action_session_start", timestamp=at),
        SessionStarted(timestamp=at),
        ActionExecuted("action_listen", timestamp=at),
    ]
    return DialogueStateTracker.from_events(sender, opening + turn("hello", "greet", at + 1), domain.slots)


def _next_turn(store: LeanSQLTrackerStore, sender: str, text: str, at: float) -> DialogueStateTracker:
    tracker = asyncio.run(store.retrieve(sender))
    for event in turn(text, "ask_fee", at):
        tracker.update(event)
    asyncio.run(store.save(tracker))
    return tracker


def test_the_next_message_takes_back_the_tracker_it_saved_while_the_rows_are_unchanged(url: str, domain: Domain) -> None:
    lean, _ = stores(url, domain)
    start = time.time() - 100
    asyncio.run(lean.save(_opened("citizen-5", start, domain)))  # a new session: not kept, read next time
    saved = _next_turn(lean, "citizen-5", "how much is it", start + 2)
    again = asyncio.run(lean.retrieve("citizen-5"))
    assert again is saved, "no read and replay of the events"
    assert asyncio.run(lean.retrieve("citizen-5")) is not saved, "taken back once: the next read is a fresh one"
    fresh = asyncio.run(lean.retrieve("citizen-5"))
    assert [e.as_dict() for e in fresh.events] == [e.as_dict() for e in saved.events]


def test_a_kept_tracker_is_not_used_once_anything_changed_its_rows(url: str, domain: Domain) -> None:
    lean, _ = stores(url, domain)
    other_instance, _ = stores(url, domain)
    start = time.time() - 100
    asyncio.run(lean.save(_opened("citizen-6", start, domain)))
    _next_turn(lean, "citizen-6", "how much is it", start + 2)
    # another Rasa instance answers the conversation's next message
    _next_turn(other_instance, "citizen-6", "and how long does it take", start + 3)
    seen = asyncio.run(lean.retrieve("citizen-6"))
    assert [e.text for e in seen.events if isinstance(e, UserUttered)] == ["hello", "how much is it", "and how long does it take"]
    asyncio.run(lean.save(seen))
    # /forget deletes the rows outside Rasa
    engine = tracker_engine(url=url)
    with engine.begin() as connection:
        connection.execute(events_table.delete().where(events_table.c.sender_id == "citizen-6"))
    engine.dispose()
    assert asyncio.run(lean.retrieve("citizen-6")) is None, "a forgotten conversation is not brought back from memory"


def test_a_tracker_changed_after_saving_or_starting_a_session_is_read_again(url: str, domain: Domain) -> None:
    lean, _ = stores(url, domain)
    start = time.time() - 7200
    asyncio.run(lean.save(_opened("citizen-7", start, domain)))
    saved = _next_turn(lean, "citizen-7", "how much is it", start + 2)
    saved.update(BotUttered("not saved"))  # Rasa added an event after saving and stopped
    again = asyncio.run(lean.retrieve("citizen-7"))
    assert again is not saved and "not saved" not in [getattr(e, "text", None) for e in again.events]
    # a new session begins in this turn: the tracker still holds the old session's events
    later = time.time()
    for event in [
        ActionExecuted("action_session_start", timestamp=later),
        SessionStarted(timestamp=later),
        ActionExecuted("action_listen", timestamp=later),
    ]:
        again.update(event)
    asyncio.run(lean.save(again))
    latest = asyncio.run(lean.retrieve("citizen-7"))
    assert latest is not again and len(latest.events) == 3, "only the latest session is read"


def test_only_the_most_recent_conversations_are_kept(url: str, domain: Domain) -> None:
    lean = LeanSQLTrackerStore(domain, keep_trackers=1, **settings_for(url))
    start = time.time() - 100
    saved = {}
    for sender in ("citizen-8", "citizen-9"):
        asyncio.run(lean.save(_opened(sender, start, domain)))
        saved[sender] = _next_turn(lean, sender, "how much is it", start + 2)
    assert asyncio.run(lean.retrieve("citizen-9")) is saved["citizen-9"]
    assert asyncio.run(lean.retrieve("citizen-8")) is not saved["citizen-8"], "the older one made room"
    never = LeanSQLTrackerStore(domain, keep_trackers=0, **settings_for(url))
    kept_none = _next_turn(never, "citizen-8", "and how long", start + 3)
    assert asyncio.run(never.retrieve("citizen-8")) is not kept_none


# the events of a conversation, any mix and order, several sessions and timestamps that may tie or go back
EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["user", "bot", "slot", "action", "session", "loop"]),
        st.sampled_from(["hello", "how much is it", "/affirm", "service", "question", "handoff_active"]),
        st.integers(0, 50),
    ),
    min_size=1,
    max_size=25,
)


def as_event(kind: str, word: str, second: int, start: float) -> Event:
    at = start + second
    if kind == "user":
        return UserUttered(word, {"name": "greet", "confidence": 0.7}, timestamp=at)
    if kind == "bot":
        return BotUttered(f"answer to {word}", timestamp=at)
    if kind == "slot":
        value = True if word == "handoff_active" else word
        return SlotSet(word if word in ("service", "question", "handoff_active") else "question", value, timestamp=at)
    if kind == "session":
        return SessionStarted(timestamp=at)
    if kind == "loop":
        return ActiveLoop("booking_form" if second % 2 else None, timestamp=at)
    return ActionExecuted("action_listen" if second % 2 else "action_session_start", timestamp=at)


def test_the_overridden_retrieve_gives_the_tracker_of_the_original(url: str, domain: Domain) -> None:
    """LeanSQLTrackerStore._retrieve (patches/tracker_store.py) against SQLTrackerStore._retrieve, on rows written by
    Rasa's own store: the same events and state, the latest session or all of them."""
    lean, stock = stores(url, domain)
    start = time.time() - 3600
    conversations = iter(range(10_000))

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(EVENTS)
    def same_tracker(drawn: List[Tuple[str, str, int]]) -> None:
        sender = f"citizen-{next(conversations)}"
        events = [as_event(*event, start) for event in drawn]
        asyncio.run(stock.save(DialogueStateTracker.from_events(sender, events, domain.slots)))
        for all_sessions in (False, True):
            by_lean = asyncio.run(lean._retrieve(sender, all_sessions))
            by_stock = asyncio.run(stock._retrieve(sender, all_sessions))
            assert by_lean is not None and by_stock is not None
            assert [e.as_dict() for e in by_lean.events] == [e.as_dict() for e in by_stock.events]
            assert by_lean.current_state() == by_stock.current_state()
        assert asyncio.run(lean._retrieve("nobody", False)) is asyncio.run(stock._retrieve("nobody", False)) is None

    same_tracker()
