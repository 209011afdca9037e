"""Build the python-telegram-bot Application: handlers, per-chat ordering, safe retries."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.exc import SQLAlchemyError
from telegram import BotCommand
from telegram.ext import Application, ApplicationBuilder

from bot.conversation import CHANNEL, Conversations
from bot.delivery import SafeRetries
from bot.handlers import ChatHandlers
from bot.keyboards import PayloadStore
from bot.processing import PerChatUpdateProcessor, ReadableUpdates
from bot.rendering import Renderer
from bot.settings import BotSettings, SettingsError
from onewindow.backend import ServiceBackend
from onewindow.channels.rasa_client import RasaClient
from onewindow.infra.logs import log_event
from onewindow.rasa_plugins.events_table import TrackerStoreConfigError, tracker_engine
from voice.recognition import SpeechUnavailable, model_path_from_environment, shared_recogniser

logger = logging.getLogger("onewindow.bot")
COMMANDS = [
    BotCommand("start", "What I can do"),
    BotCommand("help", "How to ask, and the commands"),
    BotCommand("human", "Talk to a person"),
    BotCommand("cancel", "Stop what we are doing"),
    BotCommand("voice", "Answers by voice, slower speech"),
    BotCommand("language", "Choose a language"),
    BotCommand("forget", "Delete what this chat has stored"),
]


async def _load_speech_model() -> None:
    """Load the vosk model before the first voice note arrives (it takes seconds)."""
    if model_path_from_environment() is None:
        log_event(logger, "bot.speech_model_missing", hint="set VOSK_MODEL_PATH to answer voice notes")
        return
    with contextlib.suppress(SpeechUnavailable):
        await asyncio.to_thread(shared_recogniser)
        log_event(logger, "bot.speech_model_loaded")


def build_application(settings: BotSettings, backend: ServiceBackend) -> Application:
    """The bot; raises SettingsError when the database has no catalogue yet."""
    try:
        hotline = backend.catalogue.city().hotline_number
    except (SQLAlchemyError, LookupError) as error:
        raise SettingsError(f"the database has no service catalogue ({type(error).__name__}): run `make seed`") from None
    try:
        tracker = tracker_engine(settings.rasa_endpoints)
    except (TrackerStoreConfigError, SQLAlchemyError, OSError) as error:
        raise SettingsError(
            f"cannot open Rasa's tracker store from {settings.rasa_endpoints} (RASA_ENDPOINTS): {error}"
        ) from None
    rasa = RasaClient(settings.rasa_url, settings.rasa_timeout, CHANNEL)
    conversations = Conversations(rasa, Renderer(PayloadStore()), backend, hotline)

    async def post_init(application: Application) -> None:
        await application.bot.set_my_commands(COMMANDS)
        application.bot_data["speech_model"] = asyncio.create_task(_load_speech_model())  # kept so it is not collected

    async def post_shutdown(application: Application) -> None:
        await rasa.close()
        tracker.dispose()

    application = (
        ApplicationBuilder()
        .token(settings.token)
        .base_url(settings.api_url)
        .base_file_url(settings.file_url)
        .get_updates_request(ReadableUpdates(connection_pool_size=1))  # one long poll at a time, as PTB's own
        .rate_limiter(SafeRetries())
        .concurrent_updates(PerChatUpdateProcessor())
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    ChatHandlers(conversations, conversations.renderer.store, backend, tracker).register(application)
    return application
