"""Rasa's SQL tracker store, read and pruned from outside Rasa: every access to Rasa's `events` table.

The tracker store is configured in endpoints.yml the way Rasa users know; this module turns
that section into an SQLAlchemy URL, describes Rasa's `events` table (the only declaration of it
outside Rasa) and holds every query on it that OneWindow runs itself: the staff console's pages and
statistics read conversations from the one copy Rasa keeps rather than a second copy of their own,
and retention and /forget delete from it. Readers take an open connection (several reads share
one); `Row`s have the table's column names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Collection, Dict, List, Optional, Sequence, Set, Tuple

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, and_, case, cast, delete, func, or_, select
from sqlalchemy.engine import URL, Connection, Engine, Row
from sqlalchemy.sql import ColumnElement, Select

from onewindow.settings import PROJECT_ROOT
from onewindow.storage.db import make_engine, use_write_ahead_log

metadata = MetaData()

# the table rasa.core.tracker_store.SQLTrackerStore creates (Rasa 3.6): one row per event,
# `data` is the event as JSON, `timestamp` seconds since the epoch
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255), nullable=False, index=True),
    Column("type_name", String(255), nullable=False),
    Column("timestamp", Float),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text),
)


LEAN_SQL_STORE = "onewindow.rasa_plugins.tracker_store.LeanSQLTrackerStore"
SQL_STORE_TYPES = ("sql", LEAN_SQL_STORE.lower())


class TrackerStoreConfigError(ValueError):
    """The tracker_store section of endpoints.yml is not an SQL store this module can read."""


def tracker_store_config(endpoints: Path) -> Dict[str, Any]:
    """The `tracker_store` section of `endpoints`, with ${ENV} variables filled in as Rasa does."""
    from rasa.utils.endpoints import read_endpoint_config

    config = read_endpoint_config(str(endpoints), "tracker_store")
    if config is None or str(config.type or "").lower() not in SQL_STORE_TYPES:
        raise TrackerStoreConfigError(
            f"{endpoints}: tracker_store must be `type: SQL` or `type: {LEAN_SQL_STORE}` for transcripts"
        )
    return {"url": config.url, **config.kwargs}


def tracker_database_url(endpoints: Path = PROJECT_ROOT / "endpoints.yml") -> str:
    """The database Rasa keeps conversations in, as an SQLAlchemy URL (SQLite paths relative to the project)."""
    config = tracker_store_config(endpoints)
    url = config.get("url")
    if url and "://" in str(url):
        return str(url)
    dialect = str(config.get("dialect") or "sqlite")
    db = str(config.get("db") or "rasa.db")
    if dialect == "sqlite":
        path = Path(db)
        return f"sqlite:///{path if path.is_absolute() else PROJECT_ROOT / path}"
    return str(
        URL.create(
            dialect,
            username=config.get("username"),
            password=config.get("password"),
            host=url,
            port=config.get("port"),
            database=db,
        )
    )


def tracker_engine(endpoints: Path = PROJECT_ROOT / "endpoints.yml", url: Optional[str] = None) -> Engine:
    """An engine on the tracker store; creates the `events` table if Rasa has not yet (SQLite in WAL mode,
    so that the console reads while Rasa writes)."""
    engine = make_engine(url or tracker_database_url(endpoints))
    use_write_ahead_log(engine)
    metadata.create_all(engine)
    return engine


USER, BOT, SLOT = "user", "bot", "slot"  # the event type names the console reads
MESSAGE_COLUMNS = (events.c.id, events.c.sender_id, events.c.timestamp, events.c.intent_name, events.c.data)


# --- deleting (retention, /forget) ------------------------------------------------------------


def delete_conversation(tracker: Engine, sender_id: str) -> int:
    """Delete every stored event of `sender_id`; returns how many."""
    with tracker.begin() as connection:
        return int(connection.execute(delete(events).where(events.c.sender_id == sender_id)).rowcount)


def senders_idle_since(tracker: Engine, cutoff: float) -> List[str]:
    """Senders whose last stored event is older than `cutoff` (seconds since the epoch)."""
    query = select(events.c.sender_id).group_by(events.c.sender_id).having(func.max(events.c.timestamp) < cutoff)
    with tracker.connect() as connection:
        return list(connection.execute(query).scalars())


# --- conditions on a sender, for conversation_groups --------------------------------------------


def sender_in(senders: Collection[str]) -> ColumnElement:
    return events.c.sender_id.in_(list(senders))


def sender_starts_with(prefix: str) -> ColumnElement:
    return events.c.sender_id.like(f"{prefix}%")


def sender_said_intent(intent: str) -> ColumnElement:
    """The sender has a user message with `intent`."""
    return events.c.sender_id.in_(select(events.c.sender_id).where(events.c.type_name == USER, events.c.intent_name == intent))


def _last_message_with(intent: str) -> Select:
    """Senders whose last user message has `intent` (a select of sender ids)."""
    last_user = (
        select(func.max(events.c.id).label("id")).where(events.c.type_name == USER).group_by(events.c.sender_id).subquery()
    )
    return select(events.c.sender_id).where(events.c.id.in_(select(last_user.c.id)), events.c.intent_name == intent)


def sender_last_message_with(intent: str) -> ColumnElement:
    """The sender's last user message has `intent`."""
    return events.c.sender_id.in_(_last_message_with(intent))


