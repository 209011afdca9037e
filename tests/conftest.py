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
from onewindow import settings
from onewindow.__main__ import seed
from onewindow.backend import ServiceBackend
from onewindow.service_catalogue import Catalogue, load_catalogue
from onewindow.storage.db import make_engine
from tests.citizen_simulator import GOALS_REPORT

POSTGRES_ADMIN_URL = os.environ.get("ONEWINDOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE_KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def postgres_database() -> Iterator[str]:
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
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def empty_database(kind: str, folder: Path) -> Iterator[str]:
    """An empty database of `kind`: an SQLite file in `folder`, or a throwaway PostgreSQL database."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'onewindow.db'}"
    else:
        yield from postgres_database()


def backend_on(url: str) -> Iterator[ServiceBackend]:
    """A ServiceBackend on `url`, its engine disposed when the generator resumes."""
    engine = make_engine(url)
    yield ServiceBackend(engine)
    engine.dispose()


def point_actions_at(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServiceBackend]:
    """Point the actions' backend (actions.shared.backend) at `url`; undo it when the generator resumes."""
    monkeypatch.setenv("DATABASE_URL", url)
    shared.backend.cache_clear()
    yield shared.backend()
    shared.backend().engine.dispose()
    shared.backend.cache_clear()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """The citizen goals' table and totals (tests/test_citizen_goals.py), shown at the end of `make test`."""
    text = config.stash.get(GOALS_REPORT, None)
    if text:
        terminalreporter.section("citizen goals")
        terminalreporter.write_line(text)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    """The real catalogue as read from the YAML files in catalogue/."""
    return load_catalogue(settings.PROJECT_ROOT / "catalogue")


@pytest.fixture(params=DATABASE_KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind (the SQLite file is the embedded default)."""
    yield from empty_database(request.param, tmp_path)


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
    yield from backend_on(seeded_url)


@pytest.fixture
def clocked_backend(seeded_url: str) -> Iterator[Callable[[datetime], ServiceBackend]]:
    """Build a backend whose clock reads a chosen moment."""
    engine = make_engine(seeded_url)
    yield lambda moment: ServiceBackend(engine, clock=lambda: moment)
    engine.dispose()


@pytest.fixture
def action_backend(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServiceBackend]:
    """Point the actions' backend at a fresh seeded SQLite database."""
    yield from point_actions_at(sqlite_url, monkeypatch)


# --- one seeded database of each kind per module, for tests that only read or that look up
# --- only the rows they wrote themselves (seeding takes seconds, so it is done once per module)


@pytest.fixture(scope="module", params=DATABASE_KINDS)
def module_seeded_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of each kind seeded once per test module with `seed(url, demo=True)`, shared by its tests."""
    database = empty_database(request.param, tmp_path_factory.mktemp(request.path.stem))
    try:
        url = next(database)
        seed(url, demo=True)
        yield url
    finally:
        database.close()


@pytest.fixture
def module_backend(module_seeded_url: str) -> Iterator[ServiceBackend]:
    """A ServiceBackend on the module's shared seeded database."""
    yield from backend_on(module_seeded_url)


@pytest.fixture
def module_action_backend(module_seeded_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ServiceBackend]:
    """The actions' backend pointed at the module's shared seeded database."""
    yield from point_actions_at(module_seeded_url, monkeypatch)
