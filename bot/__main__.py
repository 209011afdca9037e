"""`python -m bot`: run the Telegram bot, by long polling or behind a webhook (see bot/README.md)."""

from __future__ import annotations

import logging
import sys

from telegram import Update

from bot.app import build_application
from bot.settings import SettingsError, settings_from_environment
from bot.webhook import run_webhook
from onewindow.backend import ServiceBackend
from onewindow.infra.logs import configure, log_event

logger = logging.getLogger("onewindow.bot")


def main() -> int:
    configure()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines contain the bot token
    try:
        settings = settings_from_environment()
        backend = ServiceBackend.from_url()
        application = build_application(settings, backend)
    except SettingsError as error:
        print(f"bot: {error}", file=sys.stderr)
        return 2
    if settings.webhook_mode:
        log_event(logger, "bot.webhook_mode", port=settings.webhook_port)
        run_webhook(application, settings, backend.engine)  # answers each update only after handling it
    else:
        log_event(logger, "bot.polling_mode")
        application.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
