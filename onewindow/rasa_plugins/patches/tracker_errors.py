"""Patch: a tracker store that fails fails the turn, instead of Rasa's silent fallback to memory.

Rasa wraps every tracker store in FailSafeTrackerStore (`rasa.core.agent.Agent._create_tracker_store`). When the
store raises, Rasa logs it and then `retrieve` returns None, so the message is handled as the first of a new
conversation (a form in progress and a conversation held for a person are forgotten), and `save` keeps the tracker
in an in-memory store that nothing reads again (the turn is answered, then lost). With the tracker database stopped,
tests/test_postgres_tracker_restart.py saw exactly that: a reply out of context, missing from the conversation
afterwards. Here the wrapper gets Rasa's own `on_tracker_store_error` hook, which raises the error again: the turn
fails and the channel answers with its technical apology; the database outage itself is logged once by
onewindow/storage/reconnect.py. Checked by tests/test_rasa_patches.py (the hash of the replaced function).
"""

from __future__ import annotations

from typing import Optional

from rasa.core.agent import Agent
from rasa.core.tracker_store import FailSafeTrackerStore, InMemoryTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain

ORIGINAL_CREATE_TRACKER_STORE = Agent.__dict__["_create_tracker_store"].__func__


def fail_the_turn(error: Exception) -> None:
    raise error


def create_tracker_store(store: Optional[TrackerStore], domain: Domain) -> TrackerStore:
    """What the original does (the given store, or one in memory), with errors raised instead of hidden."""
    if store is not None:
        store.domain = domain
    else:
        store = InMemoryTrackerStore(domain)
    return FailSafeTrackerStore(store, on_tracker_store_error=fail_the_turn)


def install() -> None:
    Agent._create_tracker_store = staticmethod(create_tracker_store)
