"""TurnGuardPolicy: a turn ends by listening before Rasa's circuit breaker, and never runs an action twice."""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

from hypothesis import given
from hypothesis import strategies as st
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from onewindow.rasa_plugins.turn_guard_policy import MAX_ACTIONS_PER_TURN, TurnGuardPolicy, actions_this_turn, must_listen

DOMAIN = Domain.load("domain.yml")
ACTIONS = st.sampled_from(
    ["action_handle_low_confidence", "utter_greet", "appointment_form", "action_stop", "action_book_appointment"]
)


def tracker_with(turn: List[str], earlier: Sequence[str] = ()) -> DialogueStateTracker:
    """A conversation whose earlier turn ran `earlier` and whose current turn (after "hello") has run `turn`."""
    events: List[Event] = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted(ACTION_LISTEN_NAME)]
    events += [
        UserUttered("hi", {"name": "greet"}),
        *(ActionExecuted(name) for name in earlier),
        ActionExecuted(ACTION_LISTEN_NAME),
    ]
    events += [UserUttered("hello", {"name": "greet"})]
    for name in turn:
        events += [ActionExecuted(name), BotUttered("...")]
    return DialogueStateTracker.from_events("guarded", events, DOMAIN.slots)


def guard(tmp_path: Path) -> TurnGuardPolicy:
    return TurnGuardPolicy(
        TurnGuardPolicy.get_default_config(),
        LocalModelStorage(tmp_path),
        Resource("guard"),
        ExecutionContext(GraphSchema({}), "test"),
    )


@given(turn=st.lists(ACTIONS, max_size=12), earlier=st.lists(ACTIONS, max_size=12))
def test_only_the_current_turn_counts(turn: List[str], earlier: List[str]) -> None:
    assert actions_this_turn(tracker_with(turn, earlier)) == turn


@given(turn=st.lists(ACTIONS, max_size=12))
def test_a_turn_must_end_when_it_repeats_an_action_or_is_long(turn: List[str]) -> None:
    repeated = bool(turn) and turn[-1] in turn[:-1]
    assert must_listen(turn) == (repeated or len(turn) >= MAX_ACTIONS_PER_TURN)


def test_the_guard_predicts_listening_with_full_confidence_after_a_repeat(tmp_path: Path) -> None:
    prediction = guard(tmp_path).predict_action_probabilities(tracker_with(["action_handle_low_confidence"] * 2), DOMAIN)
    assert prediction.probabilities[DOMAIN.index_for_action(ACTION_LISTEN_NAME)] == 1.0
    assert prediction.is_no_user_prediction and prediction.policy_priority == 8


def test_the_guard_leaves_an_ordinary_turn_to_the_other_policies(tmp_path: Path) -> None:
    prediction = guard(tmp_path).predict_action_probabilities(tracker_with(["appointment_form"]), DOMAIN)
    assert max(prediction.probabilities) == 0.0
