"""The console's data layer (console/conversations.py, corrections.py, statistics.py, filters.py, masking.py):
on hand-built tracker rows (exact times and confidences, SQLite and PostgreSQL) and on rows written by a
real Rasa server that held conversations over REST."""

from __future__ import annotations

import contextlib
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

from console.conversations import ConversationStore, Transcript
from console.corrections import Corrections
from console.filters import ConversationFilter, InvalidFilter, parse_filter, parse_range, tags_from_text
from console.masking import Masker
from console.statistics import analytics
from harness.stack import Stack
from onewindow.backend import ServiceBackend
from onewindow.rasa_plugins.events_table import tracker_engine
from onewindow.service_catalogue import Catalogue
from onewindow.storage import models
from onewindow.storage.db import make_engine
from tests import expect
from tests.conftest import DATABASE_KINDS, empty_database
from tests.fixtures_stack import RunningStack
from tests.test_e2e_rest import booking_request
from tests.tracker_rows import DAY1, DAY2, SENDERS, T1, T2, write_sample_conversations


@pytest.fixture(params=DATABASE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConversationStore]:
    """The tracker store and the service database in one empty database of each kind, with the hand-built rows."""
    with contextlib.contextmanager(empty_database)(request.param, tmp_path) as url:
        tracker, service = tracker_engine(url=url), make_engine(url)
        models.Base.metadata.create_all(service)
        conversations = ConversationStore(tracker, service)
        write_sample_conversations(tracker, service)
        yield conversations
        tracker.dispose()
        service.dispose()


def senders(store: ConversationStore, **criteria: Any) -> List[str]:
    return [item.sender_id for item in store.search(ConversationFilter(**criteria)).items]


# --- filters and masking (no database) ------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        ({"from": "2026-13-01"}, "'from' must be a date"),
        ({"to": "yesterday"}, "'to' must be a date"),
        ({"from": "2026-03-02T00:00"}, "'from' must be a date"),
        ({"from": "2026-03-05", "to": "2026-03-01"}, "'to' must not be before 'from'"),
        ({"channel": "fax"}, "'channel' must be one of"),
        ({"intent": "greet' OR 1=1 --"}, "'intent' must be one of"),
        ({"outcome": "won"}, "'outcome' must be one of"),
        ({"reason": "<script>"}, "'reason' must be one of"),
        ({"tag": "<b>bold</b>"}, "a tag is"),
        ({"q": "x" * 201}, "at most 200 characters"),
        ({"reviewed": "maybe"}, "'reviewed' must be one of"),
    ],
)
def test_invalid_filters_are_refused_with_a_message(args: Dict[str, str], message: str) -> None:
    with pytest.raises(InvalidFilter, match=message):
        parse_filter(args)


def test_a_valid_filter_round_trips_through_its_parameters() -> None:
    args = {
        "from": "2026-03-02",
        "to": "2026-03-03",
        "channel": "rest",
        "intent": "nlu_fallback",
        "outcome": "handed_off",
        "reason": "keypad",
        "tag": "  Wrong   Answer ",
        "q": "passport 100%",
        "reviewed": "no",
    }
    criteria = parse_filter(args)
    assert criteria.tag == "wrong answer"
    assert parse_filter(criteria.params()) == criteria
    assert expect.present(criteria.until(), "an end") - expect.present(criteria.since(), "a start") == 2 * 86400
    assert parse_filter({}).params() == {}


def test_analytics_range_defaults_to_the_last_30_days_and_is_checked() -> None:
    date_from, date_to = parse_range({})
    assert (date_to - date_from).days == 29
    assert parse_range({"from": "2026-01-01", "to": "2026-01-31"}) == (date(2026, 1, 1), date(2026, 1, 31))
    with pytest.raises(InvalidFilter):
        parse_range({"from": "2020-01-01", "to": "2026-01-01"})
    with pytest.raises(InvalidFilter):
        tags_from_text(",".join(f"tag{n}" for n in range(11)))


def test_masker_hides_numbers_and_known_names_as_whole_words() -> None:
    mask = Masker(["Ana Silva", "x"])
    assert mask("Thanks Ana Silva, I have 0412 345 678.") == "Thanks ••••, I have •••• 78."
    assert mask("ANA SILVA called from +61 412 345 699") == "•••• called from •••• 99"
    assert mask("Anastasia Silvan") == "Anastasia Silvan"  # not the same word
    assert mask("your reference is BK-482913") == "your reference is BK-482913"  # too short for a phone or ID number
    assert mask("ID 1234567890123") == "ID •••• 23"
    assert mask(None) is None and mask(3) == 3


