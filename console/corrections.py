"""Improving the assistant: the citizen messages it misunderstood, the intents staff pick for them, and
those corrections exported as Rasa NLU training data ready to merge into nlu/.

A message is misunderstood when NLU fell back (nlu_fallback), when the intent's confidence was below the
threshold (CONSOLE_LOW_CONFIDENCE, default 0.5), or when it was the citizen's last request before a handoff.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Dict, List, Optional, Sequence

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

from console.conversations import ConversationStore, UserMessage, is_typed, user_message
from console.filters import FALLBACK_INTENT, InvalidFilter, domain_intents
from console.masking import Masker
from onewindow.rasa_plugins import events_table
from onewindow.storage import models

corrections = models.NluCorrection.__table__
PER_PAGE = 25
WHY = {"fallback": "not understood", "low_confidence": "low confidence", "handoff": "last message before a handoff"}


@dataclass
class Misunderstood:
    message: UserMessage
    why: str  # a key of WHY
    correct_intent: Optional[str] = None


@dataclass
class MisunderstoodPage:
    items: List[Misunderstood]
    total: int
    number: int
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


class Corrections:
    def __init__(self, store: ConversationStore, threshold: float) -> None:
        """`threshold`: messages understood with less confidence than this are listed (ConsoleSettings)."""
        self.store = store
        self.threshold = threshold

    @property
    def tracker(self) -> Engine:
        return self.store.tracker

    @property
    def service(self) -> Engine:
        return self.store.service

    def misunderstood(self, page: int = 1, include_corrected: bool = False, per_page: int = PER_PAGE) -> MisunderstoodPage:
        """Misunderstood messages, newest first; those already corrected only when `include_corrected`."""
        why: Dict[int, str] = {}
        with self.tracker.connect() as connection:
            for row in events_table.unsure_or_with_intent(connection, self.threshold, FALLBACK_INTENT):
                why[row.id] = "fallback" if row.intent_name == FALLBACK_INTENT else "low_confidence"
        for message in self.store.requests_before_handoffs():
            why.setdefault(message.event_id, "handoff")
        corrected = self.corrected_intents()
        ids = sorted((i for i in why if include_corrected or i not in corrected), reverse=True)
        with self.tracker.connect() as connection:
            # button payloads ("/request_human") are not something a citizen typed: left out before paging
            typed = self._typed(connection, ids)
        ids = [i for i in ids if i in typed]
        shown = ids[(page - 1) * per_page : page * per_page]
        items = [Misunderstood(typed[i], why[i], corrected.get(i)) for i in shown]
        return MisunderstoodPage(items, len(ids), page, per_page)

    @staticmethod
    def _typed(connection: Connection, ids: Sequence[int]) -> Dict[int, UserMessage]:
        rows = events_table.user_messages_by_id(connection, ids)
        return {m.event_id: m for m in map(user_message, rows) if is_typed(m.text)}

    def corrected_intents(self) -> Dict[int, str]:
        """event id -> the intent staff picked."""
        with self.service.connect() as connection:
            return dict(connection.execute(select(corrections.c.event_id, corrections.c.correct_intent)).all())

    def save(self, event_id: int, correct_intent: str, username: str) -> UserMessage:
        """Record (or change) the right intent for a user message; InvalidFilter if either is unknown."""
        if correct_intent not in domain_intents():
            raise InvalidFilter("pick one of the assistant's intents")
        with self.tracker.connect() as connection:
            row = events_table.user_message(connection, event_id)
        if row is None:
            raise InvalidFilter("that message does not exist (any more)")
        message = user_message(row)
        values = {
            "sender_id": message.sender_id,
            "text": message.text,
            "predicted_intent": message.intent,
            "confidence": message.confidence,
            "correct_intent": correct_intent,
            "corrected_by": username,
            "created_at": datetime.utcnow(),
        }
        with self.service.begin() as connection:
            if not connection.execute(update(corrections).where(corrections.c.event_id == event_id).values(**values)).rowcount:
                connection.execute(insert(corrections).values(event_id=event_id, **values))
        return message

    def training_data(self) -> str:
        """Every correction as Rasa NLU YAML (version 3.1): masked, one example per text and intent."""
        with self.service.connect() as connection:
            rows = connection.execute(
                select(corrections.c.sender_id, corrections.c.text, corrections.c.correct_intent).order_by(corrections.c.id)
            ).all()
        personal = self.store.personal_values(sorted({row.sender_id for row in rows}))
        examples: Dict[str, Dict[str, str]] = {}
        for row in rows:
            text = training_text(Masker(personal.get(row.sender_id, []))(row.text))
            if text:
                examples.setdefault(row.correct_intent, {}).setdefault(text.casefold(), text)
        return nlu_yaml(examples, len(rows))


def training_text(text: str) -> str:
    """One line of plain text: Rasa's reader would take [..](..) or {..} as entity annotations."""
    return " ".join(re.sub(r"[\[\]{}]", " ", text).split())


def nlu_yaml(examples: Dict[str, Dict[str, str]], corrections_count: int) -> str:
    """The NLU file: `- intent:` blocks with literal `examples: |` lists, intents in name order."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        'version: "3.1"',
        f"# {corrections_count} corrections made in the OneWindow staff console, exported {when}.",
        "# Personal data is masked. Merge the examples into the matching files in nlu/, then `make train`.",
        "nlu:" if examples else "nlu: []",
    ]
    for intent in sorted(examples):
        lines += [f"- intent: {intent}", "  examples: |"]
        lines += [f"    - {text}" for text in examples[intent].values()]
    return "\n".join(lines) + "\n"