def conversation_groups(conditions: Sequence[ColumnElement], since: Optional[float], until: Optional[float]) -> Select:
    """One row per sender meeting `conditions` with a user message and events in [since, until): sender_id, key
    (its first event id), first_at, last_at, user_messages; most recent first."""
    user_messages = func.sum(case((events.c.type_name == USER, 1), else_=0))
    last_at = func.max(events.c.timestamp)
    having = [user_messages > 0]
    if since is not None:
        having.append(last_at >= since)
    if until is not None:
        having.append(func.min(events.c.timestamp) < until)
    return (
        select(
            events.c.sender_id,
            func.min(events.c.id).label("key"),
            func.min(events.c.timestamp).label("first_at"),
            last_at.label("last_at"),
            user_messages.label("user_messages"),
        )
        .where(*conditions)
        .group_by(events.c.sender_id)
        .having(and_(*having))
        .order_by(last_at.desc(), events.c.sender_id)
    )


def count_of(connection: Connection, query: Select) -> int:
    """How many rows `query` gives."""
    return int(connection.execute(select(func.count()).select_from(query.subquery())).scalar() or 0)


# --- reading ------------------------------------------------------------------------------------


def senders_last_message_with(connection: Connection, intent: str) -> Set[str]:
    """Senders whose last user message has `intent`."""
    return set(connection.execute(_last_message_with(intent)).scalars())


def sender_of_event(connection: Connection, event_id: int) -> Optional[str]:
    return connection.execute(select(events.c.sender_id).where(events.c.id == event_id)).scalar()


def first_event_id(connection: Connection, sender_id: str) -> Optional[int]:
    return connection.execute(select(func.min(events.c.id)).where(events.c.sender_id == sender_id)).scalar()


def events_of(connection: Connection, senders: Collection[str], type_names: Sequence[str]) -> List[Row]:
    """Every column of the senders' events of `type_names`, in order."""
    query = select(events).where(events.c.sender_id.in_(list(senders)), events.c.type_name.in_(type_names))
    return list(connection.execute(query.order_by(events.c.id)))


def user_messages_of(connection: Connection, senders: Collection[str]) -> List[Row]:
    """The senders' user messages in order (MESSAGE_COLUMNS)."""
    query = select(*MESSAGE_COLUMNS).where(events.c.sender_id.in_(list(senders)), events.c.type_name == USER)
    return list(connection.execute(query.order_by(events.c.id)))


