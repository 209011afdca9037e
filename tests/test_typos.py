"""Citizens who cannot type well: catalogue names and day names with typos, inflections or
left-out little words are understood as the right spelling is, on the trained model, and the
tolerance adds no entity to a held-out sentence that was not annotated with it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rasa.core.agent import Agent
from rasa.shared.nlu.training_data.loading import load_data

from onewindow.rasa_plugins.nlu_components import TOKEN
from onewindow.settings import PROJECT_ROOT
from onewindow.text.dates import WEEKDAY_NAMES, parse_date
from onewindow.text.typos import allowed_typos, typo_distance
from tests.test_dates import WEDNESDAY, one_typo

TRAINING = load_data(str(PROJECT_ROOT / "nlu"))
VOCABULARY = {w for m in TRAINING.training_examples for w in TOKEN.findall((m.get("text") or "").lower())}
HELD_OUT = load_data(str(PROJECT_ROOT / "tests" / "nlu" / "test_nlu.yml"))
KINDS = st.sampled_from(["deletion", "insertion", "substitution", "swap"])
LETTERS = st.sampled_from("abcdefghijklmnopqrstuvwxyz")
FRAMES = st.sampled_from(["{}", "i need help with {} please", "{} what do i do", "how i get {}"])


def catalogue_aliases() -> List[Tuple[str, str]]:
    """(entity, alias) for every alias of a service or a life event in the catalogue."""
    found = []
    for entity, file, key in (("service", "services.yml", "services"), ("life_event", "life_events.yml", "life_events")):
        for item in yaml.safe_load((PROJECT_ROOT / "catalogue" / file).read_text())[key]:
            found += [(entity, alias.lower()) for alias in item.get("aliases", []) + [item["name"]]]
    return found


ALIASES = catalogue_aliases()
CATALOGUE_WORDS = {w for _, alias in ALIASES for w in TOKEN.findall(alias)}


@pytest.fixture(scope="module")
def parse(trained_model: Path) -> Any:
    agent = Agent.load(str(trained_model))
    loop = asyncio.new_event_loop()
    yield lambda text: loop.run_until_complete(agent.parse_message(text))
    loop.close()


def meanings(parsed: Dict[str, Any], entity: str) -> List[str]:
    return [e["value"] for e in parsed["entities"] if e["entity"] == entity]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(named=st.sampled_from(ALIASES), pick=st.integers(0, 10), kind=KINDS, at=st.integers(0, 20), letter=LETTERS, frame=FRAMES)
def test_an_alias_with_one_typo_in_a_long_word_means_what_the_alias_means(
    parse: Any, named: Tuple[str, str], pick: int, kind: str, at: int, letter: str, frame: str
) -> None:
    entity, alias = named
    words = alias.split()
    long_words = [i for i, w in enumerate(words) if w.isalpha() and allowed_typos(w) > 0 and (kind != "deletion" or len(w) > 5)]
    assume(long_words)
    index = long_words[pick % len(long_words)]
    typo = one_typo(words[index], kind, at, letter)
    # a typo that is a real word or as near another catalogue word is not a typo anyone could undo
    assume(typo != words[index] and typo not in VOCABULARY and typo not in CATALOGUE_WORDS)
    assume(
        all(typo_distance(typo, other, 2) > typo_distance(typo, words[index], 2) for other in CATALOGUE_WORDS - {words[index]})
    )
    exact = meanings(parse(frame.format(alias)), entity)
    assume(exact)  # the alias itself is found (not a name inside a longer alias of another entity)
    misspelt = " ".join(words[:index] + [typo] + words[index + 1 :])
    assert set(exact) <= set(meanings(parse(frame.format(misspelt)), entity)), misspelt


@pytest.mark.parametrize(
    ("said", "entity", "meaning"),
    [
        ("pasport renewel", "service", "passport_renewal"),
        ("birth certifcate", "service", "birth_registration"),
        ("unemployment benifit", "service", "unemployment_benefit"),
        ("My wife has baby last week", "life_event", "birth"),
        ("we are moving to a new flat", "life_event", "moving"),
        ("I retire next year", "life_event", "retirement"),
        ("gettin maried in june", "life_event", "marriage"),
        ("My father die yesterday", "life_event", "death"),
        ("we just had our first baby", "life_event", "birth"),
        ("my son starts school in september", "life_event", "school"),
    ],
)
def test_what_citizens_who_cannot_type_well_said(parse: Any, said: str, entity: str, meaning: str) -> None:
    assert meanings(parse(said), entity) == [meaning]


@pytest.mark.parametrize(
    "said",
    [
        "I'm tired",
        "report a fire",
        "has my report been fixed",
        "pothole on Birch Street",
        "where is the nearest office to my house?",
        "I need to talk to an officer",
    ],
)
def test_real_words_near_a_catalogue_name_are_not_taken_for_it(parse: Any, said: str) -> None:
    assert not [e for e in parse(said)["entities"] if "FuzzyCatalogueEntities" in e.get("processors", [])]


def test_tolerance_adds_no_entity_a_held_out_sentence_was_not_annotated_with(parse: Any) -> None:
    added = []
    for example in HELD_OUT.training_examples:
        spans = {(e["start"], e["end"]) for e in example.get("entities") or []}
        for e in parse(example.get("text"))["entities"]:
            tolerant = {"FuzzyCatalogueEntities", "MisspeltWeekdays"} & set(e.get("processors", []))
            if tolerant and (e["start"], e["end"]) not in spans:
                added.append((example.get("text"), e["entity"], e["value"]))
    checked = len(HELD_OUT.training_examples)
    assert checked > 500 and added == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    day=st.sampled_from(WEEKDAY_NAMES),
    kind=KINDS,
    at=st.integers(0, 20),
    letter=LETTERS,
    frame=st.sampled_from([("{}", ""), ("next {}", "next "), ("on {} please", ""), ("can i come {} at 10am", "")]),
)
def test_a_misspelt_day_is_a_date_of_that_day(
    parse: Any, day: str, kind: str, at: int, letter: str, frame: Tuple[str, str]
) -> None:
    typo = one_typo(day, kind, at, letter)
    assume(all(typo_distance(typo, other, 1) > 1 for other in WEEKDAY_NAMES if other != day))
    template, prefix = frame
    dates = meanings(parse(template.format(typo)), "date")
    assert [parse_date(d, WEDNESDAY).value for d in dates] == [parse_date(prefix + day, WEDNESDAY).value]


@given(word=st.text("abcdefghij", min_size=5, max_size=12), kind=KINDS, at=st.integers(0, 20), letter=LETTERS)
def test_one_typo_is_one_edit_away_both_ways(word: str, kind: str, at: int, letter: str) -> None:
    typo = one_typo(word, kind, at, letter)
    expected = 0 if typo == word else 1
    assert typo_distance(typo, word, 2) == typo_distance(word, typo, 2) == expected


@given(a=st.text("abc", max_size=8), b=st.text("abc", max_size=8), limit=st.integers(0, 3))
def test_the_distance_stops_counting_past_its_limit(a: str, b: str, limit: int) -> None:
    unlimited = typo_distance(a, b, 20)
    assert typo_distance(a, b, limit) == min(unlimited, limit + 1)
    assert unlimited <= max(len(a), len(b)) and (unlimited == 0) == (a == b)
