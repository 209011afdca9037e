"""The bot's configuration: a typed view of its settings in onewindow/settings/variables.py, and their checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from onewindow.settings import InvalidSetting
from onewindow.settings import variables as setting

SettingsError = InvalidSetting  # a missing or malformed setting, with a message saying how to fix it


@dataclass(frozen=True)
class BotSettings:
    token: str
    rasa_url: str = setting.RASA_URL.default_value
    rasa_timeout: float = setting.RASA_TIMEOUT.default_value
    webhook_url: Optional[str] = None
    secret_token: Optional[str] = None
    webhook_listen: str = setting.TELEGRAM_WEBHOOK_LISTEN.default_value
    webhook_port: int = setting.TELEGRAM_WEBHOOK_PORT.default_value
    api_url: str = setting.TELEGRAM_API_URL.default_value
    file_url: str = setting.TELEGRAM_FILE_URL.default_value
    rasa_endpoints: Path = setting.RASA_ENDPOINTS.default_value  # where Rasa keeps conversations (/forget deletes there)
    update_lease: float = setting.TELEGRAM_UPDATE_LEASE.default_value  # webhook: seconds an update stays with its handler

    @property
    def webhook_mode(self) -> bool:
        return bool(self.webhook_url)


def settings_from_environment(env: Optional[Mapping[str, str]] = None) -> BotSettings:
    """TELEGRAM_TOKEN and friends from `env` (os.environ by default); raises SettingsError with a clear message."""
    token = setting.TELEGRAM_TOKEN.read(env)
    if not token:
        raise SettingsError("TELEGRAM_TOKEN is not set: get a token from @BotFather (see bot/README.md)")
    webhook_url = setting.TELEGRAM_WEBHOOK_URL.read(env)
    secret = setting.TELEGRAM_SECRET_TOKEN.read(env)
    if webhook_url and not secret:
        raise SettingsError("webhook mode needs TELEGRAM_SECRET_TOKEN (1-256 characters: A-Z, a-z, 0-9, _ and -)")
    if secret and (len(secret) > 256 or not all(c.isalnum() or c in "_-" for c in secret)):
        raise SettingsError("TELEGRAM_SECRET_TOKEN may only hold 1-256 characters: A-Z, a-z, 0-9, _ and -")
    return BotSettings(
        token=token,
        rasa_url=setting.RASA_URL.read(env),
        rasa_timeout=setting.RASA_TIMEOUT.read(env),
        webhook_url=webhook_url,
        secret_token=secret,
        webhook_listen=setting.TELEGRAM_WEBHOOK_LISTEN.read(env),
        webhook_port=setting.TELEGRAM_WEBHOOK_PORT.read(env),
        api_url=setting.TELEGRAM_API_URL.read(env),
        file_url=setting.TELEGRAM_FILE_URL.read(env),
        rasa_endpoints=setting.RASA_ENDPOINTS.read(env),
        update_lease=setting.TELEGRAM_UPDATE_LEASE.read(env),
    )
