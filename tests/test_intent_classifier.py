"""TextIntentClassifier: its own TF-IDF computation matches scikit-learn's, and a stored model answers the same."""

from __future__ import annotations

from typing import List

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message
from scipy.sparse import hstack

from onewindow.rasa_plugins.intent_classifier import TextIntentClassifier
from onewindow.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow  # trains the classifier on the whole NLU data

HELD_OUT = load_data(str(PROJECT_ROOT / "tests" / "nlu"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    storage = LocalModelStorage(tmp_path_factory.mktemp("model"))
    resource = Resource("intent_classifier")
    context = ExecutionContext(GraphSchema({}), "test")
    component = TextIntentClassifier.create({"C": 100}, storage, resource, context)
    component.train(load_data(str(PROJECT_ROOT / "nlu")))
    return component, TextIntentClassifier.load({"C": 100}, storage, resource, context)


def texts() -> List[str]:
    return [m.get(TEXT) for m in HELD_OUT.intent_examples][:300] + ["", "🙂🙂", "qwerty uiop", "PASPORT renewl how much ??"]


def test_features_are_exactly_what_the_vectorizers_transform_gives(trained: tuple) -> None:
    component, _ = trained
    ours = component.features(texts())
    theirs = hstack([v.transform(texts()) for v in component.vectorizers]).tocsr()
    assert ours.shape == theirs.shape and ours.nnz == theirs.nnz > 1000
    assert (ours != theirs).nnz == 0


def test_a_stored_model_gives_the_same_probabilities_and_knows_the_held_out_intents(trained: tuple) -> None:
    component, loaded = trained
    assert np.array_equal(loaded.probabilities(texts()), component.probabilities(texts()))
    messages = [Message({TEXT: m.get(TEXT)}) for m in HELD_OUT.intent_examples]
    predicted = [m.get(INTENT)["name"] for m in loaded.process(messages)]
    right = sum(p == m.get(INTENT) for p, m in zip(predicted, HELD_OUT.intent_examples))
    assert right / len(predicted) > 0.9
