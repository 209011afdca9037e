"""Custom Rasa NLU components.

LongestEntityWins: the RegexEntityExtractor matches every lookup table on its own, so
"west service centre" also yields the district "west". Citizens mean the longest phrase.
UnknownWordsFallback: see its docstring.
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional, Set

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import (
    ENTITIES,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData


def longest_entities(entities: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Drop every entity whose span lies inside a longer entity's span."""
    ranked = sorted(entities, key=lambda e: (e["start"] - e["end"], e["start"]))
    kept: List[Dict[str, Any]] = []
    for entity in ranked:
        if not any(k["start"] <= entity["start"] and entity["end"] <= k["end"] for k in kept):
            kept.append(entity)
    return sorted(kept, key=lambda e: e["start"])


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class LongestEntityWins(GraphComponent):
    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Optional[Any],
    ) -> "LongestEntityWins":
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            entities = message.get(ENTITIES) or []
            if len(entities) > 1:
                message.set(ENTITIES, longest_entities(entities), add_to_output=True)
        return messages


WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def words_of(text: str) -> List[str]:
    """Alphabetic words of two letters or more, lowercased (digits and codes are not words)."""
    return [w for w in WORD.findall(text.lower()) if len(w) > 1]


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class UnknownWordsFallback(GraphComponent):
    """Predict nlu_fallback when almost no word of a message was ever seen in training.

    A classifier always spreads its confidence over the intents it knows, so gibberish
    ("qwerty uiop") can still get a confident intent. Words the assistant has never seen
    are a plainer signal that it does not know what the citizen means.
    """

    VOCABULARY_FILE = "vocabulary.json"

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {"unknown_share": 0.75}

    def __init__(self, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource, vocabulary: Optional[Set[str]] = None) -> None:
        self._config = {**self.get_default_config(), **config}
        self._storage = model_storage
        self._resource = resource
        self.vocabulary = vocabulary or set()

    @classmethod
    def create(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext) -> "UnknownWordsFallback":
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        for example in training_data.training_examples:
            self.vocabulary.update(words_of(example.get(TEXT) or ""))
        for table in training_data.lookup_tables:
            for element in table.get("elements", []):
                self.vocabulary.update(words_of(element))
        with self._storage.write_to(self._resource) as folder:
            (folder / self.VOCABULARY_FILE).write_text(json.dumps(sorted(self.vocabulary)))
        return self._resource

    @classmethod
    def load(cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext, **kwargs: Any) -> "UnknownWordsFallback":
        with model_storage.read_from(resource) as folder:
            vocabulary = set(json.loads((folder / cls.VOCABULARY_FILE).read_text()))
        return cls(config, model_storage, resource, vocabulary)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            words = words_of(message.get(TEXT) or "")
            if message.get(ENTITIES) or not words or not self.vocabulary:
                continue
            unknown = sum(1 for word in words if word not in self.vocabulary)
            if unknown / len(words) >= self._config["unknown_share"]:
                fallback = {INTENT_NAME_KEY: "nlu_fallback", PREDICTED_CONFIDENCE_KEY: 1 - unknown / len(words)}
                message.set(INTENT, fallback, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [fallback, *(message.get(INTENT_RANKING_KEY) or [])], add_to_output=True)
        return messages
