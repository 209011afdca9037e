"""Shared fixtures: real databases (SQLite file and PostgreSQL) seeded from the real catalogue."""
from __future__ import annotations

import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from actions import shared
from onewindow.__main__ import seed
from onewindow.backend import ServiceBackend
from onewindow.db import make_engine

POSTGRES_ADMIN_URL = os.environ.get("ONEWINDOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _postgres_database() -> Iterator[str]:
    """Create a throwaway PostgreSQL database; skip the test when the server is unreachable."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
    name = f"onewindow_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # noqa: BLE001 - any connection failure means no server here
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {error.__class__.__name__}")
    url = make_url(POSTGRES_ADMIN_URL).set(database=name)
    try:
        yield str(url)
    finally:
        with admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind (the SQLite file is the embedded default)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'onewindow.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def seeded_url(database_url: str) -> str:
    """The database migrated and loaded with the real catalogue and the sample applications."""
    seed(database_url, demo=True)
    return database_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'onewindow.db'}"
    seed(url, demo=True)
    return url


@pytest.fixture
def backend(seeded_url: str) -> Iterator[ServiceBackend]:
    engine = make_engine(seeded_url)
    yield ServiceBackend(engine)
    engine.dispose()


@pytest.fixture
def clocked_backend(seeded_url: str) -> Iterator[Callable[[datetime], ServiceBackend]]:
    """Build a backend whose clock reads a chosen moment."""
    engine = make_engine(seeded_url)
    yield lambda moment: ServiceBackend(engine, clock=lambda: moment)
    engine.dispose()


@pytest.fixture
def action_backend(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServiceBackend]:
    """Point the actions' backend at a fresh seeded SQLite database."""
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    shared.backend.cache_clear()
    yield shared.backend()
    shared.backend().engine.dispose()
    shared.backend.cache_clear()
