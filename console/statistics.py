"""The figures behind the analytics page, for a date range (UTC days, both ends included)."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Dict, List, Optional, Sequence, Set, Tuple

from sqlalchemy import select

from console.conversations import ConversationStore, handoffs, moment, user_message
from console.filters import FALLBACK_INTENT, OUTCOMES, day_start
from console.masking import Masker
from onewindow.channels.senders import channel_of_sender
from onewindow.rasa_plugins import events_table

TOP = 10
UNMET_INTENTS = (FALLBACK_INTENT, "out_of_scope")


@dataclass
class Analytics:
    date_from: date
    date_to: date
    per_day: Dict[date, Dict[str, int]] = field(default_factory=dict)  # day -> channel -> conversations
    outcomes: Dict[str, int] = field(default_factory=dict)  # OUTCOMES key -> conversations
    reasons: List[Tuple[str, int]] = field(default_factory=list)
    top_intents: List[Tuple[str, int]] = field(default_factory=list)
    unmet: List[Tuple[str, int]] = field(default_factory=list)  # masked text -> times asked
    median_wait: Optional[float] = None  # minutes, over the range
    wait_by_day: Dict[date, float] = field(default_factory=dict)  # day -> median minutes

    @property
    def days(self) -> List[date]:
        return [self.date_from + timedelta(days=n) for n in range((self.date_to - self.date_from).days + 1)]

    def channel_totals(self, channels: Sequence[str]) -> List[Tuple[str, int]]:
        """Per channel, conversations summed over the days (a conversation on two days counts twice)."""
        return [(channel, sum(counts.get(channel, 0) for counts in self.per_day.values())) for channel in channels]

    @property
    def conversations(self) -> int:
        return sum(self.outcomes.values())


def analytics(store: ConversationStore, date_from: date, date_to: date) -> Analytics:
    since, until = day_start(date_from), day_start(date_to + timedelta(days=1))
    result = Analytics(date_from, date_to)
    with store.tracker.connect() as connection:
        active = events_table.user_messages_between(connection, since, until)
        result.top_intents = events_table.top_intents(connection, since, until, TOP)
        unmet_rows = events_table.user_messages_with_intents(connection, since, until, UNMET_INTENTS)
        senders: Set[str] = {row.sender_id for row in active}
        abandoned = events_table.senders_last_message_with(connection, FALLBACK_INTENT) & senders
    per_day: Dict[date, Set[Tuple[str, str]]] = {}
    for row in active:
        per_day.setdefault(moment(row.timestamp).date(), set()).add((row.sender_id, channel_of_sender(row.sender_id)))
    result.per_day = {day: dict(Counter(channel for _, channel in pairs)) for day, pairs in sorted(per_day.items())}

    start, end = datetime.utcfromtimestamp(since), datetime.utcfromtimestamp(until)
    with store.service.connect() as connection:
        handed_off = (
            set(connection.execute(select(handoffs.c.sender_id).where(handoffs.c.sender_id.in_(senders))).scalars())
            if senders
            else set()
        )
        requested = connection.execute(
            select(handoffs.c.reason, handoffs.c.created_at, handoffs.c.claimed_at).where(
                handoffs.c.created_at >= start, handoffs.c.created_at < end
            )
        ).all()
    result.outcomes = {key: 0 for key in OUTCOMES}
    for sender in senders:
        key = "handed_off" if sender in handed_off else "abandoned" if sender in abandoned else "resolved"
        result.outcomes[key] += 1
    result.reasons = Counter(row.reason for row in requested).most_common()
    waits: Dict[date, List[float]] = {}
    for row in requested:
        if row.claimed_at:
            waits.setdefault(row.created_at.date(), []).append((row.claimed_at - row.created_at).total_seconds() / 60)
    if waits:
        result.median_wait = statistics.median([w for day in waits.values() for w in day])
        result.wait_by_day = {day: statistics.median(values) for day, values in sorted(waits.items())}

    unmet = [user_message(row) for row in unmet_rows] + store.requests_before_handoffs(start, end)
    personal = store.personal_values(sorted({m.sender_id for m in unmet}))
    asked: Counter = Counter()
    shown: Dict[str, str] = {}
    for message in {m.event_id: m for m in unmet}.values():
        text = " ".join(Masker(personal.get(message.sender_id, []))(message.text).split())
        if text and not text.startswith("/"):
            asked[text.casefold()] += 1
            shown.setdefault(text.casefold(), text)
    result.unmet = [(shown[key], count) for key, count in sorted(asked.items(), key=lambda item: (-item[1], item[0]))[:TOP]]
    return result
