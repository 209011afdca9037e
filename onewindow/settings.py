"""Configuration from environment variables, with defaults that run locally."""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """`DATABASE_URL`, or an SQLite file under var/ (the embedded default)."""
    default = f"sqlite:///{PROJECT_ROOT / 'var' / 'onewindow.db'}"
    return os.environ.get("DATABASE_URL", default)


def catalogue_dir() -> Path:
    """`ONEWINDOW_CATALOGUE`, or the catalogue/ folder of this project."""
    return Path(os.environ.get("ONEWINDOW_CATALOGUE", PROJECT_ROOT / "catalogue"))


def booking_horizon_days() -> int:
    """How many days ahead citizens may book (`ONEWINDOW_BOOKING_DAYS`)."""
    return int(os.environ.get("ONEWINDOW_BOOKING_DAYS", "60"))


def catalogue_ttl_seconds() -> float:
    """How long a running server keeps its in-memory copy of the catalogue (`ONEWINDOW_CATALOGUE_TTL`)."""
    return float(os.environ.get("ONEWINDOW_CATALOGUE_TTL", "30"))


def country_calling_code() -> str:
    """The city's country calling code (`ONEWINDOW_COUNTRY_CODE`, default 61): "+61 412..." is stored as "0412..."."""
    return os.environ.get("ONEWINDOW_COUNTRY_CODE", "61").lstrip("+")
