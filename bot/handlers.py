"""What the bot does with each kind of update: commands, text, buttons, contacts, places, voice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any, Awaitable, Dict, Optional, TypeVar, Union

from sqlalchemy.engine import Engine
from telegram import Message, Update
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot.conversation import CHANNEL, Conversations, typing
from bot.delivery import current_deliveries
from bot.keyboards import PayloadStore, choice_keyboard, share_keyboard
from bot.voice_notes import MAX_VOICE_NOTE_BYTES, MAX_VOICE_NOTE_SECONDS, transcribe_voice_note
from onewindow.backend import ServiceBackend
from onewindow.infra.logs import log_event, pseudonym
from onewindow.storage.retention import forget_conversation
from voice.audio import AudioError
from voice.recognition import SpeechUnavailable, model_path_from_environment

logger = logging.getLogger("onewindow.bot")
Context = ContextTypes.DEFAULT_TYPE
NEW = filters.UpdateType.MESSAGE
T = TypeVar("T")


def welcome_text(listening: bool) -> str:
    """The /start message; it mentions voice messages only when a speech model is set (VOSK_MODEL_PATH)."""
    return WELCOME.format(ask="Type your question or send a voice message." if listening else "Type your question.")


def unsupported_text(listening: bool) -> str:
    """The answer to a picture, sticker or file; voice messages are offered only when they can be heard."""
    if listening:
        return UNSUPPORTED.format(
            read="read text messages and listen to voice messages", ask="type your question or send a voice message"
        )
    return UNSUPPORTED.format(read="read text messages", ask="type your question")


WELCOME = (
    "Hello, I am OneWindow, the city's assistant for public services. I can:\n"
    "• tell you what a service is, what to bring, what it costs and how long it takes\n"
    "• tell you every service you need when something happens in your life, like a new baby or a move\n"
    "• find the right office, its opening hours and the nearest one to you\n"
    "• book, move or cancel an appointment, check an application, report a problem\n"
    "• put you through to a person at a service centre (/human)\n\n"
    "{ask} /help lists the commands.\n\n"
    "Privacy: I keep this conversation to answer you and to improve the service. Staff at the "
    "service centre can read it when you ask for a person. /forget deletes it."
)
HELP = (
    'Ask in your own words, for example "what do I need for a passport renewal?" or "I just had a baby".\n\n'
    "/human – talk to a person\n/cancel – stop what we are doing\n/voice – answers by voice, or slower speech\n"
    "/language – choose a language\n/forget – delete what this chat has stored\n/help – this list\n\n"
    "Share your phone number with the button below to find appointments you booked elsewhere; share your "
    "location to find the nearest office."
)
UNSUPPORTED = "I can {read}, but I cannot look at pictures, stickers or files. Please {ask}."
UNKNOWN_COMMAND = "I do not know that command. /help lists the ones I know."
VOICE_SETTINGS = {"on": "Answer me by voice too", "slow": "Speak more slowly", "normal": "Normal speed", "off": "Text only"}
VOICE_CHANGES: Dict[str, Dict[str, bool]] = {
    "on": {"reply_by_voice": True},
    "off": {"reply_by_voice": False},
    "slow": {"reply_by_voice": True, "slow_speech": True},
    "normal": {"slow_speech": False},
}


def listening() -> bool:
    """Whether voice messages can be heard: a speech model is set (VOSK_MODEL_PATH)."""
    return model_path_from_environment() is not None


def expected(value: Optional[T], what: str) -> T:
    """What the handler's filter promises the update carries (a chat, a message, its text); an error if it does not."""
    if value is None:
        raise LookupError(f"the update carries no {what}")
    return value


def chat_of(update: Update) -> int:
    return expected(update.effective_chat, "chat").id


def message_of(update: Update) -> Message:
    return expected(update.effective_message, "message")


def seconds_of(duration: Union[int, timedelta]) -> float:
    """A Telegram duration in seconds: python-telegram-bot 22 gives an int, or a timedelta when PTB_TIMEDELTA is set."""
    return duration.total_seconds() if isinstance(duration, timedelta) else duration


