"""`python -m bot`: run the Telegram bot, by long polling or behind a webhook (see bot/README.md)."""

from __future__ import annotations

import logging
import sys
from urllib.parse import urlparse

from telegram import Update

from bot.app import build_application
from bot.settings import SettingsError, settings_from_environment
from onewindow.backend import ServiceBackend
from onewindow.infra.logs import configure, log_event

logger = logging.getLogger("onewindow.bot")


def main() -> int:
    configure()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines contain the bot token
    try:
        settings = settings_from_environment()
        application = build_application(settings, ServiceBackend.from_url())
    except SettingsError as error:
        print(f"bot: {error}", file=sys.stderr)
        return 2
    webhook_url = settings.webhook_url if settings.webhook_mode else None
    if webhook_url is not None:
        log_event(logger, "bot.webhook_mode", port=settings.webhook_port)
        application.run_webhook(
            listen=settings.webhook_listen,
            port=settings.webhook_port,
            url_path=urlparse(webhook_url).path.lstrip("/"),
            webhook_url=webhook_url,
            secret_token=settings.secret_token,
            allowed_updates=Update.ALL_TYPES,
        )
    else:
        log_event(logger, "bot.polling_mode")
        application.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
