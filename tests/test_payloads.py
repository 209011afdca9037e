"""Which "/intent{...}" payloads a message may carry (onewindow/channels/payloads.py), for any text."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List

from hypothesis import given, settings
from hypothesis import strategies as st

from onewindow.channels.payloads import CHANNEL_COMMANDS, citizen_text, is_payload, offered_payloads
from onewindow.channels.rest import OfferedPayloads

BUTTONS: List[Dict[str, Any]] = [
    {"title": "Passport renewal", "payload": '/inform{"service": "passport_renewal"}'},
    {"title": "Yes", "payload": "/affirm"},
]
SESSION: List[Dict[str, Any]] = [
    {"event": "bot", "text": "Old", "data": {"buttons": [{"title": "Old", "payload": "/old"}]}},
    {"event": "session_started"},
    {"event": "bot", "text": "Which service?", "data": {"buttons": BUTTONS}},
    {"event": "bot", "text": "No buttons", "data": {}},
    {"event": "user", "text": "/affirm"},
]


def test_offered_payloads_are_the_buttons_of_the_current_session() -> None:
    assert offered_payloads(SESSION) == {button["payload"] for button in BUTTONS}


@given(st.sampled_from(sorted(offered_payloads(SESSION)) + sorted(CHANNEL_COMMANDS)))
def test_an_offered_payload_or_a_channel_command_is_kept(payload: str) -> None:
    assert citizen_text(payload, offered_payloads(SESSION)) == payload


@settings(max_examples=300)
@given(st.text())
def test_anything_else_is_never_read_as_a_payload(text: str) -> None:
    """Typed text, "/restart", "/session_start" or "/inform{...}" by hand: what reaches Rasa never starts with "/"."""
    offered = offered_payloads(SESSION)
    read = citizen_text(text, offered)
    if text in offered or text.strip() in CHANNEL_COMMANDS:
        assert read == text
    else:
        assert not is_payload(read)
        assert read.strip("/ \t\n") in text, "the words themselves are kept"


@given(st.text(min_size=1).map(lambda words: "/" + words))
def test_a_typed_command_loses_only_its_slashes(text: str) -> None:
    read = citizen_text(text, set())
    assert not read.lstrip().startswith("/") and (text.strip() in CHANNEL_COMMANDS or len(read) < len(text))


def test_a_button_this_server_just_sent_is_known_without_reading_the_conversation() -> None:
    offered = OfferedPayloads(conversations=2)
    offered.remember("a", {"/affirm", "/deny"})
    offered.remember("a", {'/inform{"office": "north_centre"}'})
    assert asyncio.run(offered.of("a", "/deny")) == {"/affirm", "/deny", '/inform{"office": "north_centre"}'}


def test_only_the_most_recent_conversations_are_remembered() -> None:
    offered = OfferedPayloads(conversations=2)
    for sender in ("a", "b", "c"):
        offered.remember(sender, {f"/choice_{sender}"})
    offered.remember("b", {"/more"})
    assert list(offered._offered) == ["c", "b"]  # "a" is read from the tracker store again when it presses