class ChatHandlers:
    def __init__(self, conversations: Conversations, store: PayloadStore, backend: ServiceBackend, tracker: Engine) -> None:
        self.conversations = conversations
        self.store = store
        self.backend = backend
        self.tracker = tracker  # Rasa's tracker store, where the chat's conversation is kept

    def register(self, application: Application) -> None:
        commands = {
            "start": self.start,
            "help": self.help,
            "human": self.human,
            "cancel": self.cancel,
            "language": self.language,
            "forget": self.forget,
            "voice": self.voice_settings,
        }
        for name, callback in commands.items():
            application.add_handler(CommandHandler(name, callback, filters=NEW))
        application.add_handler(MessageHandler(NEW & filters.COMMAND, self.unknown_command))
        application.add_handler(MessageHandler(NEW & filters.TEXT, self.text))
        application.add_handler(MessageHandler(NEW & filters.CONTACT, self.contact))
        application.add_handler(MessageHandler(NEW & filters.LOCATION, self.location))
        application.add_handler(MessageHandler(NEW & (filters.VOICE | filters.AUDIO), self.voice_note))
        application.add_handler(MessageHandler(NEW, self.unsupported))
        application.add_handler(CallbackQueryHandler(self.button))
        application.add_error_handler(self.error)

    # --- commands ---------------------------------------------------------------------

    async def start(self, update: Update, context: Context) -> None:
        await message_of(update).reply_text(welcome_text(listening()), reply_markup=share_keyboard())

    async def help(self, update: Update, context: Context) -> None:
        await message_of(update).reply_text(HELP, reply_markup=share_keyboard())

    async def human(self, update: Update, context: Context) -> None:
        await self.conversations.turn(context.bot, chat_of(update), "/request_human")

    async def cancel(self, update: Update, context: Context) -> None:
        await self.conversations.turn(context.bot, chat_of(update), "/stop")

    async def language(self, update: Update, context: Context) -> None:
        await message_of(update).reply_text(
            "Which language? More languages are coming; for now I speak English.",
            reply_markup=choice_keyboard("language", {"en": "English"}),
        )

    async def forget(self, update: Update, context: Context) -> None:
        await message_of(update).reply_text(
            "Shall I delete what this chat has stored: our conversation, the phone number you shared and "
            "your voice settings? Appointments and applications stay valid.",
            reply_markup=choice_keyboard("forget", {"yes": "Yes, delete it", "no": "No, keep it"}),
        )

    async def voice_settings(self, update: Update, context: Context) -> None:
        await message_of(update).reply_text(
            "How would you like my answers?", reply_markup=choice_keyboard("voice", VOICE_SETTINGS)
        )

    async def unknown_command(self, update: Update, context: Context) -> None:
        await message_of(update).reply_text(UNKNOWN_COMMAND)

    # --- messages -----------------------------------------------------------------------

    async def text(self, update: Update, context: Context) -> None:
        typed = expected(message_of(update).text, "text").strip().lstrip("/")  # typed text is never an intent payload
        await self.conversations.turn(context.bot, chat_of(update), typed)

    async def contact(self, update: Update, context: Context) -> None:
        message = message_of(update)
        contact = message.contact
        if contact is None or update.effective_user is None or contact.user_id != update.effective_user.id:
            await message.reply_text(
                'Please share your own number, with the "Share my phone number" button.', reply_markup=share_keyboard()
            )
            return
        try:
            await asyncio.to_thread(self.backend.citizens.link_identity, CHANNEL, str(chat_of(update)), contact.phone_number)
        except ValueError:
            await message.reply_text("Sorry, I could not read that phone number.")
            return
        log_event(logger, "bot.phone_linked", chat=pseudonym(chat_of(update)))
        await message.reply_text(
            f"Thank you. This chat is now linked to your phone number ending in {contact.phone_number[-2:]}. "
            'I can find appointments you booked by phone, on the website or at an office: ask "check my appointment".'
        )

    async def location(self, update: Update, context: Context) -> None:
        place = expected(message_of(update).location, "location")
        metadata = {"location": {"latitude": place.latitude, "longitude": place.longitude}}
        await self.conversations.turn(context.bot, chat_of(update), "/find_office", metadata)

    async def voice_note(self, update: Update, context: Context) -> None:
        message = message_of(update)
        note = message.voice or expected(message.audio, "voice message")
        chat = chat_of(update)
        too_big = (note.file_size or 0) > MAX_VOICE_NOTE_BYTES or seconds_of(note.duration or 0) > MAX_VOICE_NOTE_SECONDS
        if too_big:
            await message.reply_text("That voice message is too long for me. Please send a shorter one.")
            return
        try:
            async with typing(context.bot, chat):
                ogg = bytes(await (await note.get_file()).download_as_bytearray())
                transcript = await transcribe_voice_note(ogg)
        except SpeechUnavailable as error:
            log_event(logger, "bot.speech_unavailable", level=logging.WARNING, exc_info=error, chat=pseudonym(chat))
            await message.reply_text("Sorry, I cannot listen to voice messages at the moment. Please type your question.")
            return
        except AudioError:
            await message.reply_text("Sorry, I could not play that voice message. Please try recording it again.")
            return
        log_event(
            logger,
            "bot.voice_note",
            chat=pseudonym(chat),
            seconds=round(transcript.seconds, 1),
            words=len(transcript.text.split()),
        )
        if not transcript.text:
            await message.reply_text(
                "Sorry, I could not make out any words. Please try again, a little closer to the phone, or type."
            )
            return
        await message.reply_text(f"I heard: “{transcript.text}”")
        await self.conversations.turn(context.bot, chat, transcript.text, {"input": "voice", "confidence": transcript.confidence})

    async def unsupported(self, update: Update, context: Context) -> None:
        await message_of(update).reply_text(unsupported_text(listening()))

    # --- button presses -------------------------------------------------------------------

    async def button(self, update: Update, context: Context) -> None:
        query = expected(update.callback_query, "button press")
        data = query.data or ""
        name, _, choice = data.partition(":")
        if name in ("forget", "voice", "language"):
            await self._close_keyboard(update)
            await getattr(self, f"_chose_{name}")(update, context, choice)
            return
        payload = self.store.payload(data)
        if payload is None:
            await query.answer("This button has expired. Please type your answer instead.", show_alert=True)
            return
        await self._close_keyboard(update)  # a choice is made once
        await self.conversations.turn(context.bot, chat_of(update), payload)

    async def _close_keyboard(self, update: Update) -> None:
        """Acknowledge the press and remove the keyboard; the answer does not wait on either succeeding."""
        query = expected(update.callback_query, "button press")
        await self._aside(update, "answer_button", query.answer())
        await self._aside(update, "remove_keyboard", query.edit_message_reply_markup(None))

    async def _aside(self, update: Update, step: str, call: Awaitable[Any]) -> None:
        """Run a step the citizen's answer does not depend on: a failure is logged and the update goes on."""
        try:
            await call
        except TelegramError as error:
            log_event(logger, "bot.step_failed", level=logging.ERROR, exc_info=error, step=step, chat=pseudonym(chat_of(update)))

    async def _chose_forget(self, update: Update, context: Context, choice: str) -> None:
        chat = chat_of(update)
        if choice != "yes":
            await context.bot.send_message(chat, "All right, I have kept everything.")
            return
        await asyncio.to_thread(forget_conversation, self.backend, self.tracker, self.conversations.rasa.sender_id(chat))
        await asyncio.to_thread(self.backend.citizens.unlink_identity, CHANNEL, str(chat))
        await asyncio.to_thread(self.backend.preferences.forget, CHANNEL, str(chat))
        log_event(logger, "bot.chat_forgotten", chat=pseudonym(chat))
        await context.bot.send_message(
            chat,
            "Done. I have deleted our conversation, the phone number link and your settings. "
            "Your appointments and applications stay valid.",
        )

    async def _chose_voice(self, update: Update, context: Context, choice: str) -> None:
        chat = chat_of(update)
        if choice not in VOICE_CHANGES:
            return
        now = await asyncio.to_thread(self.backend.preferences.update, CHANNEL, str(chat), **VOICE_CHANGES[choice])
        if not now.reply_by_voice:
            text = "I will answer in text only."
        else:
            text = "I will answer by voice as well as text" + (", speaking slowly." if now.slow_speech else ".")
        await context.bot.send_message(chat, text)

    async def _chose_language(self, update: Update, context: Context, choice: str) -> None:
        await context.bot.send_message(chat_of(update), "English it is.")

    async def error(self, update: Optional[object], context: Context) -> None:
        """Log what failed with its traceback (never the message itself); apologise only if the turn's reply never arrived.

        A reply that reached the citizen, fully or partly, is not followed by an apology for a
        later step (a venue, a voice note), and nothing that arrived is sent again.
        """
        chat = update.effective_chat.id if isinstance(update, Update) and update.effective_chat else None
        deliveries = current_deliveries()
        apologise = chat is not None and not deliveries.reply_delivered
        log_event(
            logger,
            "bot.update_failed",
            level=logging.ERROR,
            exc_info=context.error,
            chat=pseudonym(chat) if chat is not None else None,
            delivered=deliveries.methods,
            apology=apologise,
        )
        if chat is None or not apologise:
            return
        with contextlib.suppress(TelegramError):
            await context.bot.send_message(chat, self.conversations.apology)
