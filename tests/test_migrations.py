"""Alembic migrations: they build exactly the schema the models describe, and can be undone, on both databases."""

from __future__ import annotations

from typing import Iterator, List, Optional, Set

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from onewindow import settings
from onewindow.__main__ import migrate
from onewindow.storage.db import make_engine
from onewindow.storage.models import Base


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _config() -> Config:
    """The Alembic configuration `python -m onewindow migrate` uses."""
    config = Config(str(settings.PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(settings.PROJECT_ROOT / "migrations"))
    return config


def _run(engine: Engine, action: str, revision: str) -> None:
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def _differences(engine: Engine) -> List[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def _tables(engine: Engine) -> Set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _current(engine: Engine) -> Optional[str]:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_migrated_schema_matches_the_models(database_url: str, engine: Engine) -> None:
    migrate(database_url)
    assert _tables(engine) == set(Base.metadata.tables)
    assert _differences(engine) == []


def test_migrate_is_at_head_and_running_it_again_is_harmless(database_url: str, engine: Engine) -> None:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    migrate(database_url)
    migrate(database_url)
    assert _current(engine) == head
    assert _differences(engine) == []


def test_compare_detects_a_schema_that_differs(database_url: str, engine: Engine) -> None:
    """The check above can fail: a missing table is reported."""
    migrate(database_url)
    with engine.begin() as connection:
        Base.metadata.tables["chat_preferences"].drop(connection)
    kinds = [diff[0] for diff in _differences(engine) if isinstance(diff, tuple)]
    assert "add_table" in kinds


def test_downgrade_to_base_then_upgrade_again(database_url: str, engine: Engine) -> None:
    migrate(database_url)
    _run(engine, "downgrade", "base")
    assert _tables(engine) == set()
    assert _current(engine) is None
    _run(engine, "upgrade", "head")
    assert _tables(engine) == set(Base.metadata.tables)
    assert _differences(engine) == []
