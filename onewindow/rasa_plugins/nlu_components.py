"""Custom Rasa NLU components.

LongestEntityWins: the RegexEntityExtractor matches every lookup table on its own, so
"west service centre" also yields the district "west". Citizens mean the longest phrase.
UnknownWordsFallback, FuzzyCatalogueEntities, MisspeltWeekdays: see their docstrings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

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

from onewindow.infra.metrics import INTENTS
from onewindow.text.dates import WEEKDAY_NAMES, weekday_of
from onewindow.text.typos import misspelling_of


def longest_entities(entities: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Drop every entity whose span lies inside a longer entity's span."""
    ranked = sorted(entities, key=lambda e: (e["start"] - e["end"], e["start"]))
    kept: List[Dict[str, Any]] = []
    for entity in ranked:
        if not any(k["start"] <= entity["start"] and entity["end"] <= k["end"] for k in kept):
            kept.append(entity)
    return sorted(kept, key=lambda e: e["start"])


class EntityRewriter(GraphComponent):
    """A component with no state that rewrites each message's entities (`rewritten`; None leaves them as they are)."""

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Optional[Any],
    ) -> "EntityRewriter":
        return cls()

    def rewritten(self, text: str, entities: List[Dict[str, Any]]) -> Optional[List[Dict[str, Any]]]:
        raise NotImplementedError

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            entities = self.rewritten(message.get(TEXT) or "", message.get(ENTITIES) or [])
            if entities is not None:
                message.set(ENTITIES, entities, add_to_output=True)
        return messages


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class LongestEntityWins(EntityRewriter):
    def rewritten(self, text: str, entities: List[Dict[str, Any]]) -> Optional[List[Dict[str, Any]]]:
        return longest_entities(entities) if len(entities) > 1 else None


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

    def __init__(
        self, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource, vocabulary: Optional[Set[str]] = None
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._storage = model_storage
        self._resource = resource
        self.vocabulary = vocabulary or set()

    @classmethod
    def create(
        cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext
    ) -> "UnknownWordsFallback":
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
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "UnknownWordsFallback":
        with model_storage.read_from(resource) as folder:
            vocabulary = set(json.loads((folder / cls.VOCABULARY_FILE).read_text()))
        return cls(config, model_storage, resource, vocabulary)

    def process(self, messages: List[Message]) -> List[Message]:
        """Read as nlu_fallback what is mostly unknown words; count every message's final intent (the last NLU step)."""
        for message in messages:
            self._mark_unknown(message)
            INTENTS.labels(intent=(message.get(INTENT) or {}).get(INTENT_NAME_KEY) or "none").inc()
        return messages

    def _mark_unknown(self, message: Message) -> None:
        words = words_of(message.get(TEXT) or "")
        if message.get(ENTITIES) or not words or not self.vocabulary:
            return
        unknown = sum(1 for word in words if word not in self.vocabulary)
        if unknown / len(words) >= self._config["unknown_share"]:
            fallback = {INTENT_NAME_KEY: "nlu_fallback", PREDICTED_CONFIDENCE_KEY: 1 - unknown / len(words)}
            message.set(INTENT, fallback, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [fallback, *(message.get(INTENT_RANKING_KEY) or [])], add_to_output=True)


def tolerant_match(component: Any) -> Dict[str, Any]:
    """Who found a tolerant match: the lookup and regex extraction, made tolerant by component.

    Named as RegexEntityExtractor's (with the component among its processors) so that
    `rasa test nlu` scores the lookup and regex extraction as a whole, exact or tolerant.
    """
    name = component.__name__ if isinstance(component, type) else type(component).__name__
    return {"extractor": "RegexEntityExtractor", "processors": [name]}


TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# Words citizens leave out ("has baby", "renew passport"): an alias still matches without them.
OPTIONAL_WORDS = frozenset({"a", "an", "the", "my", "our", "your", "to", "of", "for", "is", "are", "am", "was"})
SUFFIXES = ("ing", "ed", "es", "s", "e")


def stem(word: str) -> str:
    """The word without one inflection ending: retiring, retired, retires -> retir; moving, move -> mov."""
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def word_cost(said: str, known: str, vocabulary: Set[str], inflected: bool) -> Optional[int]:
    """0 for the same word (or inflection if inflected), the typo count for a misspelling, None otherwise.

    A word the assistant saw in training is a real word, never a misspelling of another.
    """
    if said == known or (inflected and len(stem(known)) >= 3 and stem(said) == stem(known)):
        return 0
    return misspelling_of(said, known, vocabulary)


@dataclass(frozen=True)
class Candidate:
    entity: str
    alias: str
    meaning: str
    start: int
    end: int
    cost: int


WordCost = Callable[[str, str, bool], Optional[int]]


def match_alias(
    tokens: List[Tuple[str, int, int]], first: int, alias: Sequence[str], cost_of: WordCost
) -> Optional[Tuple[int, int]]:
    """(index after the last token, total typos) if the alias is said from tokens[first], else None.

    Inflections count only in aliases of several words ("house" is not "housing"), and little
    words may be left out or added only inside an alias, one at most ("has baby", "start the
    school", but "office" is not "to the office", "apply for the pension" is not "apply for a pension").
    """
    position, cost, skipped = first, 0, False
    several = len(alias) > 1
    for index, known in enumerate(alias):
        said = tokens[position][0] if position < len(tokens) else None
        if index > 0 and not skipped and said in OPTIONAL_WORDS and known not in OPTIONAL_WORDS and position + 1 < len(tokens):
            position, skipped = position + 1, True
            said = tokens[position][0]
        found = cost_of(said, known, several) if said is not None else None
        if found is not None:
            position, cost = position + 1, cost + found
        elif not skipped and 0 < index < len(alias) - 1 and known in OPTIONAL_WORDS:
            skipped = True
        else:
            return None
    return position, cost


@dataclass(frozen=True)
class CatalogueName:
    """An alias of a lookup table, with its words and what it means (its synonym's value)."""

    entity: str
    alias: str
    meaning: str
    words: Tuple[str, ...]


def catalogue_names(tables: Dict[str, List[str]], synonyms: Dict[str, str]) -> List[CatalogueName]:
    """The aliases worth matching tolerantly (not made of little words only), split into words once."""
    names = []
    for entity, aliases in tables.items():
        for alias in aliases:
            words = tuple(TOKEN.findall(alias.lower()))
            if words and not all(w in OPTIONAL_WORDS for w in words):
                names.append(CatalogueName(entity, alias, synonyms.get(alias.lower(), alias.lower()), words))
    return names


def fuzzy_candidates(text: str, names: Sequence[CatalogueName], vocabulary: Set[str]) -> List[Candidate]:
    """Every catalogue alias said with inflections, missing little words or typos."""
    tokens = [(m.group(), m.start(), m.end()) for m in TOKEN.finditer(text.lower())]
    costs: Dict[Tuple[str, str, bool], Optional[int]] = {}  # many aliases share words: compare each pair once

    def cost_of(said: str, known: str, inflected: bool) -> Optional[int]:
        key = (said, known, inflected)
        if key not in costs:
            costs[key] = word_cost(said, known, vocabulary, inflected)
        return costs[key]

    found = []
    for name in names:
        for first in range(len(tokens)):
            matched = match_alias(tokens, first, name.words, cost_of)
            if matched:
                end, cost = matched
                found.append(Candidate(name.entity, name.alias, name.meaning, tokens[first][1], tokens[end - 1][2], cost))
    return found


def best_unique(candidates: List[Candidate], found: List[Tuple[int, int]]) -> List[Candidate]:
    """Longest, then fewest typos first; a span two different meanings fit equally well is dropped.

    A candidate overlapping an entity already found is kept only if it is longer and contains it
    ("birth certifcate" over "birth"); LongestEntityWins then drops the shorter one.
    """
    chosen: List[Candidate] = []
    taken: List[Tuple[int, int]] = []
    ranked = sorted(candidates, key=lambda c: (c.start - c.end, c.cost, c.start))
    for candidate in ranked:
        span = (candidate.start, candidate.end)
        if any(s < candidate.end and candidate.start < e for s, e in taken) or any(
            s < candidate.end and candidate.start < e and not (candidate.start <= s and e <= candidate.end and (s, e) != span)
            for s, e in found
        ):
            continue
        rivals = {(c.entity, c.meaning) for c in ranked if (c.start, c.end) == span and c.cost == candidate.cost}
        taken.append(span)
        if len(rivals) == 1:
            chosen.append(candidate)
    return chosen


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=True)
class FuzzyCatalogueEntities(GraphComponent):
    """Find catalogue names said with inflections, missing little words or typos.

    The lookup tables match aliases exactly ("pasport renewel", "gettin maried" are missed).
    This finds an alias whose long words are misspelt (one typo in 5-7 letters, two from 8,
    never a word seen in training), inflected (retire / retiring) or without a little word
    ("has baby"), and gives the alias as the value so that EntitySynonymMapper maps it to
    the catalogue id as for an exact match. Exact matches already found are left alone.
    """

    FILE = "catalogue_names.json"

    def __init__(
        self,
        model_storage: ModelStorage,
        resource: Resource,
        tables: Optional[Dict[str, List[str]]] = None,
        synonyms: Optional[Dict[str, str]] = None,
        vocabulary: Optional[Set[str]] = None,
    ) -> None:
        self._storage = model_storage
        self._resource = resource
        self.tables = tables or {}
        self.synonyms = synonyms or {}
        self.vocabulary = vocabulary or set()
        self.names = catalogue_names(self.tables, self.synonyms)

    @classmethod
    def create(
        cls, config: Dict[str, Any], model_storage: ModelStorage, resource: Resource, execution_context: ExecutionContext
    ) -> "FuzzyCatalogueEntities":
        return cls(model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        self.tables = {t["name"]: list(t.get("elements", [])) for t in training_data.lookup_tables}
        self.synonyms = {k.lower(): v for k, v in training_data.entity_synonyms.items()}
        for example in training_data.training_examples:
            self.vocabulary.update(TOKEN.findall((example.get(TEXT) or "").lower()))
        for aliases in self.tables.values():
            for alias in aliases:
                self.vocabulary.update(TOKEN.findall(alias.lower()))
        self.names = catalogue_names(self.tables, self.synonyms)
        with self._storage.write_to(self._resource) as folder:
            saved = {"tables": self.tables, "synonyms": self.synonyms, "vocabulary": sorted(self.vocabulary)}
            (folder / self.FILE).write_text(json.dumps(saved))
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "FuzzyCatalogueEntities":
        with model_storage.read_from(resource) as folder:
            saved = json.loads((folder / cls.FILE).read_text())
        return cls(model_storage, resource, saved["tables"], saved["synonyms"], set(saved["vocabulary"]))

    def entities_for(self, text: str, entities: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """The entities already found plus the catalogue names found by tolerant matching."""
        spans = [(e["start"], e["end"]) for e in entities]
        found = best_unique(fuzzy_candidates(text, self.names, self.vocabulary), spans)
        extra = [{"entity": c.entity, "start": c.start, "end": c.end, "value": c.alias, **tolerant_match(self)} for c in found]
        return sorted([*entities, *extra], key=lambda e: e["start"])

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            entities = message.get(ENTITIES) or []
            message.set(ENTITIES, self.entities_for(message.get(TEXT) or "", entities), add_to_output=True)
        return messages


DAY_WORD = re.compile(r"\b(?:(next|this)\s+)?([a-z]{5,})\b")


def misspelt_weekdays(text: str, entities: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Date entities for misspelt day names ("tusday", "next wendesday"), as the day's right name."""
    found = []
    for match in DAY_WORD.finditer(text.lower()):
        word = match.group(2)
        day = weekday_of(word)
        overlaps = any(e["start"] < match.end() and match.start() < e["end"] for e in entities)
        if day is None or word in WEEKDAY_NAMES or overlaps:
            continue
        value = " ".join(filter(None, [match.group(1), WEEKDAY_NAMES[day]]))
        found.append(
            {"entity": "date", "start": match.start(), "end": match.end(), "value": value, **tolerant_match(MisspeltWeekdays)}
        )
    return found


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class MisspeltWeekdays(EntityRewriter):
    """The date regex knows day names spelt right only; this adds the misspelt ones."""

    def rewritten(self, text: str, entities: List[Dict[str, Any]]) -> Optional[List[Dict[str, Any]]]:
        extra = misspelt_weekdays(text, entities)
        return sorted([*entities, *extra], key=lambda e: e["start"]) if extra else None
