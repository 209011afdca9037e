"""OneWindow's configuration: environment variables, each declared once in variables.py with its type and default.

Read a setting with `VARIABLE.read()` (os.environ, read at that moment) or `VARIABLE.read(env)`; a bad value raises
InvalidSetting naming the variable. The functions below are the shared settings most modules need.
docs/configuration.md lists them all (generated: `python -m onewindow.settings --update-docs`).
"""

from __future__ import annotations

from pathlib import Path

from onewindow.settings.api_secret import (
    API_SECRET_VARIABLE,
    MIN_API_SECRET_LENGTH,
    MissingApiSecret,
    checked_api_secret,
    rasa_jwt_secret,
)
from onewindow.settings.kinds import InvalidSetting
from onewindow.settings.registry import REGISTRY, Setting
from onewindow.settings.variables import (
    DATABASE_URL,
    LOOPBACK,
    ONEWINDOW_BOOKING_DAYS,
    ONEWINDOW_CATALOGUE,
    ONEWINDOW_CATALOGUE_TTL,
    ONEWINDOW_COUNTRY_CODE,
    PROJECT_ROOT,
)

__all__ = [
    "API_SECRET_VARIABLE",
    "LOOPBACK",
    "MIN_API_SECRET_LENGTH",
    "PROJECT_ROOT",
    "REGISTRY",
    "InvalidSetting",
    "MissingApiSecret",
    "Setting",
    "booking_horizon_days",
    "catalogue_dir",
    "catalogue_ttl_seconds",
    "checked_api_secret",
    "country_calling_code",
    "database_url",
    "rasa_jwt_secret",
]


def database_url() -> str:
    """`DATABASE_URL`, or an SQLite file under var/ (the embedded default)."""
    return DATABASE_URL.read()


def catalogue_dir() -> Path:
    """`ONEWINDOW_CATALOGUE`, or the catalogue/ folder of this project."""
    return ONEWINDOW_CATALOGUE.read()


def booking_horizon_days() -> int:
    """How many days ahead citizens may book (`ONEWINDOW_BOOKING_DAYS`)."""
    return ONEWINDOW_BOOKING_DAYS.read()


def catalogue_ttl_seconds() -> float:
    """How long a running server keeps its in-memory copy of the catalogue (`ONEWINDOW_CATALOGUE_TTL`)."""
    return ONEWINDOW_CATALOGUE_TTL.read()


def country_calling_code() -> str:
    """The city's country calling code (`ONEWINDOW_COUNTRY_CODE`, default 61): "+61 412..." is stored as "0412..."."""
    return ONEWINDOW_COUNTRY_CODE.read()
