"""The settings layer (onewindow/settings/): one declaration per variable, one parser, docs/configuration.md made from it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.settings import settings_from_environment
from console.settings import ConsoleSettings
from onewindow.settings import (
    PROJECT_ROOT,
    REGISTRY,
    InvalidSetting,
    MissingApiSecret,
    Setting,
    checked_api_secret,
    database_url,
    rasa_jwt_secret,
)
from onewindow.settings import variables as setting
from onewindow.settings.__main__ import main as settings_command
from onewindow.settings.kinds import FLAG, NUMBER, PORT, WHOLE
from onewindow.settings.table import DOCUMENT, markdown_table, with_current_table

# --- the docs ----------------------------------------------------------------------------------


def test_docs_configuration_md_holds_the_table_the_settings_make() -> None:
    document = DOCUMENT.read_text()
    assert with_current_table(document) == document, "run `.venv/bin/python -m onewindow.settings --update-docs`"
    assert all(f"| `{entry.name}` |" in document for entry in REGISTRY)


def test_the_table_has_one_row_per_setting_with_its_default_and_readers() -> None:
    rows = [line for line in markdown_table().splitlines() if line.startswith("| `")]
    assert len(rows) == len(REGISTRY)
    assert "| `CONSOLE_PORT` | `5080` | a port number (1-65535) | the staff console's port | console, launcher |" in rows


# --- one declaration each, the defaults of today ------------------------------------------------


def test_each_variable_is_declared_once_but_rasa_url_whose_two_readers_differ() -> None:
    names = [entry.name for entry in REGISTRY]
    assert {name for name in names if names.count(name) > 1} == {"RASA_URL"}
    assert not set(setting.RASA_URL.readers) & set(setting.CONSOLE_RASA_URL.readers)


def test_every_default_reads_and_they_are_the_defaults_of_before() -> None:
    assert [entry.default_value for entry in REGISTRY]  # each default parses with its own type
    expected: Dict[Setting[Any], object] = {
        setting.RASA_PORT: 5005,
        setting.RASA_API_PORT: 5100,
        setting.ACTIONS_PORT: 5055,
        setting.VOICE_PORT: 9092,
        setting.VOICE_CONTROL_PORT: 9093,
        setting.CONSOLE_PORT: 5080,
        setting.RASA_URL: "http://127.0.0.1:5005",
        setting.CONSOLE_RASA_URL: "http://127.0.0.1:5100",
        setting.RASA_TIMEOUT: 8.0,
        setting.ONEWINDOW_BOOKING_DAYS: 60,
        setting.ONEWINDOW_CATALOGUE_TTL: 30.0,
        setting.ONEWINDOW_COUNTRY_CODE: "61",
        setting.ONEWINDOW_MESSAGES_PER_INSTANCE: 2,
        setting.ONEWINDOW_RETENTION_DAYS: 90,
        setting.CONSOLE_SESSION_MINUTES: 480,
        setting.CONSOLE_IDLE_MINUTES: 30,
        setting.CONSOLE_LOW_CONFIDENCE: 0.5,
        setting.CONSOLE_SECURE_COOKIES: False,
        setting.ONEWINDOW_SILENCE_ACTION: "person",
        setting.TELEGRAM_WEBHOOK_PORT: 8443,
        setting.RASA_ENDPOINTS: PROJECT_ROOT / "endpoints.yml",
        setting.ONEWINDOW_MODEL: PROJECT_ROOT / "models" / "onewindow.tar.gz",
        setting.TELEGRAM_TOKEN: None,
        setting.RASA_API_URL: None,
    }
    assert {entry.name: entry.default_value for entry in expected} == {entry.name: value for entry, value in expected.items()}
    assert setting.RASA_INSTANCE_PORT.read({"RASA_PORT": "6000"}) == 6100, "RASA_PORT + 100"


def test_the_views_of_the_console_and_the_bot_take_the_layers_defaults() -> None:
    console = ConsoleSettings.from_env({})
    assert (console.port, console.rasa_url, console.database_url) == (5080, "http://127.0.0.1:5100", database_url())
    assert ConsoleSettings.from_env({"CONSOLE_SECURE_COOKIES": "Yes", "RASA_URL": "http://h:1/"}).secure_cookies
    assert ConsoleSettings.from_env({"RASA_URL": "http://h:1/"}).rasa_url == "http://h:1"
    bot = settings_from_environment({"TELEGRAM_TOKEN": " 1:abc "})
    assert (bot.token, bot.rasa_url, bot.webhook_port) == ("1:abc", "http://127.0.0.1:5005", 8443)
    with pytest.raises(InvalidSetting, match="CONSOLE_PORT must be a port number"):
        ConsoleSettings.from_env({"CONSOLE_PORT": "abc"})


def test_no_module_reads_the_environment_but_the_settings_layer() -> None:
    allowed = {
        Path("onewindow/launcher.py"),  # hands its whole environment to supervisord
        Path("voice/recognition_worker.py"),  # passes PYTHONPATH on to its worker processes
    }
    reads = re.compile(r"os\.environ\.get|os\.environ\[|getenv\(|env\.get\(")
    found = [
        f"{path}:{number}"
        for package in ("onewindow", "actions", "bot", "voice", "console")
        for path in sorted((PROJECT_ROOT / package).rglob("*.py"))
        if path.relative_to(PROJECT_ROOT) not in allowed and "settings" not in path.relative_to(PROJECT_ROOT).parts[:2]
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if reads.search(line)
    ]
    assert found == []


# --- parsing and bad values ----------------------------------------------------------------------


def test_a_bad_value_names_the_variable_what_it_must_be_and_what_it_got() -> None:
    with pytest.raises(InvalidSetting) as error:
        setting.CONSOLE_PORT.read({"CONSOLE_PORT": "abc"})
    assert str(error.value) == "CONSOLE_PORT must be a port number (1-65535), got 'abc'"
    with pytest.raises(InvalidSetting, match="RASA_TIMEOUT must be a number, got 'soon'"):
        setting.RASA_TIMEOUT.read({"RASA_TIMEOUT": "soon"})
    with pytest.raises(InvalidSetting, match="CONSOLE_SECURE_COOKIES must be yes or no"):
        setting.CONSOLE_SECURE_COOKIES.read({"CONSOLE_SECURE_COOKIES": "maybe"})
    with pytest.raises(InvalidSetting, match="ONEWINDOW_LOG_LEVEL must be a log level"):
        setting.ONEWINDOW_LOG_LEVEL.read({"ONEWINDOW_LOG_LEVEL": "loud"})
    with pytest.raises(InvalidSetting, match="RASA_INSTANCES must be a whole number \\(1 or more\\), got '0'"):
        setting.RASA_INSTANCES.read({"RASA_INSTANCES": "0"})


def test_blank_means_the_default_and_values_are_stripped() -> None:
    assert setting.CONSOLE_PORT.read({"CONSOLE_PORT": "  "}) == 5080
    assert setting.CONSOLE_PORT.read({"CONSOLE_PORT": " 6000 "}) == 6000
    assert setting.ONEWINDOW_COUNTRY_CODE.read({"ONEWINDOW_COUNTRY_CODE": "+44"}) == "44"
    assert setting.ONEWINDOW_LOG_LEVEL.read({"ONEWINDOW_LOG_LEVEL": "debug"}) == "DEBUG"
    assert setting.ONEWINDOW_SILENCE_ACTION.read({"ONEWINDOW_SILENCE_ACTION": " Hangup "}) == "hangup"


def test_a_setting_is_read_from_the_environment_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEWINDOW_BOOKING_DAYS", "14")
    assert setting.ONEWINDOW_BOOKING_DAYS.read() == 14 and setting.ONEWINDOW_BOOKING_DAYS.given()
    monkeypatch.setenv("ONEWINDOW_BOOKING_DAYS", "two weeks")
    assert settings_command(["--check"]) == 1
    monkeypatch.delenv("ONEWINDOW_BOOKING_DAYS")
    assert setting.ONEWINDOW_BOOKING_DAYS.read() == 60 and not setting.ONEWINDOW_BOOKING_DAYS.given()


@given(st.integers())
def test_a_port_is_any_number_from_1_to_65535(number: int) -> None:
    if 1 <= number <= 65535:
        assert PORT.parse("P", str(number)) == number
    else:
        with pytest.raises(InvalidSetting, match=f"P must be a port number \\(1-65535\\), got '{number}'"):
            PORT.parse("P", str(number))


@given(st.text())
def test_a_whole_number_is_digits_and_anything_else_is_refused_with_the_text(text: str) -> None:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value >= 0:
        assert WHOLE.parse("W", text) == value
    else:
        with pytest.raises(InvalidSetting) as error:
            WHOLE.parse("W", text)
        assert str(error.value) == f"W must be a whole number (0 or more), got {text!r}"


@given(st.floats(allow_nan=False))
def test_a_number_reads_back_what_was_written(number: float) -> None:
    assert NUMBER.parse("N", repr(number)) == number


@given(st.sampled_from(["1", "true", "yes", "0", "false", "no"]), st.booleans())
def test_a_flag_is_yes_or_no_in_any_case(word: str, upper: bool) -> None:
    assert FLAG.parse("F", word.upper() if upper else word) == (word in ("1", "true", "yes"))


# --- the HTTP API's secret -----------------------------------------------------------------------


def test_the_api_secret_must_be_set_and_long_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RASA_JWT_SECRET", raising=False)
    with pytest.raises(MissingApiSecret, match="RASA_JWT_SECRET is not set"):
        rasa_jwt_secret()
    monkeypatch.setenv("RASA_JWT_SECRET", "short")
    with pytest.raises(MissingApiSecret, match="RASA_JWT_SECRET is too short"):
        rasa_jwt_secret()
    monkeypatch.setenv("RASA_JWT_SECRET", "k" * 32)
    assert rasa_jwt_secret() == "k" * 32 == checked_api_secret("k" * 32)
