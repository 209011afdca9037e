"""The password policy: long enough, and not guessable by zxcvbn (common passwords, words, repeats, sequences,
keyboard patterns, dates, and the user's own name), with zxcvbn's advice in the refusal."""

from __future__ import annotations

from typing import Sequence

from zxcvbn import zxcvbn

MIN_LENGTH = 10
MAX_LENGTH = 200
MIN_SCORE = 3  # zxcvbn's 0-4 scale: 3 is "safely unguessable: moderate protection from offline slow-hash attacks"
CHECKED_PREFIX = 100  # zxcvbn's time grows with the length; a longer password is judged on its first 100 characters
# words anyone guessing a console password would try first, as zxcvbn's user inputs
CONTEXT_WORDS = ("onewindow", "one window", "console", "staff", "admin", "supervisor", "agent", "citizen", "service")


class WeakPasswordError(ValueError):
    """The password does not meet the policy; the message says why and what would do."""


def check_password(password: str, user_inputs: Sequence[str] = ()) -> None:
    """Raise WeakPasswordError unless `password` meets the policy (`user_inputs`: the username and the like)."""
    if len(password) < MIN_LENGTH:
        raise WeakPasswordError(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPasswordError(f"the password can have at most {MAX_LENGTH} characters")
    if not password.strip():
        raise WeakPasswordError("the password cannot be only spaces")
    result = zxcvbn(password[:CHECKED_PREFIX], user_inputs=[*CONTEXT_WORDS, *(value for value in user_inputs if value)])
    if result["score"] < MIN_SCORE:
        feedback = result.get("feedback") or {}
        advice = " ".join(part for part in [feedback.get("warning") or "", *(feedback.get("suggestions") or [])] if part)
        raise WeakPasswordError(
            "the password is too easy to guess"
            + (f": {advice}" if advice else "")
            + " A few unusual words together make a good password."
        )
