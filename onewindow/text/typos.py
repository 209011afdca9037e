"""How far a word a citizen typed is from a word the assistant knows (typo tolerance)."""

from __future__ import annotations

from typing import AbstractSet, List, Optional, Sequence


def typo_distance(a: str, b: str, limit: int) -> int:
    """Edit distance counting a swap of two neighbouring letters as one edit; limit + 1 once over it."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: List[int] = []
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
        before, row = row, current
    return min(row[-1], limit + 1)


def allowed_typos(word: str) -> int:
    """Typos tolerated in a known word: none under 5 letters, 1 up to 7, 2 from 8."""
    return 0 if len(word) < 5 else 1 if len(word) <= 7 else 2


def misspelling_of(said: str, known: str, real_words: AbstractSet[str] = frozenset()) -> Optional[int]:
    """The number of typos if said is a misspelling of known, else None.

    A misspelling keeps the first letter and five letters or more ("fire" and "tired" are not
    "fired"); a word in real_words (seen in training) is a word of its own, not a misspelling.
    """
    limit = allowed_typos(known)
    if limit == 0 or said == known or len(said) < 5 or said[0] != known[0] or said in real_words:
        return None
    distance = typo_distance(said, known, limit)
    return distance if distance <= limit else None


def corrected(said: str, known_words: Sequence[str], real_words: AbstractSet[str] = frozenset()) -> Optional[str]:
    """The one known word said is a misspelling of (fewest typos), or None if none or a tie."""
    costs = {known: misspelling_of(said, known, real_words) for known in known_words}
    found = sorted((cost, known) for known, cost in costs.items() if cost is not None)
    if not found or (len(found) > 1 and found[0][0] == found[1][0]):
        return None
    return found[0][1]
