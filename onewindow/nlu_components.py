"""Custom Rasa NLU component: when extracted entities overlap, the longest one wins.

The RegexEntityExtractor matches every lookup table on its own, so "west service centre"
also yields the district "west". Citizens mean the longest phrase.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES
from rasa.shared.nlu.training_data.message import Message


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
