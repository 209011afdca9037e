"""Shared fixtures: real databases (SQLite file and PostgreSQL) seeded from the real catalogue, the trained model,
the real stack (tests/fixtures_stack.py); and the markers a test gets from the fixtures it uses."""

from __future__ import annotations

import os
import sqlite3
import uuid
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Callable, Dict, Generator, Iterator, List

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from actions import shared
from harness.stack import MODEL
from onewindow import settings
from onewindow.__main__ import seed
from onewindow.backend import ServiceBackend
from onewindow.service_catalogue import Catalogue, load_catalogue
from onewindow.storage.db import make_engine
from tests.citizen_simulator import GOALS_REPORT

pytest_plugins = ["tests.fixtures_stack"]  # the real stack: `stack` and `running_stack`, and the `stack` marker

MARKERS_BY_FIXTURE: Dict[str, str] = {  # a test using the fixture gets the marker (markers: pyproject.toml)
    "stack": "stack",
    "running_stack": "stack",
    "shared_stack": "stack",
    "trained_model": "model",
    "console": "console",
    "browser": "browser",
}
POSTGRES_ADMIN_URL = os.environ.get("ONEWINDOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE_KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def postgres_database() -> Generator[str, None, None]:
    """Create a throwaway PostgreSQL database; skip the test when the server is unreachable."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
    name = f"onewindow_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # any connection failure means no server here
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {error.__class__.__name__}")
    url = make_url(POSTGRES_ADMIN_URL).set(database=name)
    try:
        yield str(url)
    finally:
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def empty_database(kind: str, folder: Path) -> Generator[str, None, None]:
    """An empty database of `kind`: an SQLite file in `folder`, or a throwaway PostgreSQL database."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'onewindow.db'}"
    else:
        yield from postgres_database()


def copy_sqlite(source: Path, url: str) -> None:
    """Copy the SQLite file `source` to the file of `url` (the backup API: consistent even in WAL mode)."""
    target = make_url(url).database
    assert target, url
    with closing(sqlite3.connect(source)) as original, closing(sqlite3.connect(target)) as copy:
        original.backup(copy)


def seed_into(url: str, seeded_sqlite: Path) -> None:
    """`seed(url, demo=True)`: for SQLite a copy of the run's seeded file, which takes milliseconds, not seconds."""
    if url.startswith("sqlite"):
        copy_sqlite(seeded_sqlite, url)
    else:
        seed(url, demo=True)


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


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    """Mark every test by the fixtures it uses (MARKERS_BY_FIXTURE), so that `make test-fast` can leave it out."""
    for item in items:
        for fixture in sorted(MARKERS_BY_FIXTURE.keys() & set(getattr(item, "fixturenames", ()))):
            item.add_marker(MARKERS_BY_FIXTURE[fixture])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    """The citizen goals' table and totals (tests/test_citizen_goals.py), shown at the end of `make test`."""
    text = config.stash.get(GOALS_REPORT, None)
    if text:
        terminalreporter.section("citizen goals")
        terminalreporter.write_line(text)


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The trained model (models/onewindow.tar.gz, `make train`); tests using it are marked `model`."""
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: `make train` first")
    return MODEL


@pytest.fixture(scope="session")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file seeded once per run with `seed(url, demo=True)`; the seeded fixtures below copy it."""
    path = tmp_path_factory.mktemp("seeded") / "onewindow.db"
    seed(f"sqlite:///{path}", demo=True)
    return path


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    """The real catalogue as read from the YAML files in catalogue/."""
    return load_catalogue(settings.PROJECT_ROOT / "catalogue")


@pytest.fixture(params=DATABASE_KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind (the SQLite file is the embedded default)."""
    yield from empty_database(request.param, tmp_path)


@pytest.fixture
def seeded_url(database_url: str, seeded_sqlite: Path) -> str:
    """The database migrated and loaded with the real catalogue and the sample applications."""
    seed_into(database_url, seeded_sqlite)
    return database_url


@pytest.fixture
def sqlite_url(tmp_path: Path, seeded_sqlite: Path) -> str:
    url = f"sqlite:///{tmp_path / 'onewindow.db'}"
    seed_into(url, seeded_sqlite)
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
def module_seeded_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, seeded_sqlite: Path
) -> Iterator[str]:
    """A database of each kind seeded once per test module with `seed(url, demo=True)`, shared by its tests."""
    database = empty_database(request.param, tmp_path_factory.mktemp(request.path.stem))
    try:
        url = next(database)
        seed_into(url, seeded_sqlite)
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
