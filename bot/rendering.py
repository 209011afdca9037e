"""Turn Rasa's responses into Telegram messages: text, inline buttons, images, map pins, checklists."""

from __future__ import annotations

import html
import logging
from typing import Any, Dict, List

from telegram import Bot, Message
from telegram.constants import MessageLimit, ParseMode

from bot.keyboards import PayloadStore, inline_keyboard
from onewindow.infra.logs import log_event
from voice.phone_wording import find_listing

logger = logging.getLogger("onewindow.bot")


def split_text(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> List[str]:
    """Cut text into pieces whose HTML-escaped length fits `limit`, at paragraph, line or word ends."""
    pieces: List[str] = []
    rest = text.strip()
    while len(html.escape(rest)) > limit:
        cut = _fitting_prefix(rest, limit)
        for separator in ("\n\n", "\n", ". ", " "):
            at = cut.rfind(separator)
            if at > len(cut) // 2:
                cut = cut[: at + len(separator)]
                break
        pieces.append(cut.strip())
        rest = rest[len(cut) :].strip()
    if rest:
        pieces.append(rest)
    return pieces


def list_lines(text: str) -> str:
    """Each item of a numbered list ("1. ... 2. ...") on its own line, as the phone finds the items."""
    listing = find_listing(text)
    if listing is None:
        return text
    return "\n".join(part for part in (listing.before, *listing.items, list_lines(listing.after)) if part)


def _fitting_prefix(text: str, limit: int) -> str:
    """The longest prefix whose escaped form is at most `limit` characters."""
    size = 0
    for index, character in enumerate(text):
        size += len(html.escape(character))
        if size > limit:
            return text[:index]
    return text


def checklist_text(checklist: Dict[str, Any]) -> str:
    """A document checklist as an HTML message with tick boxes."""
    lines = [f"<b>{html.escape(checklist.get('title', 'What to bring'))}</b>"]
    lines += [f"☐ {html.escape(str(item))}" for item in checklist.get("items", [])]
    if checklist.get("reference"):
        lines.append(f"Appointment number: <code>{html.escape(checklist['reference'])}</code>")
    return "\n".join(lines)


def spoken_text(responses: List[Dict[str, Any]]) -> str:
    """What a voice reply should say: the texts, then the choices offered."""
    parts = []
    for response in responses:
        if response.get("text"):
            parts.append(response["text"])
        titles = [b["title"] for b in response.get("buttons") or []]
        if titles:
            parts.append("You can choose: " + ", ".join(titles) + ".")
    return " ".join(parts)


class Renderer:
    """Sends one batch of Rasa responses to a chat, in order."""

    def __init__(self, store: PayloadStore) -> None:
        self.store = store

    async def send(self, bot: Bot, chat_id: int, responses: List[Dict[str, Any]]) -> List[Message]:
        sent: List[Message] = []
        for response in responses:
            if response.get("text"):
                sent += await self._text(bot, chat_id, response["text"], response.get("buttons") or [])
            if response.get("image"):
                sent.append(await bot.send_photo(chat_id, photo=response["image"]))
            if isinstance(response.get("custom"), dict):
                sent += await self._custom(bot, chat_id, response["custom"])
        return sent

    async def _text(self, bot: Bot, chat_id: int, text: str, buttons: List[Dict[str, str]]) -> List[Message]:
        pieces = split_text(list_lines(text))
        sent = []
        for number, piece in enumerate(pieces, start=1):
            markup = inline_keyboard(buttons, self.store) if buttons and number == len(pieces) else None
            sent.append(await bot.send_message(chat_id, html.escape(piece), parse_mode=ParseMode.HTML, reply_markup=markup))
        return sent

    async def _custom(self, bot: Bot, chat_id: int, custom: Dict[str, Any]) -> List[Message]:
        if "venue" in custom:
            venue = custom["venue"]
            return [
                await bot.send_venue(
                    chat_id,
                    latitude=venue["latitude"],
                    longitude=venue["longitude"],
                    title=venue["title"],
                    address=venue["address"],
                )
            ]
        if "location" in custom:
            place = custom["location"]
            return [await bot.send_location(chat_id, latitude=place["latitude"], longitude=place["longitude"])]
        if "checklist" in custom:
            return [await bot.send_message(chat_id, checklist_text(custom["checklist"]), parse_mode=ParseMode.HTML)]
        if "handoff" not in custom:  # a handoff comes with its own text; anything else is unknown here
            log_event(logger, "bot.custom_payload_ignored", level=logging.WARNING, keys=sorted(custom))
        return []
