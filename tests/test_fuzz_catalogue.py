"""Catalogue files, generated: whatever is in the YAML, the loader answers with problems that name the file (and the
field), never a traceback from inside; whatever the validator accepts, seeding stores, on SQLite and PostgreSQL;
`python -m onewindow seed` on a broken folder exits 1 with the problems and no traceback.

The real catalogue is copied and one thing in it is changed: a field of an entry set to a generated value of any
type (huge, wrong, NaN, nested), a field removed or an unknown one added, a whole file replaced by a generated
document, by a YAML alias bomb or by bytes that are not UTF-8.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from onewindow import settings
from onewindow.service_catalogue import CatalogueError, load_catalogue
from onewindow.service_catalogue.loader import FILES
from onewindow.service_catalogue.seed import seed_catalogue
from onewindow.storage.db import make_engine, make_sessionmaker
from tests.conftest import DATABASE_KINDS, empty_database
from tests.fuzz_strategies import YAML_BOMB, fuzz_settings, texts, yaml_values

CATALOGUE = settings.PROJECT_ROOT / "catalogue"
TOP_KEYS = {"city.yml": "city", "offices.yml": "offices", "services.yml": "services", "life_events.yml": "life_events"}
TOP_KEYS["report_categories.yml"] = "report_categories"
ORIGINAL = {name: (CATALOGUE / name).read_text(encoding="utf-8") for name in FILES}


def yaml_text(document: Any) -> str:
    out = io.StringIO()
    YAML(typ="rt").dump(document, out)
    return out.getvalue()


def read(name: str) -> Any:
    return YAML(typ="rt").load(ORIGINAL[name])


@st.composite
def broken_catalogues(draw: st.DrawFn) -> dict:
    """{file name: new content (str or bytes)} for the one file changed."""
    name = draw(st.sampled_from(FILES), label="file")
    how = draw(st.sampled_from(["field", "remove", "unknown field", "document", "bomb", "not utf-8"]), label="how")
    if how == "document":
        return {name: yaml_text(draw(yaml_values, label="document"))}
    if how == "bomb":
        return {name: f"{TOP_KEYS[name]}: *i\n" + YAML_BOMB}
    if how == "not utf-8":
        cut = draw(st.integers(0, len(ORIGINAL[name])), label="where")
        return {name: ORIGINAL[name][:cut].encode() + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"])) + b"\n"}
    document = read(name)
    top = document[TOP_KEYS[name]]
    entry = top if isinstance(top, dict) else draw(st.sampled_from(top), label="entry")
    if how == "field":
        entry[draw(st.sampled_from(sorted(entry)), label="field")] = draw(yaml_values, label="value")
    elif how == "remove":
        del entry[draw(st.sampled_from(sorted(entry)), label="field")]
    else:
        entry[draw(texts, label="unknown field")] = draw(yaml_values, label="value")
    return {name: yaml_text(document)}


def write_copy(folder: Path, changes: dict) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(CATALOGUE, folder, ignore=shutil.ignore_patterns("*.md"))
    for name, content in changes.items():
        path = folder / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content, encoding="utf-8")
    return folder


@pytest.fixture(scope="module", params=DATABASE_KINDS)
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated empty service database; each example seeds it in a transaction that is rolled back."""
    from onewindow.__main__ import migrate

    generator = empty_database(request.param, tmp_path_factory.mktemp("fuzz-catalogue-db"))
    url = next(generator)
    migrate(url)
    yield url
    generator.close()


@fuzz_settings(40)
@given(changes=broken_catalogues())
@example(changes={"offices.yml": ORIGINAL["offices.yml"].replace("windows: 6", "windows: 1000000000000000000000", 1)})
@example(changes={"services.yml": ORIGINAL["services.yml"].replace("fee: 0", "fee: .nan", 1)})
@example(changes={"services.yml": ORIGINAL["services.yml"].replace("fee: 0", "fee: .inf", 1)})
@example(changes={"city.yml": ORIGINAL["city.yml"].replace("name: ", "name: " + "x" * 300, 1)})
@example(changes={"offices.yml": ORIGINAL["offices.yml"].replace("phone: ", "phone: " + "9" * 60, 1)})
@example(changes={"services.yml": b"services:\n  - id: caf\xe9\n"})
@example(changes={"life_events.yml": "life_events: *i\n" + YAML_BOMB})
def test_any_catalogue_is_loaded_and_stored_or_refused_naming_file_and_field(
    database: str, tmp_path_factory: pytest.TempPathFactory, changes: dict
) -> None:
    folder = write_copy(tmp_path_factory.getbasetemp() / "fuzz-catalogue-copy", changes)
    try:
        catalogue = load_catalogue(folder)
    except CatalogueError as error:
        assert error.problems, "a refusal lists its problems"
        for problem in error.problems:
            assert any(problem.startswith(str(folder / name)) for name in FILES), f"no file named: {problem}"
        return
    engine = make_engine(database)
    try:
        with make_sessionmaker(engine)() as session:
            seed_catalogue(session, catalogue)  # what the validator accepted, the database stores
            session.flush()
            session.rollback()
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "changes",
    [
        {"services.yml": b"services:\n  - id: caf\xe9\n"},
        {"offices.yml": "offices: *i\n" + YAML_BOMB},
        {"services.yml": ORIGINAL["services.yml"].replace("fee: 0", "fee: .nan", 1)},
        {"offices.yml": ORIGINAL["offices.yml"].replace("windows: 6", "windows: 1000000000000000000000", 1)},
    ],
    ids=["not utf-8", "alias bomb", "fee NaN", "huge windows"],
)
def test_seed_command_on_a_broken_folder_says_what_is_wrong_without_a_traceback(tmp_path: Path, changes: dict) -> None:
    folder = write_copy(tmp_path / "catalogue", changes)
    [name] = changes
    env = {
        **os.environ,
        "ONEWINDOW_CATALOGUE": str(folder),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'seeded.db'}",
        "PYTHONPATH": str(settings.PROJECT_ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "onewindow", "seed"],
        cwd=settings.PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and str(folder / name) in done.stderr, done.stderr[-1500:]
