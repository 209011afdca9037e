"""Check a citizen's raw message before NLU: empty, too long, or not in a language we read."""
from __future__ import annotations

import unicodedata
from typing import Any, Optional

MAX_CHARACTERS = 2000

EMPTY = "I did not get any words. Please type or say your question, for example: what do I need for a passport renewal?"
TOO_LONG = (
    "That message is too long for me. Please send one short question at a time, "
    "or ask for a person if you need to explain more."
)
NOT_ENGLISH = (
    "Sorry, I can only read English at the moment. For help in another language, "
    "say person, or call the city hotline."
)


def input_problem(text: Any) -> Optional[str]:
    """The reply to send instead of processing `text`, or None when it can be processed."""
    if not isinstance(text, str) or not text.strip():
        return EMPTY
    if len(text) > MAX_CHARACTERS:
        return TOO_LONG
    letters = [ch for ch in text if ch.isalpha()]
    other_script = sum(1 for ch in letters if not unicodedata.name(ch, "").startswith("LATIN"))
    if letters and other_script / len(letters) > 0.5:
        return NOT_ENGLISH
    return None
