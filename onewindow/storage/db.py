"""Engine and sessions for SQLite (default) or PostgreSQL (`DATABASE_URL`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Optional

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

from onewindow import settings
from onewindow.infra.metrics import count_database_errors


def make_engine(url: Optional[str] = None) -> Engine:
    """Create an engine; SQLite files get WAL, foreign keys and a busy timeout."""
    url = url or settings.database_url()
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(url, future=True, pool_pre_ping=True)
        count_database_errors(engine, parsed.database or "default")
        return engine
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        future=True,
        poolclass=QueuePool,
        pool_size=8,
        connect_args={"check_same_thread": False, "timeout": 30},
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    """Per connection: enforce foreign keys, wait for locks. WAL mode persists in the file."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def use_write_ahead_log(engine: Engine) -> None:
    """Let readers and one writer work at once on an SQLite file (a setting stored in the file)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, future=True, expire_on_commit=False)
