"""`python -m onewindow migrate` run by several instances at once on one fresh PostgreSQL database.

The test holds the migrations' advisory lock while two processes start, sees both waiting for it in pg_locks, then
lets go: both start migrating at the same moment. Both exit 0, the schema is at Alembic's head with one row in
alembic_version, and the tracker store's `events` table is there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Iterator

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from onewindow import settings
from onewindow.storage.migrate import SCHEMA_LOCK_KEY, alembic_config
from tests.conftest import postgres_database

pytestmark = pytest.mark.postgres
WAIT_SECONDS = 120  # for the processes to start (importing OneWindow) and to finish


@pytest.fixture
def fresh_database() -> Iterator[str]:
    yield from postgres_database()


def waiting_for_the_lock(connection: object, database: str) -> int:
    query = text(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = :database"
    )
    return int(connection.execute(query, {"database": database}).scalar())  # type: ignore[attr-defined]


def test_two_instances_migrating_at_once_both_succeed_and_migrate_once(fresh_database: str) -> None:
    engine = create_engine(fresh_database, future=True)
    database = engine.url.database or ""
    env = {**os.environ, "DATABASE_URL": fresh_database, "TRACKER_DATABASE_URL": fresh_database}
    with engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        runs = [
            subprocess.Popen(
                [sys.executable, "-m", "onewindow", "migrate"],
                cwd=settings.PROJECT_ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(2)
        ]
        deadline = time.monotonic() + WAIT_SECONDS
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as watcher:  # fresh statistics
            while waiting_for_the_lock(watcher, database) < 2:
                assert all(run.poll() is None for run in runs), "a migration ran without waiting for the lock"
                assert time.monotonic() < deadline, "the migrations never waited for the advisory lock"
                time.sleep(0.1)
        holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
        holder.commit()
    outputs = [run.communicate(timeout=WAIT_SECONDS)[0].decode() for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head]
    assert "events" in inspect(engine).get_table_names()
    engine.dispose()