def user_messages_by_id(connection: Connection, event_ids: Sequence[int]) -> List[Row]:
    """The events with these ids (MESSAGE_COLUMNS), read 500 at a time."""
    rows: List[Row] = []
    for start in range(0, len(event_ids), 500):
        rows.extend(connection.execute(select(*MESSAGE_COLUMNS).where(events.c.id.in_(event_ids[start : start + 500]))))
    return rows


def user_message(connection: Connection, event_id: int) -> Optional[Row]:
    """The user message with this id (MESSAGE_COLUMNS), or None."""
    query = select(*MESSAGE_COLUMNS).where(events.c.id == event_id, events.c.type_name == USER)
    return connection.execute(query).first()


def slots_and_messages_of(connection: Connection, senders: Collection[str], slots: Sequence[str]) -> List[Row]:
    """The senders' user messages and the events setting `slots`, in order: sender_id, type_name, action_name, data."""
    wanted = or_(and_(events.c.type_name == SLOT, events.c.action_name.in_(slots)), events.c.type_name == USER)
    query = select(events.c.sender_id, events.c.type_name, events.c.action_name, events.c.data)
    return list(connection.execute(query.where(events.c.sender_id.in_(list(senders)), wanted).order_by(events.c.id)))


def messages_containing(connection: Connection, text: str) -> List[Row]:
    """sender_id and data of the user and bot messages whose stored JSON contains `text` as JSON writes it
    (case-insensitive; every message when `text` is empty)."""
    needle = json.dumps(text)[1:-1]
    query = select(events.c.sender_id, events.c.data).where(events.c.type_name.in_((USER, BOT)))
    if needle:
        query = query.where(events.c.data.ilike(f"%{escape_like(needle)}%", escape="\\"))
    return list(connection.execute(query))


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def user_messages_between(connection: Connection, since: float, until: float) -> List[Row]:
    """sender_id and timestamp of every user message in [since, until)."""
    query = select(events.c.sender_id, events.c.timestamp).where(*_user_messages_in(since, until))
    return list(connection.execute(query))


def top_intents(connection: Connection, since: float, until: float, limit: int) -> List[Tuple[str, int]]:
    """The `limit` intents of most user messages in [since, until), with how many."""
    query = (
        select(events.c.intent_name, func.count().label("n"))
        .where(*_user_messages_in(since, until), events.c.intent_name.isnot(None))
        .group_by(events.c.intent_name)
        .order_by(func.count().desc(), events.c.intent_name)
        .limit(limit)
    )
    return [(row.intent_name, int(row.n)) for row in connection.execute(query)]


def user_messages_with_intents(connection: Connection, since: float, until: float, intents: Sequence[str]) -> List[Row]:
    """The user messages in [since, until) with one of `intents` (MESSAGE_COLUMNS)."""
    query = select(*MESSAGE_COLUMNS).where(*_user_messages_in(since, until), events.c.intent_name.in_(intents))
    return list(connection.execute(query))


def unsure_or_with_intent(connection: Connection, threshold: float, intent: str) -> List[Row]:
    """id and intent_name of the user messages with `intent` or understood with less confidence than `threshold`."""
    confidence = _confidence(connection.dialect.name)
    query = select(events.c.id, events.c.intent_name).where(
        events.c.type_name == USER, or_(events.c.intent_name == intent, confidence < threshold)
    )
    return list(connection.execute(query))


def _user_messages_in(since: float, until: float) -> Tuple[ColumnElement, ...]:
    return (events.c.type_name == USER, events.c.timestamp >= since, events.c.timestamp < until)


def _confidence(dialect: str) -> ColumnElement:
    """The intent confidence inside a user event's JSON, as an SQL expression for `dialect`."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import JSONB

        return cast(cast(events.c.data, JSONB)["parse_data"]["intent"]["confidence"].astext, Float)
    return func.json_extract(events.c.data, "$.parse_data.intent.confidence")
