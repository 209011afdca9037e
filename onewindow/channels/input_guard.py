"""Check a citizen's raw message before NLU: empty, too long, or not in a language we read."""

from __future__ import annotations

import unicodedata
from typing import Any, Optional

from onewindow.text.channel_wording import Abilities, Prompt

MAX_CHARACTERS = 2000

EMPTY = Prompt(
    "I did not get any words.",
    chat="Please type your question, for example: what do I need for a passport renewal?",
    voice="Please say your question, for example: what do I need for a passport renewal?",
    keypad="Please choose one of the options.",
)
TOO_LONG = Prompt(
    "That message is too long for me.",
    chat="Please send one short question at a time, or ask for a person if you need to explain more.",
    voice="Please ask one short question at a time, or ask for a person if you need to explain more.",
    keypad="Please choose one of the options, or a person.",
)
NOT_ENGLISH = Prompt(
    chat="Sorry, I can only read English at the moment. For help in another language, type person, or call the city hotline.",
    voice="Sorry, I can only understand English at the moment. For help in another language, ask for a person.",
    keypad="Sorry, I can only understand English at the moment. A person can help you in another language.",
)


def input_problem(text: Any, abilities: Abilities) -> Optional[str]:
    """The reply to send instead of processing `text`, or None when it can be processed."""
    if not isinstance(text, str) or not text.strip():
        return EMPTY.render(abilities)
    if len(text) > MAX_CHARACTERS:
        return TOO_LONG.render(abilities)
    letters = [ch for ch in text if ch.isalpha()]
    other_script = sum(1 for ch in letters if not unicodedata.name(ch, "").startswith("LATIN"))
    if letters and other_script / len(letters) > 0.5:
        return NOT_ENGLISH.render(abilities)
    return None
