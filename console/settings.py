"""The staff console's configuration: a typed view of its settings in onewindow/settings/variables.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import FrozenSet, Mapping, Optional

from onewindow.settings import variables as setting


@dataclass(frozen=True)
class ConsoleSettings:
    host: str
    port: int
    database_url: str  # the service database (staff accounts, sessions, audit log, handoffs)
    endpoints: Path  # Rasa's endpoints.yml: the tracker store the transcripts come from
    rasa_url: str  # Rasa's HTTP API (StaffDesk replies and hand-backs go through it)
    rasa_api_secret: str = field(repr=False)  # signs the HTTP API's tokens (RASA_JWT_SECRET); serve refuses to start without
    session_minutes: int  # a login lasts this long
    secure_cookies: bool  # set the Secure flag (behind HTTPS)
    low_confidence: float = setting.CONSOLE_LOW_CONFIDENCE.default_value  # Improve lists messages understood with less
    idle_minutes: int = setting.CONSOLE_IDLE_MINUTES.default_value  # a session without a request for this long has ended
    proxies_count: int = setting.CONSOLE_PROXIES_COUNT.default_value  # reverse proxies in front: X-Forwarded-For gives the source
    trusted_proxies: FrozenSet[str] = frozenset()  # X-Forwarded-For only on connections from these addresses (empty: any)

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "ConsoleSettings":
        """CONSOLE_*, DATABASE_URL, RASA_ENDPOINTS, RASA_URL and RASA_JWT_SECRET from `env` (os.environ by default)."""
        return cls(
            host=setting.CONSOLE_HOST.read(env),
            port=setting.CONSOLE_PORT.read(env),
            database_url=setting.DATABASE_URL.read(env),
            endpoints=setting.RASA_ENDPOINTS.read(env),
            rasa_url=setting.CONSOLE_RASA_URL.read(env),
            rasa_api_secret=setting.RASA_JWT_SECRET.read(env),
            session_minutes=setting.CONSOLE_SESSION_MINUTES.read(env),
            secure_cookies=setting.CONSOLE_SECURE_COOKIES.read(env),
            low_confidence=setting.CONSOLE_LOW_CONFIDENCE.read(env),
            idle_minutes=setting.CONSOLE_IDLE_MINUTES.read(env),
            proxies_count=setting.CONSOLE_PROXIES_COUNT.read(env),
            trusted_proxies=frozenset(
                filter(None, (a.strip() for a in (setting.CONSOLE_TRUSTED_PROXIES.read(env) or "").split(",")))
            ),
        )
