"""Tokens for Rasa's HTTP API: short-lived HS256 JWTs with the role "admin", sent as `Authorization: Bearer`.

Rasa started with `--jwt-secret` (onewindow/rasa_plugins/server.py) serves an HTTP API route only to a token
signed with that secret whose payload has `user.role` "admin" (rasa/server.py `requires_auth`; the
role "user" would open the one conversation named by `user.username`: OneWindow never issues it).
HAProxy's internal listener (onewindow/infra/haproxy.py) checks the same before forwarding anything.
A header, not Rasa's `?token=`: query strings end up in access logs.

    RASA_JWT_SECRET=$(cat var/api-secret) .venv/bin/python -m onewindow.infra.api_auth   # prints a token for curl
"""

from __future__ import annotations

import time
from typing import Dict, Optional, Tuple

import jwt

ALGORITHM = "HS256"
LIFETIME_SECONDS = 300
ADMIN = "admin"


def api_token(secret: str, role: str = ADMIN, lifetime_seconds: float = LIFETIME_SECONDS) -> str:
    """A token for Rasa's HTTP API, valid for `lifetime_seconds` (negative: already expired, for tests)."""
    now = int(time.time())
    payload = {"user": {"username": "onewindow", "role": role}, "iat": now, "exp": now + int(lifetime_seconds)}
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def authorization(secret: str) -> Dict[str, str]:
    """The header that authenticates one request to Rasa's HTTP API."""
    return {"Authorization": f"Bearer {api_token(secret)}"}


def refusal(secret: str, header: Optional[str]) -> Optional[Tuple[int, str]]:
    """None when the Authorization `header` carries a valid admin token, else (401 or 403, why)."""
    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return 401, "a bearer token is required"
    try:
        payload = jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp"]})
    except jwt.ExpiredSignatureError:
        return 401, "the token has expired"
    except jwt.InvalidTokenError:
        return 401, "the token is not valid"
    user = payload.get("user")
    if not isinstance(user, dict) or user.get("role") != ADMIN:
        return 403, "the token's role may not use the HTTP API"
    return None


if __name__ == "__main__":
    from onewindow.settings import rasa_jwt_secret

    print(api_token(rasa_jwt_secret()))
