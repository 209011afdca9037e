"""What the assistant just listed, and which item of it the citizen means ("the rent one", "the second one").

A list is the latest assistant message whose buttons offer two or more services, or two or more
offices (a life event's services, "Do you mean A or B?", the offices for a service): the buttons
are the items, in order. A reference is an ordinal ("the second one", "number 3", "the last one")
or words of one item's name or aliases, more than of any other listed item ("the unemployment
money" is unemployment benefit). A question about a service answers about a listed one only while
the conversation is still on that list: the service in context is none or one of its items.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from rasa_sdk import Tracker

from actions.shared import backend
from onewindow.text.dates import NUMBER_WORDS as SPOKEN_NUMBERS
from onewindow.text.dates import ORDINAL_WORDS as ORDINALS

KINDS = ("service", "office")
ORDINAL_WORDS = {**ORDINALS, "last": -1}
NUMBER_WORDS = {word: value for word, value in SPOKEN_NUMBERS.items() if value <= 10}  # "number two", "option ten"
_WORDS = "|".join(ORDINAL_WORDS)
_NUMBER = r"\d{1,2}|" + "|".join(NUMBER_WORDS)
# "the second (one)", "second one", "the 2nd", "number 3", "option two", or a number alone; not "last time"
ORDINAL = re.compile(
    rf"\bthe\s+(?P<the>{_WORDS})\b|\b(?P<one>{_WORDS})\s+(?:one|option|item)\b|\b(?P<suffixed>\d{{1,2}})(?:st|nd|rd|th)\b"
    rf"|\b(?:number|option|no\.?|item)\s*(?P<numbered>{_NUMBER})\b|^\s*(?P<bare>\d{{1,2}})\s*[.!?]?\s*$",
    re.IGNORECASE,
)
WORD = re.compile(r"[a-z]+")
# words that say what is asked, not which item: never a reference on their own
COMMON = frozenset(
    """
