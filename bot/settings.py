"""The bot's configuration, from environment variables with local defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from onewindow.channels.outbound import TELEGRAM_API_URL
from onewindow.settings import PROJECT_ROOT


class SettingsError(ValueError):
    """A missing or malformed setting, with a message saying how to fix it."""


@dataclass(frozen=True)
class BotSettings:
    token: str
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_timeout: float = 8.0
    webhook_url: Optional[str] = None
    secret_token: Optional[str] = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = 8443
    api_url: str = TELEGRAM_API_URL
    file_url: str = "https://api.telegram.org/file/bot"
    rasa_endpoints: Path = PROJECT_ROOT / "endpoints.yml"  # where Rasa keeps conversations (/forget deletes there)

    @property
    def webhook_mode(self) -> bool:
        return bool(self.webhook_url)


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        return float(env.get(name, default))
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {env[name]!r}") from None


def settings_from_environment(env: Mapping[str, str] = os.environ) -> BotSettings:
    """Read TELEGRAM_TOKEN and friends; raises SettingsError with a clear message."""
    token = env.get("TELEGRAM_TOKEN", "").strip()
    if not token:
        raise SettingsError("TELEGRAM_TOKEN is not set: get a token from @BotFather (see bot/README.md)")
    webhook_url = env.get("TELEGRAM_WEBHOOK_URL", "").strip() or None
    secret = env.get("TELEGRAM_SECRET_TOKEN", "").strip() or None
    if webhook_url and not secret:
        raise SettingsError("webhook mode needs TELEGRAM_SECRET_TOKEN (1-256 characters: A-Z, a-z, 0-9, _ and -)")
    if secret and (len(secret) > 256 or not all(c.isalnum() or c in "_-" for c in secret)):
        raise SettingsError("TELEGRAM_SECRET_TOKEN may only hold 1-256 characters: A-Z, a-z, 0-9, _ and -")
    return BotSettings(
        token=token,
        rasa_url=env.get("RASA_URL", BotSettings.rasa_url).rstrip("/"),
        rasa_timeout=_number(env, "RASA_TIMEOUT", BotSettings.rasa_timeout),
        webhook_url=webhook_url,
        secret_token=secret,
        webhook_listen=env.get("TELEGRAM_WEBHOOK_LISTEN", BotSettings.webhook_listen),
        webhook_port=int(_number(env, "TELEGRAM_WEBHOOK_PORT", BotSettings.webhook_port)),
        api_url=env.get("TELEGRAM_API_URL", BotSettings.api_url),
        file_url=env.get("TELEGRAM_FILE_URL", BotSettings.file_url),
        rasa_endpoints=Path(env.get("RASA_ENDPOINTS", BotSettings.rasa_endpoints)),
    )
