"""One turn of a chat: forward to Rasa while showing "typing", render the answer, speak it if asked."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, AsyncIterator, Dict, List, Optional

from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import TelegramError

from onewindow.channels.rasa_client import RasaClient, RasaUnavailable
from bot.rendering import Renderer, spoken_text
from bot.speech import synthesise_voice_reply
from onewindow.backend import ServiceBackend
from onewindow.logs import log_event, pseudonym

logger = logging.getLogger("onewindow.bot")
TYPING_EVERY_SECONDS = 4.0  # Telegram shows "typing" for 5 seconds per call
CHANNEL = "telegram"


@contextlib.asynccontextmanager
async def typing(bot: Bot, chat_id: int) -> AsyncIterator[None]:
    """Show "typing..." in the chat until the block ends."""

    async def keep_typing() -> None:
        while True:
            with contextlib.suppress(TelegramError):
                await bot.send_chat_action(chat_id, ChatAction.TYPING)
            await asyncio.sleep(TYPING_EVERY_SECONDS)

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Conversations:
    def __init__(self, rasa: RasaClient, renderer: Renderer, backend: ServiceBackend, hotline: str) -> None:
        self.rasa = rasa
        self.renderer = renderer
        self.backend = backend
        self.apology = (
            "Sorry, I cannot answer right now because of a technical problem. Please try again in a few "
            f"minutes. If it is urgent, call the city hotline on {hotline}, or visit any service centre."
        )

    async def turn(self, bot: Bot, chat_id: int, text: str, metadata: Optional[Dict[str, Any]] = None) -> None:
        """Send `text` to the assistant and deliver its answer (or an apology within the Rasa timeout)."""
        async with typing(bot, chat_id):
            try:
                responses = await self.rasa.send(chat_id, text, metadata)
            except RasaUnavailable as error:
                log_event(logger, "bot.rasa_unavailable", chat=pseudonym(chat_id), error=str(error))
                await bot.send_message(chat_id, self.apology)
                return
        if not responses:  # every turn answers something: silence means an action failed (action server down)
            log_event(logger, "bot.no_answer", chat=pseudonym(chat_id))
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
            log_event(logger, "bot.voice_reply_failed", chat=pseudonym(chat_id), error=type(error).__name__)
            return
        await bot.send_voice(chat_id, reply.ogg, duration=reply.seconds)