def test_the_citys_published_numbers_are_not_personal_data(catalogue: Catalogue) -> None:
    hotline = catalogue.city["hotline"]["number"]
    office = next(o["phone"] for o in catalogue.offices if o.get("phone"))
    mask = Masker()
    assert (
        mask(f"call the hotline on {hotline} or the office on {office}")
        == f"call the hotline on {hotline} or the office on {office}"
    )
    assert mask("mine is 0412 100 200") == "mine is •••• 00"  # a citizen's number is masked as before


# --- hand-built rows ---------------------------------------------------------------------------


def test_search_filters_by_channel_intent_outcome_reason_and_text(store: ConversationStore) -> None:
    assert set(senders(store)) == SENDERS
    assert senders(store)[0] == "web-a"  # the most recent first: it continued on DAY2
    assert senders(store, channel="telegram") == ["telegram:123456789"]
    assert set(senders(store, channel="rest")) == {"web-a", "web-xss"}
    assert senders(store, channel="kiosk") == ["kiosk:7"]
    assert senders(store, intent="ask_documents") == ["web-a"]
    assert senders(store, outcome="handed_off") == ["kiosk:7"]
    assert set(senders(store, outcome="abandoned")) == {"phone:0499887766", "web-xss"}
    assert set(senders(store, outcome="resolved")) == {"web-a", "telegram:123456789"}
    assert senders(store, reason="citizen_request") == ["kiosk:7"]
    assert senders(store, reason="distress") == []
    assert senders(store, text="PASSPORT") == ["web-a"]
    assert senders(store, text="old passport") == ["web-a"]  # the assistant's words too
    assert senders(store, text="100%") == ["kiosk:7"]
    assert senders(store, text="_") == ["kiosk:7"]  # not every JSON key with an underscore
    assert senders(store, text="<script>") == ["web-xss"]
    assert senders(store, text="this text is nowhere") == []


def test_search_by_date_finds_conversations_active_in_the_range(store: ConversationStore) -> None:
    assert set(senders(store, date_from=DAY1, date_to=DAY1)) == SENDERS
    assert senders(store, date_from=DAY2) == ["web-a"]
    assert senders(store, date_to=DAY1 - timedelta(days=1)) == []


def test_reviews_tag_and_mark_conversations_and_filter_them(store: ConversationStore) -> None:
    store.save_review("web-a", ["wrong answer", "passport"], "asked twice", True, "rita")
    store.save_review("kiosk:7", ["passport"], "", False, "rita")
    assert senders(store, tag="wrong answer") == ["web-a"]
    assert set(senders(store, tag="passport")) == {"web-a", "kiosk:7"}
    assert senders(store, reviewed="yes") == ["web-a"]
    assert set(senders(store, reviewed="no")) == SENDERS - {"web-a"}
    assert store.all_tags() == ["passport", "wrong answer"]
    store.save_review("web-a", [], "", False, "rita")
    review = store.reviews_of(["web-a"])["web-a"]
    assert (review.tags, review.reviewed, review.reviewed_by) == ([], False, None)


def test_search_pages_and_summarises(store: ConversationStore) -> None:
    pages = [store.search(ConversationFilter(), page, per_page=2) for page in (1, 2, 3)]
    assert [len(p.items) for p in pages] == [2, 2, 1] and pages[0].pages == 3 and pages[0].total == 5
    assert {i.sender_id for p in pages for i in p.items} == SENDERS
    kiosk = next(i for p in pages for i in p.items if i.sender_id == "kiosk:7")
    assert kiosk.first_text == "100% sure_thing" and kiosk.intents == ["out_of_scope", "request_human"]
    assert kiosk.outcome == "handed_off" and kiosk.handoffs[0].reason == "citizen_request" and kiosk.user_messages == 2
    assert store.sender_of(kiosk.key) == "kiosk:7" and store.key_of("kiosk:7") == kiosk.key
    assert store.sender_of(kiosk.key + 1) is None  # not a conversation's first event


