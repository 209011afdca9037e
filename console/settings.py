"""The staff console's configuration, from environment variables with defaults that run locally."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from onewindow import settings as onewindow_settings


@dataclass(frozen=True)
class ConsoleSettings:
    host: str
    port: int
    database_url: str          # the service database (staff accounts, sessions, audit log, handoffs)
    endpoints: Path            # Rasa's endpoints.yml: the tracker store the transcripts come from
    rasa_url: str              # Rasa's HTTP API (StaffDesk replies and hand-backs go through it)
    session_minutes: int       # a login lasts this long
    secure_cookies: bool       # set the Secure flag (behind HTTPS)
    low_confidence: float = 0.5  # Improve lists messages understood with less confidence than this

    @classmethod
    def from_env(cls) -> "ConsoleSettings":
        """CONSOLE_HOST, CONSOLE_PORT, DATABASE_URL, RASA_ENDPOINTS, RASA_URL, CONSOLE_SESSION_MINUTES,
        CONSOLE_SECURE_COOKIES, CONSOLE_LOW_CONFIDENCE."""
        return cls(
            host=os.environ.get("CONSOLE_HOST", "127.0.0.1"),
            port=int(os.environ.get("CONSOLE_PORT", "5080")),
            database_url=onewindow_settings.database_url(),
            endpoints=Path(os.environ.get("RASA_ENDPOINTS", onewindow_settings.PROJECT_ROOT / "endpoints.yml")),
            rasa_url=os.environ.get("RASA_URL", "http://127.0.0.1:5005").rstrip("/"),
            session_minutes=int(os.environ.get("CONSOLE_SESSION_MINUTES", "480")),
            secure_cookies=os.environ.get("CONSOLE_SECURE_COOKIES", "").lower() in ("1", "true", "yes"),
            low_confidence=float(os.environ.get("CONSOLE_LOW_CONFIDENCE", "0.5")),
        )
