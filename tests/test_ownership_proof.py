"""The four proof digits a message states with or without a record's reference ("my phone ends in 4957")."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from actions.ownership import proof_digits
from onewindow.backend.references import damm_digit, format_reference

BODIES = st.text("0123456789", min_size=9, max_size=9).map(lambda body: body + damm_digit(body)) | st.text(
    "0123456789", min_size=6, max_size=6
)
REFERENCES = st.builds(format_reference, st.sampled_from(["appointment", "application", "report"]), BODIES)
DIGITS = st.text("0123456789", min_size=4, max_size=4)
PHRASES = st.sampled_from(
    [
        "my phone number ends in {d}",
        "it ends with {d}",
        "ending in {d}",
        "my number ends in {d}",
        "the last four digits are {d}",
        "last 4 digits {d}",
        "last four numbers: {d}",
        "the last four digits of my phone are {d}",
        "the last 4 digits of the phone number are {d}",
        "Last Four Digits {d}",
        "my phone ending {d}",
        "it finishes with {d}",
        "the last digits are {d}",
        "the last four of my number are {d}",
        "my mobile number ends in {d}",
    ]
)


def spaced(digits: str, style: int) -> str:
    """Digits as typed or as the recogniser writes them: together, one by one, in pairs."""
    return [digits, " ".join(digits), f"{digits[:2]} {digits[2:]}", "-".join(digits)][style]


def written(reference: str, style: int) -> str:
    return [reference, reference.lower(), reference.replace("-", " "), reference.replace("-", "")][style]


@given(
    digits=DIGITS,
    phrase=PHRASES,
    style=st.integers(0, 3),
    reference=REFERENCES,
    ref_style=st.integers(0, 3),
    before=st.booleans(),
)
def test_the_stated_digits_are_found_beside_any_reference(
    digits: str, phrase: str, style: int, reference: str, ref_style: int, before: bool
) -> None:
    reference = written(reference, ref_style)
    proof = phrase.format(d=spaced(digits, style))
    text = f"The number is {reference} and {proof}." if before else f"{proof.capitalize()}, and the number is {reference}"
    assert proof_digits(text) == digits


@given(local=st.text("0123456789", min_size=9, max_size=9), grouped=st.booleans())
def test_a_whole_phone_number_gives_its_last_four_digits(local: str, grouped: bool) -> None:
    number = f"0{local}"
    said = f"{number[:4]} {number[4:7]} {number[7:]}" if grouped else number
    assert proof_digits(f"my phone number is {said}") == number[-4:]


@given(
    reference=REFERENCES,
    ref_style=st.integers(0, 3),
    words=st.sampled_from(["", "check my appointment", "the number is", "cancel", "it is the one ending", "it ends in"]),
)
def test_a_reference_alone_is_never_taken_as_proof(reference: str, ref_style: int, words: str) -> None:
    assert proof_digits(f"{words} {written(reference, ref_style)}") is None


def test_numbers_that_state_no_proof_are_not_taken() -> None:
    for text in (
        "I want to check my appointment",
        "on 12 december at 10 am",
        "my appointment is at 10:30",
        "4957",
        "the last one",
        "it ends tomorrow",
    ):
        assert proof_digits(text) is None, text
