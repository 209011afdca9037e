"""`python -m onewindow migrate`: the service database's schema brought to Alembic's head, and the tracker store's
`events` table made ready, safe when several instances run it at once.

On PostgreSQL each step holds a transaction-level advisory lock on a fixed key for its whole transaction (DDL is
transactional there): the first process migrates, the others wait for its commit, then find nothing to do. SQLite
files are local to one host and take their own write lock.
"""

from __future__ import annotations

from typing import Optional

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from onewindow import settings
from onewindow.storage.db import make_engine, use_write_ahead_log

# pg_advisory_xact_lock keys (bigint): fixed, so that every instance of every version waits for the same lock
SCHEMA_LOCK_KEY = 0x4F4E4557494E0001  # "ONEWIN" 1: the service database's migrations
TRACKER_LOCK_KEY = 0x4F4E4557494E0002  # "ONEWIN" 2: creating Rasa's events table


def alembic_config() -> Config:
    config = Config(str(settings.PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(settings.PROJECT_ROOT / "migrations"))
    return config


def lock_for_migrating(connection: Connection, key: int) -> None:
    """On PostgreSQL: wait for the advisory lock `key`, held until this transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def migrate(url: Optional[str] = None) -> None:
    """Bring the service database's schema (`url` or DATABASE_URL) up to date with Alembic."""
    config = alembic_config()
    engine = make_engine(url)
    use_write_ahead_log(engine)
    try:
        with engine.begin() as connection:
            lock_for_migrating(connection, SCHEMA_LOCK_KEY)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


def prepare_tracker_store(url: str) -> None:
    """Create Rasa's `events` table (and its index) in the tracker store at `url` if it is not there yet."""
    from onewindow.rasa_plugins.events_table import metadata

    engine = make_engine(url)
    use_write_ahead_log(engine)
    try:
        with engine.begin() as connection:
            lock_for_migrating(connection, TRACKER_LOCK_KEY)
            metadata.create_all(connection)
    finally:
        engine.dispose()
