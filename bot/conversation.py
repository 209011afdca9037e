"""One turn of a chat: forward to Rasa while showing "typing", render the answer, speak it if asked."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, AsyncIterator, Dict, List, Optional

from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bot.delivery import current_deliveries
from bot.rendering import Renderer, spoken_text
from bot.voice_notes import synthesise_voice_reply
from onewindow.backend import ServiceBackend
from onewindow.channels.rasa_client import RasaClient, RasaUnavailable
from onewindow.infra.logs import log_event, pseudonym
from onewindow.text.wording import technical_apology

logger = logging.getLogger("onewindow.bot")
TYPING_EVERY_SECONDS = 4.0  # Telegram shows "typing" for 5 seconds per call
STOP_TYPING_SECONDS = 0.5
TYPING_AFTER_SECONDS = 0.3
CHANNEL = "telegram"


@contextlib.asynccontextmanager
async def typing(bot: Bot, chat_id: int) -> AsyncIterator[None]:
    """Show "typing..." in the chat until the block ends.

    The loop is told to stop rather than cancelled: httpx can swallow a cancel that arrives during
    a request, and a turn waiting for such a task would hold its chat's lock for good.
    """
    done = asyncio.Event()

    async def keep_typing() -> None:
        with contextlib.suppress(asyncio.TimeoutError):  # a quick answer needs no indicator (one request less)
            await asyncio.wait_for(done.wait(), TYPING_AFTER_SECONDS)
        while not done.is_set():
            with contextlib.suppress(TelegramError):
                await bot.send_chat_action(chat_id, ChatAction.TYPING)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(done.wait(), TYPING_EVERY_SECONDS)

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        done.set()
        await asyncio.wait({task}, timeout=STOP_TYPING_SECONDS)  # a request in flight finishes on its own


class Conversations:
    def __init__(self, rasa: RasaClient, renderer: Renderer, backend: ServiceBackend, hotline: str) -> None:
        self.rasa = rasa
        self.renderer = renderer
        self.backend = backend
        self.apology = technical_apology(hotline)

    async def turn(self, bot: Bot, chat_id: int, text: str, metadata: Optional[Dict[str, Any]] = None) -> None:
        """Send `text` to the assistant and deliver its answer (or an apology within the Rasa timeout)."""
        current_deliveries().begin_turn()
        async with typing(bot, chat_id):
            try:
                responses = await self.rasa.send(chat_id, text, metadata)
            except RasaUnavailable as error:
                log_event(logger, "bot.rasa_unavailable", level=logging.ERROR, exc_info=error, chat=pseudonym(chat_id))
                await bot.send_message(chat_id, self.apology)
                return
        if not responses:  # every turn answers something: silence means an action failed (action server down)
            log_event(logger, "bot.no_answer", level=logging.ERROR, chat=pseudonym(chat_id))
            await bot.send_message(chat_id, self.apology)
            return
        await self.renderer.send(bot, chat_id, responses)
        await self.speak(bot, chat_id, responses)

    async def speak(self, bot: Bot, chat_id: int, responses: List[Dict[str, Any]]) -> None:
        """Also send the answer as a voice note when this chat asked for voice replies."""
        preferences = await asyncio.to_thread(self.backend.preferences.get, CHANNEL, str(chat_id))
        words = spoken_text(responses).strip()
        if not preferences.reply_by_voice or not words:
            return
        try:
            reply = await synthesise_voice_reply(words, preferences.slow_speech)
        except (RuntimeError, ValueError) as error:
            log_event(logger, "bot.voice_reply_failed", level=logging.ERROR, exc_info=error, chat=pseudonym(chat_id))
            return
        await bot.send_voice(chat_id, reply.ogg, duration=reply.seconds)
