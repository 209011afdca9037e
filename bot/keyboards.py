"""Inline keyboards from Rasa buttons, and the callback data their presses send back.

Telegram limits callback data to 64 bytes. A Rasa payload that fits travels as is
(it starts with "/"); a longer one is kept here and travels as "k:<key>". The bot's own
buttons use "<name>:<choice>" (for example "forget:yes").
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Dict, List, Optional

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup

CALLBACK_LIMIT = 64
SHORT_TITLE = 18  # two buttons per row when both titles are at most this long
TINY_TITLE = 8  # three per row when all are at most this long ("10:30 am"): every free time of a day stays readable


class PayloadStore:
    """Long button payloads by key; the oldest are dropped beyond `capacity`."""

    def __init__(self, capacity: int = 50_000) -> None:
        self._payloads: "OrderedDict[str, str]" = OrderedDict()
        self._capacity = capacity

    def callback_data(self, payload: str) -> str:
        if len(payload.encode()) <= CALLBACK_LIMIT:
            return payload
        key = "k:" + hashlib.sha256(payload.encode()).hexdigest()[:24]
        self._payloads[key] = payload
        self._payloads.move_to_end(key)
        while len(self._payloads) > self._capacity:
            self._payloads.popitem(last=False)
        return key

    def payload(self, data: str) -> Optional[str]:
        """The Rasa payload a press sent; None for an expired key or the bot's own buttons."""
        if data.startswith("/"):
            return data
        return self._payloads.get(data)


def row_width(titles: List[str]) -> int:
    """How many buttons with these titles fit on one row: three tiny ones, two short ones, else one."""
    longest = max(len(title) for title in titles)
    return 3 if longest <= TINY_TITLE else 2 if longest <= SHORT_TITLE else 1


def inline_keyboard(buttons: List[Dict[str, str]], store: PayloadStore) -> InlineKeyboardMarkup:
    """Rasa buttons as an inline keyboard, all of them: tiny titles three to a row, short ones two, long ones alone."""
    rows: List[List[InlineKeyboardButton]] = []
    for button in buttons:
        key = InlineKeyboardButton(button["title"][:64], callback_data=store.callback_data(button["payload"]))
        last = rows[-1] if rows else None
        if last and len(last) < row_width([b.text for b in last] + [key.text]):
            last.append(key)
        else:
            rows.append([key])
    return InlineKeyboardMarkup(rows)


def choice_keyboard(name: str, choices: Dict[str, str]) -> InlineKeyboardMarkup:
    """The bot's own buttons: {choice: title} sending "<name>:<choice>"."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(title, callback_data=f"{name}:{choice}")] for choice, title in choices.items()]
    )


def share_keyboard() -> ReplyKeyboardMarkup:
    """Buttons under the text box to share a phone number or a location in one tap."""
    return ReplyKeyboardMarkup(
        [
            [
                KeyboardButton("Share my phone number", request_contact=True),
                KeyboardButton("Share my location", request_location=True),
            ]
        ],
        resize_keyboard=True,
        is_persistent=True,
    )
