"""The staff console's configuration, from environment variables with defaults that run locally."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from onewindow import settings as onewindow_settings


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
    low_confidence: float = 0.5  # Improve lists messages understood with less confidence than this
    idle_minutes: int = 30  # a session without a request for this long has ended (CONSOLE_IDLE_MINUTES)
    proxies_count: int = 0  # reverse proxies in front (CONSOLE_PROXIES_COUNT): then X-Forwarded-For gives the source

    @classmethod
    def from_env(cls) -> "ConsoleSettings":
        """CONSOLE_HOST, CONSOLE_PORT, DATABASE_URL, RASA_ENDPOINTS, RASA_URL, RASA_JWT_SECRET, CONSOLE_SESSION_MINUTES,
        CONSOLE_SECURE_COOKIES, CONSOLE_LOW_CONFIDENCE, CONSOLE_IDLE_MINUTES, CONSOLE_PROXIES_COUNT."""
        return cls(
            host=os.environ.get("CONSOLE_HOST", "127.0.0.1"),
            port=int(os.environ.get("CONSOLE_PORT", "5080")),
            database_url=onewindow_settings.database_url(),
            endpoints=Path(os.environ.get("RASA_ENDPOINTS", onewindow_settings.PROJECT_ROOT / "endpoints.yml")),
            rasa_url=os.environ.get("RASA_URL", "http://127.0.0.1:5100").rstrip("/"),
            rasa_api_secret=os.environ.get(onewindow_settings.API_SECRET_VARIABLE, ""),
            session_minutes=int(os.environ.get("CONSOLE_SESSION_MINUTES", "480")),
            secure_cookies=os.environ.get("CONSOLE_SECURE_COOKIES", "").lower() in ("1", "true", "yes"),
            low_confidence=float(os.environ.get("CONSOLE_LOW_CONFIDENCE", "0.5")),
            idle_minutes=int(os.environ.get("CONSOLE_IDLE_MINUTES", "30")),
            proxies_count=int(os.environ.get("CONSOLE_PROXIES_COUNT", "0")),
        )
