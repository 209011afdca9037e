"""No message can break a conversation: generated messages over REST to the real stack, from generated states.

Every turn, whatever the text and wherever the conversation is (inside any form, after a
misunderstanding, waiting for a person, in a new session, with the action server down or slow):
- at least one reply and at most MAX_MESSAGES_PER_TURN, never the same message twice;
- the turn ends by listening, in few actions, and the Rasa log shows no circuit breaker and no
  turn the guard had to stop (tests/conversation_fuzz.py);
- a message the assistant did not understand leaves the conversation where it was: the next
  ordinary message gets exactly the answer it gets without it (the second miss in a row hands over
  to a person instead, by design);
- afterwards, "stop" then "hello" give the greeting of a fresh conversation.
ONEWINDOW_FUZZ_EXAMPLES sets the number of generated cases (80 in `make test`); the cases are the same in every run
unless ONEWINDOW_FUZZ_RANDOM is set; `make bench-fuzz` (bench/conversation_fuzz.py) runs thousands with a new seed.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.stack import Stack
from tests.conversation_fuzz import (
    STATES,
    Conversations,
    Replies,
    State,
    citizen_messages,
    last_turn_problem,
    misunderstood,
    nlu_phrases,
    other_requests,
    shown,
)
from tests.tracker_rows import age_conversation

pytestmark = pytest.mark.stack
EXAMPLES = int(os.environ.get("ONEWINDOW_FUZZ_EXAMPLES", "80"))
PHRASES = nlu_phrases()
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="ONEWINDOW_FUZZ_RANDOM" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


@pytest.fixture(scope="module")
def conversations(stack: Stack) -> Conversations:
    return Conversations(stack)


@pytest.fixture(scope="module")
def greeting(conversations: Conversations) -> List[object]:
    return shown(conversations.say(conversations.new_sender(), "hello", "a fresh greeting"))


@pytest.fixture(scope="module")
def control(conversations: Conversations) -> Dict[str, List[object]]:
    """What each state's next ordinary message gets when nothing odd came before it."""
    answers = {}
    for state in STATES:
        sender = conversations.enter(state, age_conversation)
        answers[state.name] = shown(conversations.say(sender, state.then, f"control of {state.name!r}"))
    return answers


def recovers(conversations: Conversations, sender: str, greeting: List[object]) -> None:
    """After anything, "stop" then "hello" answer as in a fresh conversation."""
    conversations.say(sender, "stop", "stop")
    assert shown(conversations.say(sender, "hello", "hello after stop")) == greeting


def check_turn(conversations: Conversations, sender: str, text: str, state: State) -> Replies:
    replies = conversations.say(sender, text, f"in {state.name!r}")
    problem = last_turn_problem(conversations.stack.tracker(sender))
    assert problem is None, f"in {state.name!r}, after {text!r}: {problem}"
    return replies


@FUZZ
@given(state=st.sampled_from(STATES), text=citizen_messages(PHRASES))
def test_no_message_breaks_a_conversation(
    conversations: Conversations, control: Dict[str, List[object]], greeting: List[object], state: State, text: str
) -> None:
    sender = conversations.enter(state, age_conversation)
    replies = check_turn(conversations, sender, text, state)
    after = shown(conversations.say(sender, state.then, f"the next message in {state.name!r}"))
    if misunderstood(replies):
        assert state.name != "after one misunderstanding", f"the second miss in a row must hand over, got {replies}"
        assert after == control[state.name], f"{text!r} in {state.name!r} changed the conversation"
    recovers(conversations, sender, greeting)
    assert conversations.broken_turns_logged() == [], f"after {text!r} in {state.name!r}"


@FUZZ
@given(state=st.sampled_from([state for state in STATES if state.active_loop]), question=st.sampled_from(other_requests()))
def test_a_question_in_the_middle_of_a_task_gets_its_answer(conversations: Conversations, state: State, question: str) -> None:
    """Moving on from a form's question: the new question gets the answer it gets in a fresh conversation."""
    fresh = conversations.say(conversations.new_sender(), question, "a fresh question")
    sender = conversations.enter(state, age_conversation)
    replies = check_turn(conversations, sender, question, state)
    first = fresh[0].get("text")
    assert first in [reply.get("text") for reply in replies], f"{question!r} in {state.name!r}: {replies}"
    assert conversations.broken_turns_logged() == []


@settings(max_examples=2, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(citizen_messages(PHRASES), min_size=len(STATES), max_size=len(STATES)))
def test_every_turn_is_answered_while_the_action_server_is_down(
    stack: Stack, conversations: Conversations, greeting: List[object], texts: List[str]
) -> None:
    """An apology when a part is down, never `[]`; once it is back, the conversations go on."""
    senders: List[Tuple[State, str]] = [(state, conversations.enter(state, age_conversation)) for state in STATES]
    stack.halt("action server")
    try:
        for (state, sender), text in zip(senders, texts):
            check_turn(conversations, sender, text, state)
            check_turn(conversations, sender, "hello", state)
    finally:
        stack.resume("action server")
    # an action that cannot run leaves no events, so the same action may be predicted again:
    # the turn guard ends such a turn (logged), the circuit breaker never trips
    assert not [line for line in conversations.broken_turns_logged() if "Circuit breaker" in line]
    for _, sender in senders:
        recovers(conversations, sender, greeting)
    assert conversations.broken_turns_logged() == []


def test_a_slow_action_server_delays_the_answer_but_does_not_change_it(
    stack: Stack, conversations: Conversations, control: Dict[str, List[object]]
) -> None:
    """The action server frozen for 3 s in the middle of a booking: the answer comes when it wakes, once."""
    state = next(state for state in STATES if state.name == "booking, asked the service")
    sender = conversations.enter(state, age_conversation)
    action_server = stack.processes["action server"]
    os.kill(action_server.pid, signal.SIGSTOP)
    thaw = threading.Timer(3.0, os.kill, (action_server.pid, signal.SIGCONT))
    thaw.start()
    started = time.monotonic()
    try:
        replies = check_turn(conversations, sender, state.then, state)
    finally:
        thaw.join()
    assert time.monotonic() - started >= 2.5, "the turn waited for the action server"
    assert shown(replies) == control[state.name]
    assert conversations.broken_turns_logged() == []