def test_a_transcript_has_every_session_turn_intent_action_and_slot(store: ConversationStore) -> None:
    transcript = store.transcript("web-a")
    assert transcript is not None and len(transcript.sessions) == 2
    first, second = transcript.sessions
    assert first.started_at == datetime.utcfromtimestamp(T1 + 1) and second.started_at == datetime.utcfromtimestamp(T2 + 1)
    hello, documents = first.turns
    greeting = expect.present(hello.citizen, "the citizen's first message")
    assert (greeting.text, greeting.intent, greeting.confidence) == ("hello", "greet", 0.99)
    assert hello.actions == ["utter_greet"] and [r.text for r in hello.replies] == ["Hi, how can I help?"]
    assert documents.actions == ["action_documents"] and documents.slots == [("service", "passport_renewal")]
    assert [expect.present(t.citizen, "a citizen's message").text for t in second.turns] == ["thanks"]
    assert transcript.outcome == "resolved"

    kiosk = expect.present(store.transcript("kiosk:7"), "the kiosk's transcript")
    person = kiosk.sessions[0].turns[-1]
    assert [(r.speaker, r.author, r.text) for r in person.replies] == [
        ("assistant", "", "A person will reply."),
        ("staff", "sam", "Hello, this is Sam."),
    ]
    assert kiosk.outcome == "handed_off" and kiosk.handoffs[0].wait_minutes == pytest.approx(12)
    assert store.transcript("nobody") is None


def test_transcripts_know_the_personal_values_to_mask(store: ConversationStore) -> None:
    transcript = expect.present(store.transcript("telegram:123456789"), "the Telegram transcript")
    assert set(transcript.personal_values) == {"Ana Silva", "0412 345 678"}
    mask = Masker(transcript.personal_values)
    texts = [mask(m.text) for turn in transcript.turns() for m in ([turn.citizen] if turn.citizen else []) + turn.replies]
    assert "Thanks ••••, I have •••• 78." in texts and not any("Ana" in t or "345" in t for t in texts)
    assert store.personal_values(["telegram:123456789", "web-a"]) == {"telegram:123456789": ["Ana Silva", "0412 345 678"]}


def test_the_request_before_a_handoff_is_the_last_message_that_was_not_asking_for_a_person(store: ConversationStore) -> None:
    assert [m.text for m in store.requests_before_handoffs()] == ["100% sure_thing"]
    assert store.requests_before_handoffs(since=datetime.utcfromtimestamp(T2)) == []


def test_misunderstood_messages_are_corrected_and_exported_as_nlu_data(store: ConversationStore) -> None:
    corrections = Corrections(store, threshold=0.5)
    listed = corrections.misunderstood()
    why = {item.message.text: item.why for item in listed.items}
    assert why == {
        "<script>alert(1)</script>": "fallback",
        "zzz": "fallback",
        "my number is 0412 345 678": "low_confidence",
        "100% sure_thing": "handoff",
    }
    number = next(i.message for i in listed.items if i.why == "low_confidence")
    corrections.save(number.event_id, "inform", "rita")
    corrections.save(next(i.message.event_id for i in listed.items if i.why == "handoff"), "out_of_scope", "rita")
    corrections.save(number.event_id, "inform", "sam")  # the same message again: still one correction
    assert {i.message.text for i in corrections.misunderstood().items} == {"<script>alert(1)</script>", "zzz"}
    everything = corrections.misunderstood(include_corrected=True)
    assert {i.message.text: i.correct_intent for i in everything.items}["my number is 0412 345 678"] == "inform"
    with pytest.raises(InvalidFilter):
        corrections.save(number.event_id, "nlu_fallback", "rita")
    with pytest.raises(InvalidFilter):
        corrections.save(10**9, "inform", "rita")

    exported = corrections.training_data()
    assert "0412" not in exported and "my number is •••• 78" in exported
    data = RasaYAMLReader().reads(exported)
    assert {(m.get("intent"), m.get("text")) for m in data.intent_examples} == {
        ("inform", "my number is •••• 78"),
        ("out_of_scope", "100% sure_thing"),
    }
    assert len(Corrections(store, threshold=0.95).misunderstood(include_corrected=True).items) == 5  # 0.9 joins


def test_analytics_for_a_range(store: ConversationStore) -> None:
    figures = analytics(store, DAY1, DAY2)
    assert figures.per_day == {DAY1: {"rest": 2, "telegram": 1, "phone": 1, "kiosk": 1}, DAY2: {"rest": 1}}
    assert figures.outcomes == {"resolved": 2, "handed_off": 1, "abandoned": 2} and figures.conversations == 5
    assert figures.reasons == [("citizen_request", 1)]
    assert figures.median_wait == pytest.approx(12) and figures.wait_by_day == {DAY1: pytest.approx(12)}
    assert figures.top_intents[0] == ("nlu_fallback", 2)
    assert dict(figures.unmet) == {"zzz": 1, "<script>alert(1)</script>": 1, "100% sure_thing": 1}
    assert figures.channel_totals(["rest", "kiosk"]) == [("rest", 3), ("kiosk", 1)]
    later = analytics(store, DAY2, DAY2)
    assert later.outcomes["resolved"] == 1 and later.reasons == [] and later.median_wait is None


