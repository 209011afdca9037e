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


API_SECRET_VARIABLE = "RASA_JWT_SECRET"
MIN_API_SECRET_LENGTH = 32


class MissingApiSecret(SystemExit):
    """The key for Rasa's HTTP API is not configured; uncaught, it ends the process with its message."""


def rasa_jwt_secret() -> str:
    """`RASA_JWT_SECRET`: the key that signs the tokens of Rasa's HTTP API (onewindow/infra/api_auth.py).

    No default: `make run` generates one into var/api-secret; a server that needs it and lacks it
    refuses to start. At least 32 characters (HS256 keys should be as long as the hash).
    """
    return checked_api_secret(os.environ.get(API_SECRET_VARIABLE, ""))


def checked_api_secret(secret: str) -> str:
    """`secret` if it can sign the HTTP API's tokens, else MissingApiSecret saying how to set RASA_JWT_SECRET."""
    if len(secret) < MIN_API_SECRET_LENGTH:
        raise MissingApiSecret(
            f"{API_SECRET_VARIABLE} is {'too short' if secret else 'not set'}: set it to a random string of at least "
            f"{MIN_API_SECRET_LENGTH} characters (for example `openssl rand -hex 32`); `make run` makes one in var/api-secret"
        )
    return secret
