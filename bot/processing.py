"""Per-chat ordering and duplicate suppression for incoming updates.

Updates of different chats run in parallel; a chat's updates run one at a time in the
order they arrived (asyncio locks wake waiters first in, first out). An update whose
update_id was already seen (Telegram redelivers after timeouts) is dropped. Each update is
handled with its own record of what reached the chat (bot.delivery.recording).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from typing import Any, Awaitable, Dict, Optional, Tuple

from telegram import Bot, Update
from telegram.ext import BaseUpdateProcessor
from telegram.request import HTTPXRequest

from bot.delivery import recording
from onewindow.infra.logs import log_event

logger = logging.getLogger("onewindow.bot")


def readable(data: Dict[str, Any], bot: Optional[Bot] = None) -> Dict[str, Any]:
    """`data` when python-telegram-bot can read it as an update, else its update_id alone (an update without content).

    PTB fails a whole getUpdates batch on one update it cannot read, and fetches the same batch again, forever: every
    chat waits, and PTB logs the batch with the citizens' messages. A webhook delivery refused for it is retried by
    Telegram. The unreadable update is logged by its id and the error's type only."""
    update_id = data.get("update_id")
    try:
        Update.de_json(dict(data), bot)
    except Exception as error:  # PTB raises whatever its constructors raise on malformed data
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            raise
        log_event(logger, "bot.update_unreadable", level=logging.WARNING, update_id=update_id, error=type(error).__name__)
        return {"update_id": update_id}
    return data


class ReadableUpdates(HTTPXRequest):
    """getUpdates' connection: each update of a batch PTB could not read is passed on as its id alone (`readable`)."""

    async def do_request(self, url: str, method: str, *args: Any, **kwargs: Any) -> Tuple[int, bytes]:
        status, payload = await super().do_request(url, method, *args, **kwargs)
        if not url.endswith("/getUpdates") or status != 200:
            return status, payload
        answer = json.loads(payload)
        if isinstance(answer, dict) and isinstance(answer.get("result"), list):
            answer["result"] = [readable(item) if isinstance(item, dict) else item for item in answer["result"]]
        return status, json.dumps(answer).encode()


class SeenUpdates:
    """The most recent update ids, to recognise a redelivered update."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._seen: "OrderedDict[int, None]" = OrderedDict()
        self._capacity = capacity

    def first_time(self, update_id: int) -> bool:
        """True the first time an id is offered, False after that."""
        if update_id in self._seen:
            return False
        self._seen[update_id] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True


class PerChatUpdateProcessor(BaseUpdateProcessor):
    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: Dict[int, asyncio.Lock] = {}
        self._waiting: Dict[int, int] = {}
        self.seen = SeenUpdates()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        if isinstance(update, Update) and not self.seen.first_time(update.update_id):
            log_event(logger, "bot.duplicate_update_dropped", update_id=update.update_id)
            coroutine.close()  # type: ignore[attr-defined]  # typed Awaitable by PTB, always a coroutine: closed, never awaited
            return
        chat = update.effective_chat.id if isinstance(update, Update) and update.effective_chat else None
        if chat is None:
            with recording():
                await coroutine
            return
        lock = self._locks.setdefault(chat, asyncio.Lock())
        self._waiting[chat] = self._waiting.get(chat, 0) + 1
        try:
            async with lock:
                with recording():
                    await coroutine
        finally:
            self._waiting[chat] -= 1
            if not self._waiting[chat]:  # nobody else queued for this chat: drop its lock
                del self._waiting[chat], self._locks[chat]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""
