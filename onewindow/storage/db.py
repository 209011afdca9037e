"""Engine and sessions for SQLite (default) or PostgreSQL (`DATABASE_URL`).

PostgreSQL engines have a pool of stated size (DATABASE_POOL_SIZE + DATABASE_MAX_OVERFLOW per process, checked
before use, recycled after DATABASE_POOL_RECYCLE seconds), a connect timeout, and ride out a lost connection
(onewindow/storage/reconnect.py); sessions run a read again on a new connection when nothing was written yet.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Optional

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import QueuePool

from onewindow import settings
from onewindow.infra.metrics import count_database_errors
from onewindow.settings import variables
from onewindow.storage import reconnect


def make_engine(url: Optional[str] = None, pool_size: Optional[int] = None, max_overflow: Optional[int] = None) -> Engine:
    """Create an engine; SQLite files get WAL, foreign keys and a busy timeout; PostgreSQL the pool and reconnecting
    described above (`pool_size`, `max_overflow`: other figures than the settings', e.g. the tracker store's)."""
    url = url or settings.database_url()
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return postgres_engine(url, pool_size, max_overflow)
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


def postgres_engine(url: str, pool_size: Optional[int] = None, max_overflow: Optional[int] = None) -> Engine:
    """A PostgreSQL engine with the stated pool, a connect timeout and reconnecting with backoff."""
    name = make_url(url).database or "default"
    engine = create_engine(
        url,
        future=True,
        pool_size=variables.DATABASE_POOL_SIZE.read() if pool_size is None else pool_size,
        max_overflow=variables.DATABASE_MAX_OVERFLOW.read() if max_overflow is None else max_overflow,
        pool_pre_ping=True,
        pool_recycle=variables.DATABASE_POOL_RECYCLE.read(),
        connect_args={"connect_timeout": variables.DATABASE_CONNECT_TIMEOUT.read()},
    )
    count_database_errors(engine, name)
    reconnect.install(engine, name, variables.DATABASE_CONNECT_RETRY_SECONDS.read())
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
    """Sessions that run a read again after a lost connection while their transaction has written nothing."""
    return sessionmaker(bind=engine, future=True, expire_on_commit=False, class_=reconnect.ReadRetrySession)


def create_missing_databases(*urls: str) -> None:
    """CREATE DATABASE for each PostgreSQL URL whose database does not exist yet (SQLite files need nothing)."""
    for raw in urls:
        url = make_url(raw)
        if url.get_backend_name() != "postgresql":
            continue
        admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                found = connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database})
                if not found:
                    quoted = str(url.database).replace('"', '""')
                    connection.execute(text(f'CREATE DATABASE "{quoted}"'))
        finally:
            admin.dispose()
