"""RASA_JWT_SECRET: the key that signs the tokens of Rasa's HTTP API (onewindow/infra/api_auth.py)."""

from __future__ import annotations

from onewindow.settings.variables import RASA_JWT_SECRET

API_SECRET_VARIABLE = RASA_JWT_SECRET.name
MIN_API_SECRET_LENGTH = 32


class MissingApiSecret(SystemExit):
    """The key for Rasa's HTTP API is not configured; uncaught, it ends the process with its message."""


def rasa_jwt_secret() -> str:
    """`RASA_JWT_SECRET`, checked. No default: `make run` generates one into var/api-secret; a server that needs it
    and lacks it refuses to start. At least 32 characters (HS256 keys should be as long as the hash)."""
    return checked_api_secret(RASA_JWT_SECRET.read())


def checked_api_secret(secret: str) -> str:
    """`secret` if it can sign the HTTP API's tokens, else MissingApiSecret saying how to set RASA_JWT_SECRET."""
    if len(secret) < MIN_API_SECRET_LENGTH:
        raise MissingApiSecret(
            f"{API_SECRET_VARIABLE} is {'too short' if secret else 'not set'}: set it to a random string of at least "
            f"{MIN_API_SECRET_LENGTH} characters (for example `openssl rand -hex 32`); `make run` makes one in var/api-secret"
        )
    return secret
