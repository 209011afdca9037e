"""Reference codes: generated, read back from typed, spoken and keyed variants, and mistakes caught by the check digit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from onewindow.backend.references import (
    LOOKED_UP,
    PREFIXES,
    damm_digit,
    format_reference,
    mistyped_reference,
    new_reference,
    normalise_reference,
)
from voice.normalise import normalise_caller_text

QUICK = settings(max_examples=150, deadline=None)
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
NEW_FORMAT = re.compile(r"^(BK|APP)-[1-9]\d{4}-\d{5}$")

kinds = st.sampled_from(LOOKED_UP)
random_parts = st.integers(min_value=10**8, max_value=10**9 - 1).map(str)


def body_of(random_part: str) -> str:
    return random_part + damm_digit(random_part)


@st.composite
def written_variants(draw: st.DrawFn, prefix: str, body: str) -> str:
    """The prefix in any case, then the digits with spaces, dashes or nothing between any of them."""
    cased = "".join(draw(st.sampled_from((ch.lower(), ch.upper()))) for ch in prefix)
    separators = draw(st.lists(st.sampled_from(("", "", "", " ", "-")), min_size=len(body), max_size=len(body)))
    separators[0] = separators[0] if prefix else ""  # digits keyed alone start with a digit
    joined = "".join(sep + digit for sep, digit in zip(separators, body))
    return f"{draw(st.sampled_from(('', ' ', '  ')))}{cased}{joined}{draw(st.sampled_from(('', ' ')))}"


def regex_examples() -> str:
    """The reference regex of nlu/regexes.yml, as the RegexEntityExtractor uses it (case-insensitive)."""
    data = YAML(typ="safe").load(Path(__file__).resolve().parent.parent.joinpath("nlu", "regexes.yml").read_text())
    [entry] = [item for item in data["nlu"] if item.get("regex") == "reference"]
    return entry["examples"].strip().lstrip("- ").strip()


REFERENCE_REGEX = re.compile(regex_examples(), re.IGNORECASE)


@QUICK
@given(kinds)
def test_new_references_round_trip(kind: str) -> None:
    reference = new_reference(kind)
    assert NEW_FORMAT.match(reference) and reference.startswith(PREFIXES[kind] + "-")
    assert normalise_reference(reference) == reference
    assert normalise_reference(reference, kind) == reference
    other = next(k for k in LOOKED_UP if k != kind)
    assert normalise_reference(reference, other) is None


@QUICK
@given(st.data(), kinds, random_parts)
def test_typed_and_spoken_variants_normalise_to_the_reference(data: st.DataObject, kind: str, random_part: str) -> None:
    body = body_of(random_part)
    reference = format_reference(kind, body)
    said = data.draw(written_variants(PREFIXES[kind], body))
    assert normalise_reference(said, kind) == reference, said
    keyed = data.draw(written_variants("", body))  # keyed on a phone: the digits only
    assert normalise_reference(keyed, kind) == reference, keyed
    assert normalise_reference(keyed) is None  # without a prefix or a known kind it is nobody's reference


@QUICK
@given(kinds, random_parts, st.integers(min_value=0, max_value=9), st.integers(min_value=1, max_value=9))
def test_every_single_digit_error_is_caught(kind: str, random_part: str, position: int, shift: int) -> None:
    body = body_of(random_part)
    wrong = body[:position] + str((int(body[position]) + shift) % 10) + body[position + 1 :]
    said = f"{PREFIXES[kind]} {wrong}"
    assert normalise_reference(said, kind) is None
    assert mistyped_reference(said, kind) or wrong[0] == "0"  # a leading 0 is not a reference at all


@QUICK
@given(kinds, random_parts, st.integers(min_value=0, max_value=8))
def test_every_swap_of_neighbouring_digits_is_caught(kind: str, random_part: str, position: int) -> None:
    body = body_of(random_part)
    swapped = body[:position] + body[position + 1] + body[position] + body[position + 2 :]
    if swapped == body:
        return  # two equal digits: the swap changes nothing
    said = f"{PREFIXES[kind]}-{swapped}"
    assert normalise_reference(said, kind) is None
    assert mistyped_reference(said, kind) or swapped[0] == "0"


def test_the_check_digit_catches_every_single_error_and_swap_exhaustively_on_a_sample() -> None:
    for number in range(100000000, 100000000 + 2000, 7):
        body = body_of(str(number))
        for position in range(10):
            for digit in "0123456789":
                if digit != body[position]:
                    assert damm_digit(body[:position] + digit + body[position + 1 :]) != "0"
            if position < 9 and body[position] != body[position + 1]:
                assert damm_digit(body[:position] + body[position + 1] + body[position] + body[position + 2 :]) != "0"


@pytest.mark.parametrize(
    "said,expected",
    [
        ("BK-482913", "BK-482913"),
        ("bk 482913", "BK-482913"),
        ("app100001", "APP-100001"),
        ("RPT-123456", "RPT-123456"),
        ("HO 643282", "HO-643282"),
        ("482913", None),
        ("BK-48291", None),
        ("BK-4829130", None),
        ("BK-082913", None),
        ("APP-100001x", None),
        ("", None),
        (None, None),
        ("booking 482913", None),
    ],
)
def test_six_digit_references_of_before_are_still_read(said: str, expected: str) -> None:
    assert normalise_reference(said) == expected


def test_reports_and_handoffs_keep_six_digits() -> None:
    assert re.match(r"^RPT-[1-9]\d{5}$", new_reference("report")) and re.match(r"^HO-[1-9]\d{5}$", new_reference("handoff"))


def test_new_references_are_spread_over_nine_random_digits() -> None:
    drawn = {new_reference("appointment") for _ in range(2000)}
    assert len(drawn) == 2000
    assert {ref[3] for ref in drawn} == set("123456789")  # never 0 first, so never read as a phone number


@QUICK
@given(st.data(), kinds, random_parts, st.sampled_from(("cancel appointment {} please", "status of {}", "{}", "it's {}, thanks")))
def test_the_nlu_regex_finds_every_written_variant(data: st.DataObject, kind: str, random_part: str, sentence: str) -> None:
    body = body_of(random_part)
    said = data.draw(written_variants(PREFIXES[kind], body)).strip()
    found = REFERENCE_REGEX.findall(sentence.format(said))
    assert [normalise_reference(found[0], kind)] == [format_reference(kind, body)] and len(found) == 1, said


@pytest.mark.parametrize("text", ["call 0412 345 678", "in 2026", "24 hours", "the bk office", "app store", "BK-12345"])
def test_the_nlu_regex_ignores_what_is_not_a_reference(text: str) -> None:
    assert REFERENCE_REGEX.search(text) is None


@QUICK
@given(kinds, random_parts, st.sampled_from(("", "dash ")), st.booleans())
def test_a_caller_saying_the_reference_is_understood(kind: str, random_part: str, dash: str, letters_apart: bool) -> None:
    body = body_of(random_part)
    prefix = " ".join(PREFIXES[kind].lower()) if letters_apart else PREFIXES[kind].lower()
    spoken = f"cancel {prefix} {dash}{' '.join(DIGIT_WORDS[int(d)] for d in body)}"
    written = normalise_caller_text(spoken)
    assert normalise_reference(written.split(" ", 1)[1], kind) == format_reference(kind, body), written