a about after am an and any are as at be been can could did do does done for from get gets getting give go going
have having help how i if in is it its just know let me more much my need of ok okay on one ones or our please
so tell than thanks that the their them then there these they this those to too us want was we what when where which
who why will with would you your yes no not also again still same other else way
apply applying application cost costs fee pay paid price money documents document bring papers long take takes time
online home person office offices internet post book booking appointment
""".split()
)


@dataclass(frozen=True)
class Listing:
    """Items the assistant offered as buttons in one message, in order."""

    kind: str  # service | office
    ids: List[str]
    buttons: List[Dict[str, Any]]  # as the assistant sent them, to offer them again


def _button_entities(message: Mapping[str, Any]) -> Iterable[Dict[str, Any]]:
    for button in message.get("buttons") or []:
        payload = button.get("payload") if isinstance(button, Mapping) else None
        if isinstance(payload, str) and "{" in payload:
            try:
                entities = json.loads(payload[payload.index("{") :])
            except ValueError:
                continue
            if isinstance(entities, dict):
                yield entities


def latest_listing(events: Sequence[Mapping[str, Any]], kinds: Sequence[str] = KINDS) -> Optional[Listing]:
    """The latest assistant message (this session) whose buttons offer two or more items of one of `kinds`."""
    for event in reversed(events):
        if event.get("event") == "session_started":
            return None
        if event.get("event") != "bot":
            continue
        entities = list(_button_entities(event.get("data") or {}))
        for kind in kinds:
            ids = list(dict.fromkeys(str(e[kind]) for e in entities if e.get(kind)))
            if len(ids) >= 2:
                return Listing(kind, ids, list((event.get("data") or {}).get("buttons") or []))
    return None


def ordinal(text: str) -> Optional[int]:
    """1 for "the first one", "number 1", "1st" or a bare "1"; -1 for "the last one"; None without one."""
    match = ORDINAL.search(text)
    if not match:
        return None
    word = match.group("the") or match.group("one")
    if word:
        return ORDINAL_WORDS[word.lower()]
    value = match.group("suffixed") or match.group("numbered") or match.group("bare")
    return NUMBER_WORDS.get(value.lower()) or int(value)


def _stem(word: str) -> str:
    """Words compared by their first five letters: registering ~ registration, unemployed ~ unemployment."""
    return word[:5]


def stems(text: str) -> set:
    return {_stem(w) for w in WORD.findall(text.lower()) if len(w) > 2 and w not in COMMON}


def by_words(text: str, items: Sequence[Tuple[str, Sequence[str], str]]) -> Optional[str]:
    """The item whose name, then aliases, share the most words with `text`; None on a tie or no shared word.

    `items` are (id, aliases, name). A word of the name counts 2, a word only of an alias 1: "the
    unemployment money" is unemployment benefit, not job-seeker registration ("register as unemployed").
    """
    said = stems(text)
    if not said:
        return None
    scores: Dict[str, int] = {}
    for item_id, aliases, name in items:
        named = stems(name)
        aliased = set().union(*(stems(alias) for alias in aliases)) if aliases else set()
        scores[item_id] = 2 * len(said & named) + len((said & aliased) - named)
    best = max(scores.values(), default=0)
    winners = [item_id for item_id, score in scores.items() if score == best]
    return winners[0] if best and len(winners) == 1 else None


def referred(text: str, listing: Listing, items: Sequence[Tuple[str, Sequence[str], str]]) -> Optional[str]:
    """The id of the listed item `text` refers to, by ordinal or by words; None when it names none of them."""
    position = ordinal(text)
    if position is not None:
        if position == -1:
            return listing.ids[-1]
        return listing.ids[position - 1] if 1 <= position <= len(listing.ids) else None
    return by_words(text, items)


def listed_items(catalogue: Any, listing: Listing) -> List[Tuple[str, List[str], str]]:
    """(id, aliases, name) of every listed item still in the catalogue (`catalogue`: the backend's CatalogueQueries)."""
    find = catalogue.service if listing.kind == "service" else catalogue.office
    records = [find(item_id) for item_id in listing.ids]
    return [(r.id, catalogue.phrases(listing.kind, r.id), r.name) for r in records if r is not None]


def reference_in(tracker: Tracker, kinds: Sequence[str] = KINDS, named_first: bool = True) -> Optional[Tuple[str, str]]:
    """(kind, id) of the listed item the latest message refers to.

    With `named_first`, none when the message names a service, an office, a date or a time itself: what
    it names comes first. Without, "the pension one" after a bereavement's list is the survivor's pension.
    """
    named = {e.get("entity") for e in tracker.latest_message.get("entities") or []}
    if named_first and named & {*KINDS, "date", "time"}:
        return None
    listing = latest_listing(tracker.events, kinds)
    if listing is None:
        return None
    if named_first and listing.kind == "service" and tracker.get_slot("service") not in (None, *listing.ids):
        return None  # the conversation has moved on from that list
    item = referred(tracker.latest_message.get("text") or "", listing, listed_items(backend().catalogue, listing))
    return (listing.kind, item) if item else None


ORDINAL_ALONE = re.compile(rf"^\s*({_WORDS})(?:\s+please)?\s*[.!?]?\s*$", re.IGNORECASE)


def button_referred(text: str, buttons: Sequence[Mapping[str, Any]], by_name: bool = True) -> Optional[Mapping[str, Any]]:
    """The button of `buttons` that `text` refers to: by ordinal ("the second one", "number 2"), or (`by_name`) by words of its title.

    A bare number that is also in a title ("10" among the times "9:30", "10:00") is the citizen's own answer, not a position.
    """
    alone = ORDINAL_ALONE.match(text)
    if alone:  # "second", "second please": the answer to a question with a list is a position
        position = ORDINAL_WORDS[alone.group(1).lower()]
        return buttons[position if position == -1 else position - 1] if position <= len(buttons) else None
    match = ORDINAL.search(text)
    if (
        match
        and match.group("bare")
        and any(re.search(rf"(?<!\d){int(match.group('bare'))}(?!\d)", str(b.get("title", ""))) for b in buttons)
    ):
        return None
    numbered = ordinal(text)
    if numbered is not None:
        return buttons[numbered if numbered == -1 else numbered - 1] if -1 <= numbered <= len(buttons) and numbered else None
    if not by_name:
        return None
    titles = [WORD.findall(str(b.get("title", "")).lower()) for b in buttons]
    shared = set.intersection(*(set(words) for words in titles))  # "service centre" in every title tells none apart
    chosen = by_words(
        text, [(str(index), [], " ".join(w for w in words if w not in shared)) for index, words in enumerate(titles)]
    )
    return buttons[int(chosen)] if chosen is not None else None
