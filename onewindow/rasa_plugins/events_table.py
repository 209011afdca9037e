"""Rasa's SQL tracker store, read and pruned from outside Rasa (staff console, retention, /forget).

The tracker store is configured in endpoints.yml the way Rasa users know; this module turns
that section into an SQLAlchemy URL and describes Rasa's `events` table, so that the console
reads conversations from the one copy Rasa keeps rather than a second copy of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text
from sqlalchemy.engine import URL, Engine

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