# --- rows written by a real Rasa -------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(running_stack: RunningStack) -> Stack:
    return running_stack(fresh=True)  # the tests list every conversation in the tracker store


@pytest.fixture(scope="module")
def real(stack: Stack) -> Iterator[ConversationStore]:
    """Three conversations held over REST: a question, two fallbacks then a request for a person, and a
    booking form given a name and a phone number."""
    backend = ServiceBackend.from_url(stack.database_url)
    stack.say("web-talk", "hello")
    stack.say("web-talk", "what documents do I need to renew my passport")
    for text in ("qwerty uiop", "asdf zxcv", "I want to talk to a person"):
        stack.say("web-help", text)
    start = backend.bookings.next_free("north_centre", date.today() + timedelta(days=2), 1)[0]
    stack.say("telegram:777000111", booking_request("passport renewal", "north service centre", start.date(), start.time()))
    stack.say("telegram:777000111", "Ana Silva")
    stack.say("telegram:777000111", "0412 345 678")
    stack.say("telegram:777000111", "stop")
    tracker = tracker_engine(url=stack.tracker_database_url)
    yield ConversationStore(tracker, backend.engine)
    tracker.dispose()
    backend.engine.dispose()


def real_transcript(store: ConversationStore, sender: str) -> Transcript:
    transcript = store.transcript(sender)
    assert transcript is not None
    return transcript


@pytest.mark.stack
def test_real_conversations_are_listed_and_filtered(real: ConversationStore) -> None:
    assert set(senders(real)) == {"web-talk", "web-help", "telegram:777000111"}
    assert senders(real, channel="telegram") == ["telegram:777000111"]
    reason = real_transcript(real, "web-help").handoffs[0].reason  # the assistant's handoff action chose it
    assert senders(real, outcome="handed_off") == ["web-help"] == senders(real, reason=reason)
    assert senders(real, intent="request_human") == ["web-help"]
    assert senders(real, text="Renew my passport") == ["web-talk"]
    assert senders(real, date_from=date.today() + timedelta(days=1)) == []


@pytest.mark.stack
def test_a_real_transcript_shows_intents_actions_slots_and_the_handoff(real: ConversationStore) -> None:
    transcript = real_transcript(real, "web-help")
    turns = [t for t in transcript.turns() if t.citizen]
    assert [t.citizen.intent for t in turns if t.citizen] == ["nlu_fallback", "nlu_fallback", "request_human"]
    assert "action_handle_low_confidence" in turns[0].actions and all(t.actions for t in turns)
    assert turns[0].replies and all(r.speaker == "assistant" for t in turns for r in t.replies)
    assert transcript.outcome == "handed_off" and len(transcript.handoffs) == 1
    assert transcript.handoffs[0].reason in ("citizen_request", "low_confidence")
    assert len(transcript.sessions) == 1

    booking = real_transcript(real, "telegram:777000111")
    assert "Ana Silva" in booking.personal_values
    slots = dict(slot for turn in booking.turns() for slot in turn.slots)
    assert "citizen_name" in slots
    mask = Masker(booking.personal_values)
    shown = " ".join(mask(m.text) for turn in booking.turns() for m in ([turn.citizen] if turn.citizen else []) + turn.replies)
    assert "Ana" not in shown and "345 678" not in shown and "••••" in shown


@pytest.mark.stack
def test_real_misunderstood_messages_and_analytics(real: ConversationStore) -> None:
    listed = {i.message.text: i.why for i in Corrections(real, threshold=0.5).misunderstood().items}
    assert listed.get("qwerty uiop") == "fallback" and listed.get("asdf zxcv") == "fallback"
    assert [m.text for m in real.requests_before_handoffs()] == ["asdf zxcv"]
    today = datetime.utcnow().date()
    figures = analytics(real, today - timedelta(days=1), today)
    assert figures.outcomes["handed_off"] == 1 and figures.conversations == 3
    assert figures.reasons == [(real_transcript(real, "web-help").handoffs[0].reason, 1)]
    assert dict(figures.unmet).get("qwerty uiop") == 1 and dict(figures.unmet).get("asdf zxcv") == 1
    assert dict(figures.top_intents).get("nlu_fallback") == 2
