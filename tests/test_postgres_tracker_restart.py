"""A running Rasa instance on a PostgreSQL tracker store of the test's own (tests/pg_cluster.py), stopped and started.

The REST channel answers a turn during the outage with the technical apology (not an error, not silence, no hang);
once PostgreSQL is back the same Rasa process, never restarted, answers again; the conversation's tracker holds
every turn answered normally, once each and in order, and none of the turns cut off by the outage.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Iterator, List

import pytest
from sqlalchemy import create_engine, text

from harness.stack import Stack
from tests.pg_cluster import PgCluster, available

pytestmark = [pytest.mark.postgres, pytest.mark.stack, pytest.mark.skipif(not available(), reason="needs root, initdb")]
APOLOGY = "technical problem"
RECOVERY_SECONDS = 60


@pytest.fixture(scope="module")
def cluster_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    cluster = PgCluster().start()
    stack = None
    try:
        tracker = cluster.create_database("tracker")
        stack = Stack(Path(tmp_path_factory.mktemp("pgtracker")), tracker_database_url=tracker).start()
        yield cluster, stack
    finally:
        if stack is not None:
            stack.stop()
        cluster.remove()


def texts(replies: List[dict]) -> str:
    return " ".join(str(reply.get("text", "")) for reply in replies)


def test_a_turn_during_a_postgresql_outage_gets_the_apology_and_the_conversation_goes_on(cluster_stack: tuple) -> None:
    cluster, stack = cluster_stack
    sender = f"pg-{uuid.uuid4().hex[:8]}"
    answered = ["hello", "what are your opening hours"]
    for message in answered:
        assert APOLOGY not in texts(stack.say(sender, message))
    cluster.stop()
    try:
        during = stack.say(sender, "how much is a work permit", timeout=60)
    finally:
        cluster.resume()
    assert APOLOGY in texts(during)
    deadline = time.monotonic() + RECOVERY_SECONDS
    while APOLOGY in texts(stack.say(sender, "thank you", timeout=60)):  # back within the connect backoff (4 s)
        assert time.monotonic() < deadline, "Rasa did not answer again after PostgreSQL came back"
        time.sleep(0.5)
    answered.append("thank you")
    assert APOLOGY not in texts(stack.say(sender, "how much is a work permit"))
    answered.append("how much is a work permit")

    events = stack.tracker(sender)["events"]
    assert [event["text"] for event in events if event["event"] == "user"] == answered
    kinds = [event["event"] for event in events if event["event"] in ("user", "bot")]
    assert all(kinds[i + 1] == "bot" for i, kind in enumerate(kinds) if kind == "user")


def test_a_turn_whose_save_fails_gets_the_apology_not_its_unsaved_reply(cluster_stack: tuple) -> None:
    """The tracker is read, the turn runs and its reply is collected, then storing its events fails: the citizen
    gets the apology, not a reply to a message the conversation will not hold (PostgreSQL refuses the insert)."""
    _, stack = cluster_stack
    sender = f"pg-save-{uuid.uuid4().hex[:8]}"
    engine = create_engine(stack.tracker_database_url)
    refuse = f"""
        CREATE FUNCTION refuse_{sender.replace("-", "_")}() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
        CREATE TRIGGER refuse_{sender.replace("-", "_")} BEFORE INSERT ON events FOR EACH ROW
        WHEN (NEW.sender_id = '{sender}') EXECUTE FUNCTION refuse_{sender.replace("-", "_")}();
    """
    try:
        with engine.begin() as connection:
            connection.execute(text(refuse))
        during = texts(stack.say(sender, "how much is a work permit", timeout=60))
        assert APOLOGY in during and "costs" not in during, during
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP TRIGGER refuse_{sender.replace('-', '_')} ON events"))
        engine.dispose()
    assert "costs" in texts(stack.say(sender, "how much is a work permit"))
    said = [event["text"] for event in stack.tracker(sender)["events"] if event["event"] == "user"]
    assert said == ["how much is a work permit"], said
