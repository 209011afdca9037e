"""The dask-free graph runner (onewindow/rasa_plugins/patches/graph_runner.py) gives exactly what Rasa's dask
runner gives, on the trained model, and is the runner Rasa loads the model with once installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pytest
import rasa.core.processor
import rasa.engine.runner.dask
from rasa.core.channels.channel import UserMessage
from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
from rasa.engine.exceptions import GraphRunError
from rasa.engine.loader import load_predict_graph_runner
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from onewindow.rasa_plugins.patches import graph_runner
from onewindow.rasa_plugins.patches.graph_runner import SequentialGraphRunner

MESSAGES = [
    "hello",
    "I just had a baby",
    "how much is a passport renewal",
    "I want to book an appointment",
    "is the central service centre open on saturday",
    "qwerty uiop",
    "/affirm",
    "I need help, my neighbour collapsed",
]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory, trained_model: Path) -> Dict[str, Any]:
    return {
        runner.__name__: load_predict_graph_runner(
            tmp_path_factory.mktemp(runner.__name__), trained_model, LocalModelStorage, runner
        )
        for runner in (DaskGraphRunner, SequentialGraphRunner)
    }


def run_conversation(metadata: Any, runner: Any) -> List[Any]:
    """Parse each message, add it to a tracker and predict the next action, as Rasa's processor does."""
    tracker = DialogueStateTracker.from_events(
        "graph-test", [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")]
    )
    seen: List[Any] = []
    for text in MESSAGES:
        parsed = runner.run(
            inputs={PLACEHOLDER_MESSAGE: [UserMessage(text)], PLACEHOLDER_TRACKER: tracker}, targets=[metadata.nlu_target]
        )
        data = parsed[metadata.nlu_target][0].as_dict(only_output_properties=True)
        tracker.update(UserUttered(text, data.get("intent"), data.get("entities"), data))
        prediction = runner.run(inputs={PLACEHOLDER_TRACKER: tracker}, targets=[metadata.core_target])[metadata.core_target]
        action = metadata.domain.action_names_or_texts[prediction.max_confidence_index]
        seen.append(
            (
                data.get("intent"),
                data.get("entities"),
                action,
                prediction.policy_name,
                prediction.probabilities,
                prediction.events,
            )
        )
        tracker.update(ActionExecuted(action))
        tracker.update(ActionExecuted("action_listen"))
    return seen


def test_the_same_parses_and_predictions_as_the_dask_runner(loaded: Dict[str, Any]) -> None:
    by_dask = run_conversation(*loaded["DaskGraphRunner"])
    by_sequence = run_conversation(*loaded["SequentialGraphRunner"])
    assert by_sequence == by_dask
    assert {intent["name"] for intent, *_ in by_dask} >= {"greet", "life_event", "ask_fee", "book_appointment"}, (
        "a real model answered"
    )


def test_each_node_runs_after_what_it_needs_and_only_what_the_targets_need(loaded: Dict[str, Any]) -> None:
    metadata, runner = loaded["SequentialGraphRunner"]
    plan = runner._plan((metadata.nlu_target,))
    order = [name for name, _ in plan]
    assert order[-1] == metadata.nlu_target and len(order) == len(set(order))
    for position, (name, needs) in enumerate(plan):
        assert all(need not in metadata.predict_schema.nodes or need in order[:position] for need in needs), name
    assert not any("policy" in name.lower() for name in order), "NLU does not run the policies"
    with pytest.raises(GraphRunError):
        runner.run(inputs={PLACEHOLDER_TRACKER: order[0]}, targets=[metadata.nlu_target])


def test_the_installed_patch_is_the_runner_rasa_loads_the_model_with(
    monkeypatch: pytest.MonkeyPatch, trained_model: Path
) -> None:
    """patches/graph_runner.py replaces the name rasa.core.processor loads a model with, and only that."""
    monkeypatch.setattr(rasa.core.processor, "DaskGraphRunner", DaskGraphRunner)  # restored after the test
    graph_runner.install()
    _, metadata, runner = rasa.core.processor.MessageProcessor._load_model(trained_model)
    assert type(runner) is SequentialGraphRunner
    assert rasa.engine.runner.dask.DaskGraphRunner is DaskGraphRunner, "training still runs with dask"
    parsed = runner.run(inputs={PLACEHOLDER_MESSAGE: [UserMessage("hello")]}, targets=[metadata.nlu_target])
    assert parsed[metadata.nlu_target][0].get("intent")["name"] == "greet"
