"""Conversations as staff see them, read from Rasa's tracker store (the `events` table) and the service
database (handoffs, reviews, call transcripts).

The list page is aggregated in SQL (one row per sender, paginated); a transcript is built in Python from
one sender's events. The tracker store and the service database may be different databases, so they are
never joined in SQL: the service side gives sets of sender ids that filter the events query.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from sqlalchemy import and_, insert, not_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql import ColumnElement, Select

from console.filters import FALLBACK_INTENT, ConversationFilter
from console.masking import NAME_SLOTS, NOT_NAMES, PERSONAL_SLOTS, PROOF_SLOTS, Masker, slot_personal_values
from onewindow.channels.senders import IDENTIFIED_CHANNELS, REST, channel_of_sender
from onewindow.rasa_plugins import events_table
from onewindow.storage import models

PER_PAGE = 25
EXPORT_LIMIT = 5000
SESSION_EVENTS = ("session_started", "restart")
HIDDEN_ACTIONS = ("action_listen", "action_session_start")
REQUESTED_SLOT = "requested_slot"  # the slot a form is asking for
HIDDEN_SLOTS = (REQUESTED_SLOT,)
# an answer to the question for a name that is one: one to four words of letters (the form may still refuse it)
NAME_ANSWER = re.compile(r"[^\W\d_]+(?:['’.-][^\W\d_]*)*(?:\s+[^\W\d_]+(?:['’.-][^\W\d_]*)*){0,3}")
# what a citizen says to get a person (or to accept the offer of one): not the request that went unmet
PERSON_INTENTS = ("request_human", "affirm", "deny")
TRANSCRIPT_EVENTS = ("user", "bot", "action", "slot", *SESSION_EVENTS)
NOT_UNDERSTOOD = "/nlu_fallback"  # the hotline heard nothing usable; its metadata has what it heard


def said_text(data: Dict[str, Any]) -> str:
    """A citizen message as staff read it: for a caller not understood, what the recogniser heard."""
    text = data.get("text") or ""
    heard = (data.get("metadata") or {}).get("heard")
    if text.strip() == NOT_UNDERSTOOD and heard is not None:
        return f"(not understood) {heard}".strip()
    return text


handoffs = models.HandoffRequest.__table__
reviews = models.ConversationReview.__table__
calls = models.CallTranscript.__table__


def moment(timestamp: Optional[float]) -> datetime:
    """An event timestamp as a naive UTC datetime (the convention of the service database)."""
    return datetime.fromtimestamp(timestamp or 0, timezone.utc).replace(tzinfo=None)


# --- records -------------------------------------------------------------------------------


@dataclass
class UserMessage:
    event_id: int
    sender_id: str
    at: datetime
    text: str
    intent: Optional[str]
    confidence: Optional[float]


def user_message(row: Any) -> UserMessage:
    """A `user` event row (id, sender_id, timestamp, intent_name, data) as a message."""
    data = json.loads(row.data or "{}")
    intent = (data.get("parse_data") or {}).get("intent") or {}
    return UserMessage(
        row.id,
        row.sender_id,
        moment(row.timestamp),
        data.get("text") or "",
        intent.get("name") or row.intent_name,
        intent.get("confidence"),
    )


@dataclass
class HandoffInfo:
    reference: str
    reason: str
    status: str
    outcome: Optional[str]
    created_at: datetime
    claimed_by: Optional[str]
    claimed_at: Optional[datetime]

    @property
    def wait_minutes(self) -> Optional[float]:
        """Minutes from the request to a person claiming it."""
        return (self.claimed_at - self.created_at).total_seconds() / 60 if self.claimed_at else None


@dataclass
class Review:
    tags: List[str] = field(default_factory=list)
    note: str = ""
    reviewed: bool = False
    reviewed_by: Optional[str] = None
    updated_at: Optional[datetime] = None


@dataclass
class ConversationSummary:
    key: int  # the sender's first event id: the conversation's id in console URLs
    sender_id: str
    channel: str
    started_at: datetime
    last_at: datetime
    user_messages: int
    first_text: str = ""
    intents: List[str] = field(default_factory=list)
    outcome: str = "resolved"
    handoffs: List[HandoffInfo] = field(default_factory=list)
    review: Review = field(default_factory=Review)


@dataclass
class Message:
    event_id: int
    at: datetime
    speaker: str  # citizen | assistant | staff
    text: str
    author: str = ""  # the staff member, for staff replies
    channel: str = ""
    intent: Optional[str] = None
    confidence: Optional[float] = None
    entities: List[Tuple[str, Any]] = field(default_factory=list)


@dataclass
class Turn:
    """A citizen message and what the assistant did about it (or the assistant's opening, without one)."""

    citizen: Optional[Message]
    replies: List[Message] = field(default_factory=list)
    actions: List[str] = field(default_factory=list)
    slots: List[Tuple[str, Any]] = field(default_factory=list)

    @property
    def at(self) -> datetime:
        return self.citizen.at if self.citizen else self.replies[0].at if self.replies else datetime.min


@dataclass
class Session:
    started_at: datetime
    turns: List[Turn] = field(default_factory=list)


@dataclass
class CallInfo:
    call_id: str
    channel: str
    started_at: datetime
    ended_at: datetime
    outcome: str
    caller_audio_seconds: float
    turns: List[Dict[str, Any]]


@dataclass
class Transcript:
    key: int
    sender_id: str
    channel: str
    sessions: List[Session]
    personal_values: List[str]
    outcome: str
    handoffs: List[HandoffInfo] = field(default_factory=list)
    review: Review = field(default_factory=Review)
    calls: List[CallInfo] = field(default_factory=list)

    def turns(self) -> Iterable[Turn]:
        for session in self.sessions:
            yield from session.turns

    def masker(self) -> Masker:
        """Masks this conversation's personal data: its slots' values and the names found in any of its texts."""
        texts = [m.text for turn in self.turns() for m in ([turn.citizen] if turn.citizen else []) + turn.replies]
        texts += [str(t.get("text", "")) for call in self.calls for t in call.turns]
        return Masker(self.personal_values, texts)


@dataclass
class Page:
    items: List[ConversationSummary]
    total: int
    number: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


# --- building transcripts from events ----------------------------------------------------------


def build_sessions(rows: Sequence[Any], channel: str) -> List[Session]:
    """Group one sender's events (in id order) into sessions of turns."""
    sessions: List[Session] = []
    turn: Optional[Turn] = None

    def current_session(at: datetime) -> Session:
        if not sessions:
            sessions.append(Session(at))
        return sessions[-1]

    def current_turn(at: datetime) -> Turn:
        nonlocal turn
        if turn is None:
            turn = Turn(None)
            current_session(at).turns.append(turn)
        return turn

    for row in rows:
        at = moment(row.timestamp)
        if row.type_name in SESSION_EVENTS:
            if not sessions or sessions[-1].turns:
                sessions.append(Session(at))
            turn = None
            continue
        data = json.loads(row.data or "{}")
        if row.type_name == "user":
            parse = data.get("parse_data") or {}
            intent = parse.get("intent") or {}
            turn = Turn(
                Message(
                    row.id,
                    at,
                    "citizen",
                    said_text(data),
                    channel=(data.get("metadata") or {}).get("channel") or channel,
                    intent=intent.get("name") or row.intent_name,
                    confidence=intent.get("confidence"),
                    entities=[(e.get("entity"), e.get("value")) for e in parse.get("entities") or []],
                )
            )
            current_session(at).turns.append(turn)
        elif row.type_name == "bot":
            staff = (data.get("metadata") or {}).get("staff")
            current_turn(at).replies.append(
                Message(
                    row.id,
                    at,
                    "staff" if staff else "assistant",
                    data.get("text") or "",
                    author=staff or "",
                    channel=channel,
                )
            )
        elif row.type_name == "action" and row.action_name not in HIDDEN_ACTIONS:
            current_turn(at).actions.append(row.action_name or data.get("name") or "")
        elif row.type_name == "slot" and data.get("name") not in HIDDEN_SLOTS:
            current_turn(at).slots.append((data.get("name") or "", data.get("value")))
    return sessions


def personal_values_in(rows: Iterable[Any]) -> Dict[str, List[str]]:
    """Per sender, the values its personal slots (names, phone numbers, proof digits) were set to, the citizen's
    answers to the assistant's question for a name that look like one, and the digits in answers to the question
    for a proof (also answers the form then refused, whose slot was never set). `rows`: the senders' slot and user
    events in order (PERSONAL_EVENTS)."""
    values: Dict[str, List[str]] = {}
    asked: Dict[str, Any] = {}
    for row in rows:
        data = json.loads(row.data or "{}")
        found: List[str] = []
        if row.type_name == "user":
            text = " ".join(str(data.get("text") or "").split())
            question = asked.pop(row.sender_id, None)
            if question in PROOF_SLOTS:
                found = slot_personal_values(question, text)
            elif (
                question in NAME_SLOTS
                and NAME_ANSWER.fullmatch(text)
                and not any(word.lower() in NOT_NAMES for word in text.split())
            ):
                found = [text]
        elif row.action_name == REQUESTED_SLOT:
            asked[row.sender_id] = data.get("value")
        else:
            found = slot_personal_values(row.action_name, data.get("value"))
        if found:
            values.setdefault(row.sender_id, []).extend(found)
    return values


# --- the store ---------------------------------------------------------------------------------


class ConversationStore:
    """Reads conversations from the tracker store and the service database; writes staff reviews.

    The free-text search matches what the citizen and the assistant wrote as it is when `search_in_clear`
    (staff who may reveal personal data), else only the masked text staff are shown (console.masking)."""

    def __init__(self, tracker: Engine, service: Engine, search_in_clear: bool = False) -> None:
        self.tracker = tracker
        self.service = service
        self.search_in_clear = search_in_clear

    # keys ----------------------------------------------------------------------------------

    def sender_of(self, key: int) -> Optional[str]:
        """The sender whose first event has id `key`."""
        with self.tracker.connect() as connection:
            sender = events_table.sender_of_event(connection, key)
            if sender is None or self._key(connection, sender) != key:
                return None
            return sender

    def key_of(self, sender_id: str) -> Optional[int]:
        with self.tracker.connect() as connection:
            return self._key(connection, sender_id)

    @staticmethod
    def _key(connection: Connection, sender_id: str) -> Optional[int]:
        return events_table.first_event_id(connection, sender_id)

    # the list --------------------------------------------------------------------------------

    def search(self, criteria: ConversationFilter, page: int = 1, per_page: int = PER_PAGE) -> Page:
        """One page of the conversations matching `criteria`, most recent first."""
        with self.tracker.connect() as connection:
            grouped = self._grouped(connection, criteria)
            if grouped is None:
                return Page([], 0, page, per_page)
            total = events_table.count_of(connection, grouped)
            rows = connection.execute(grouped.limit(per_page).offset((page - 1) * per_page)).all()
        return Page(self._summaries(rows), total, page, per_page)

    def matching(self, criteria: ConversationFilter, limit: int = EXPORT_LIMIT) -> List[ConversationSummary]:
        """Every conversation matching `criteria` (at most `limit`), most recent first."""
        with self.tracker.connect() as connection:
            grouped = self._grouped(connection, criteria)
            rows = connection.execute(grouped.limit(limit)).all() if grouped is not None else []
        return self._summaries(rows)

    def _grouped(self, connection: Connection, criteria: ConversationFilter) -> Optional[Select]:
        """One row per matching sender (key, first and last event time, user messages), or None when the
        service-side filters leave nothing."""
        conditions: List[ColumnElement] = []
        if criteria.channel:
            conditions.append(channel_condition(criteria.channel))
        if criteria.intent:
            conditions.append(events_table.sender_said_intent(criteria.intent))
        if criteria.text:
            conditions.append(events_table.sender_in(self._senders_saying(connection, criteria.text)))
        if criteria.reason:
            conditions.append(events_table.sender_in(self._handed_off(criteria.reason)))
        if criteria.outcome:
            conditions.append(outcome_condition(criteria.outcome, self._handed_off()))
        if criteria.tag:
            conditions.append(events_table.sender_in(self._tagged(criteria.tag)))
        if criteria.reviewed:
            reviewed = events_table.sender_in(self._reviewed())
            conditions.append(reviewed if criteria.reviewed == "yes" else not_(reviewed))
        return events_table.conversation_groups(conditions, criteria.since(), criteria.until())

    def _senders_saying(self, connection: Connection, text: str) -> Set[str]:
        """Senders with a user or bot message containing `text` (case-insensitive), in clear or masked (see the
        class): narrowed with LIKE on the event JSON, then checked on the message text itself."""
        texts: Dict[str, List[str]] = {}
        for row in events_table.messages_containing(connection, text if self.search_in_clear else longest_letter_run(text)):
            texts.setdefault(row.sender_id, []).append(json.loads(row.data).get("text") or "")
        wanted = text.casefold()
        if self.search_in_clear:
            return {sender for sender, said in texts.items() if any(wanted in t.casefold() for t in said)}
        personal = self.personal_values(sorted(texts))
        found = set()
        for sender, said in texts.items():
            mask = Masker(personal.get(sender, []), said)
            if any(wanted in mask(t).casefold() for t in said):
                found.add(sender)
        return found

    def _handed_off(self, reason: str = "") -> Set[str]:
        query = select(handoffs.c.sender_id).distinct()
        if reason:
            query = query.where(handoffs.c.reason == reason)
        with self.service.connect() as connection:
            return set(connection.execute(query).scalars())

    def _tagged(self, tag: str) -> Set[str]:
        """Senders with `tag` (tags are a JSON list, compared in Python: the reviews table is small)."""
        with self.service.connect() as connection:
            rows = connection.execute(select(reviews.c.sender_id, reviews.c.tags)).all()
        return {row.sender_id for row in rows if tag in (row.tags or [])}

    def _reviewed(self) -> Set[str]:
        with self.service.connect() as connection:
            return set(connection.execute(select(reviews.c.sender_id).where(reviews.c.reviewed.is_(True))).scalars())

    def _summaries(self, rows: Sequence[Any]) -> List[ConversationSummary]:
        senders = [row.sender_id for row in rows]
        if not senders:
            return []
        with self.tracker.connect() as connection:
            user_rows = events_table.user_messages_of(connection, senders)
        first_text: Dict[str, str] = {}
        intents: Dict[str, List[str]] = {}
        last_intent: Dict[str, Optional[str]] = {}
        for row in user_rows:
            first_text.setdefault(row.sender_id, json.loads(row.data or "{}").get("text") or "")
            seen = intents.setdefault(row.sender_id, [])
            if row.intent_name and row.intent_name not in seen:
                seen.append(row.intent_name)
            last_intent[row.sender_id] = row.intent_name
        handoff_map = self.handoffs_of(senders)
        review_map = self.reviews_of(senders)
        return [
            ConversationSummary(
                key=row.key,
                sender_id=row.sender_id,
                channel=channel_of_sender(row.sender_id),
                started_at=moment(row.first_at),
                last_at=moment(row.last_at),
                user_messages=int(row.user_messages),
                first_text=first_text.get(row.sender_id, ""),
                intents=intents.get(row.sender_id, []),
                outcome=outcome_of(bool(handoff_map.get(row.sender_id)), last_intent.get(row.sender_id)),
                handoffs=handoff_map.get(row.sender_id, []),
                review=review_map.get(row.sender_id, Review()),
            )
            for row in rows
        ]

    def personal_values(self, senders: Sequence[str]) -> Dict[str, List[str]]:
        """Per sender, the names and numbers its personal slots held (what masking hides)."""
        if not senders:
            return {}
        with self.tracker.connect() as connection:
            rows = events_table.slots_and_messages_of(connection, senders, (*PERSONAL_SLOTS, REQUESTED_SLOT))
        return personal_values_in(rows)

    def requests_before_handoffs(self, since: Optional[datetime] = None, until: Optional[datetime] = None) -> List[UserMessage]:
        """For each handoff (created in [since, until)), the citizen's last message before it that was not the
        request for a person itself: what the assistant could not do."""
        query = select(handoffs.c.sender_id, handoffs.c.created_at)
        if since:
            query = query.where(handoffs.c.created_at >= since)
        if until:
            query = query.where(handoffs.c.created_at < until)
        with self.service.connect() as connection:
            requested = connection.execute(query.order_by(handoffs.c.created_at)).all()
        if not requested:
            return []
        by_sender: Dict[str, List[Any]] = {}
        with self.tracker.connect() as connection:
            for row in events_table.user_messages_of(connection, {r.sender_id for r in requested}):
                by_sender.setdefault(row.sender_id, []).append(row)
        found: Dict[int, UserMessage] = {}
        for handoff in requested:
            before = [r for r in by_sender.get(handoff.sender_id, []) if moment(r.timestamp) <= handoff.created_at]
            messages = [m for m in map(user_message, before) if is_typed(m.text) and m.intent not in PERSON_INTENTS]
            if messages:
                found[messages[-1].event_id] = messages[-1]
        return list(found.values())

    # one conversation --------------------------------------------------------------------------

    def transcript(self, sender_id: str) -> Optional[Transcript]:
        """The sender's whole history (every session), with handoffs, review and phone calls."""
        with self.tracker.connect() as connection:
            rows = events_table.events_of(connection, [sender_id], TRANSCRIPT_EVENTS)
            key = self._key(connection, sender_id)
        if key is None:
            return None
        return self._transcript(key, sender_id, rows)

    def transcripts(self, summaries: Sequence[ConversationSummary]) -> List[Transcript]:
        """Transcripts of several conversations, read in one query (for exports)."""
        senders = [s.sender_id for s in summaries]
        if not senders:
            return []
        by_sender: Dict[str, List[Any]] = {sender: [] for sender in senders}
        with self.tracker.connect() as connection:
            for row in events_table.events_of(connection, senders, TRANSCRIPT_EVENTS):
                by_sender[row.sender_id].append(row)
        handoff_map, review_map = self.handoffs_of(senders), self.reviews_of(senders)
        return [
            self._transcript(
                s.key,
                s.sender_id,
                by_sender[s.sender_id],
                handoff_map.get(s.sender_id, []),
                review_map.get(s.sender_id, Review()),
                with_calls=False,
            )
            for s in summaries
        ]

    def _transcript(
        self,
        key: int,
        sender_id: str,
        rows: Sequence[Any],
        handoff_list: Optional[List[HandoffInfo]] = None,
        review: Optional[Review] = None,
        with_calls: bool = True,
    ) -> Transcript:
        channel = channel_of_sender(sender_id)
        if handoff_list is None:
            handoff_list = self.handoffs_of([sender_id]).get(sender_id, [])
        if review is None:
            review = self.reviews_of([sender_id]).get(sender_id, Review())
        last_intent = next((row.intent_name for row in reversed(rows) if row.type_name == "user"), None)
        personal = personal_values_in(
            r
            for r in rows
            if r.type_name == "user" or (r.type_name == "slot" and r.action_name in (*PERSONAL_SLOTS, REQUESTED_SLOT))
        )
        return Transcript(
            key=key,
            sender_id=sender_id,
            channel=channel,
            sessions=build_sessions(rows, channel),
            personal_values=personal.get(sender_id, []),
            outcome=outcome_of(bool(handoff_list), last_intent),
            handoffs=handoff_list,
            review=review,
            calls=self.calls_of(sender_id) if with_calls else [],
        )

    def handoffs_of(self, senders: Sequence[str]) -> Dict[str, List[HandoffInfo]]:
        query = select(handoffs).where(handoffs.c.sender_id.in_(list(senders))).order_by(handoffs.c.created_at)
        found: Dict[str, List[HandoffInfo]] = {}
        with self.service.connect() as connection:
            for row in connection.execute(query):
                found.setdefault(row.sender_id, []).append(
                    HandoffInfo(
                        row.reference,
                        row.reason,
                        row.status,
                        row.outcome,
                        row.created_at,
                        row.claimed_by,
                        row.claimed_at,
                    )
                )
        return found

    def calls_of(self, sender_id: str) -> List[CallInfo]:
        query = select(calls).where(calls.c.sender_id == sender_id).order_by(calls.c.started_at)
        with self.service.connect() as connection:
            return [
                CallInfo(
                    row.call_id,
                    row.channel,
                    row.started_at,
                    row.ended_at,
                    row.outcome,
                    row.caller_audio_seconds,
                    list(row.turns or []),
                )
                for row in connection.execute(query)
            ]

    # reviews ---------------------------------------------------------------------------------

    def reviews_of(self, senders: Sequence[str]) -> Dict[str, Review]:
        query = select(reviews).where(reviews.c.sender_id.in_(list(senders)))
        with self.service.connect() as connection:
            return {
                row.sender_id: Review(list(row.tags or []), row.note or "", bool(row.reviewed), row.reviewed_by, row.updated_at)
                for row in connection.execute(query)
            }

    def save_review(self, sender_id: str, tags: List[str], note: str, reviewed: bool, username: str) -> Review:
        """Replace the conversation's tags, note and reviewed mark."""
        reviewed_by, updated_at = (username if reviewed else None), datetime.utcnow()
        values = {"tags": tags, "note": note, "reviewed": reviewed, "reviewed_by": reviewed_by, "updated_at": updated_at}
        with self.service.begin() as connection:
            changed = connection.execute(update(reviews).where(reviews.c.sender_id == sender_id).values(**values)).rowcount
            if not changed:
                connection.execute(insert(reviews).values(sender_id=sender_id, **values))
        return Review(tags, note, reviewed, reviewed_by, updated_at)

    def all_tags(self) -> List[str]:
        """Every tag in use, for the filter's suggestions."""
        with self.service.connect() as connection:
            return sorted({tag for tags in connection.execute(select(reviews.c.tags)).scalars() for tag in tags or []})


def longest_letter_run(text: str) -> str:
    """The longest run of letters in `text`: masking keeps letters outside a mask where they were, so a masked
    text containing `text` has this run in the stored text too (narrowing a masked search by LIKE)."""
    runs = re.findall(r"[^\W\d_]+", text)
    return max(runs, key=len) if runs else ""


def is_typed(text: str) -> bool:
    """A message the citizen wrote or said (not a button's /intent payload)."""
    return bool(text.strip()) and not text.startswith("/")


def outcome_of(handed_off: bool, last_intent: Optional[str]) -> str:
    """handed_off when a person was asked for; abandoned when the citizen's last message was not understood;
    otherwise resolved (the assistant answered every last question)."""
    if handed_off:
        return "handed_off"
    return "abandoned" if last_intent == FALLBACK_INTENT else "resolved"


def channel_condition(channel: str) -> ColumnElement:
    if channel == REST:
        return and_(*(not_(events_table.sender_starts_with(f"{p}:")) for p in IDENTIFIED_CHANNELS))
    return events_table.sender_starts_with(f"{channel}:")


def outcome_condition(outcome: str, handed_off: Set[str]) -> ColumnElement:
    is_handed_off = events_table.sender_in(handed_off)
    if outcome == "handed_off":
        return is_handed_off
    is_abandoned = events_table.sender_last_message_with(FALLBACK_INTENT)
    if outcome == "abandoned":
        return and_(not_(is_handed_off), is_abandoned)
    return and_(not_(is_handed_off), not_(is_abandoned))
