"""Talks to the Rasa server: the REST channel for messages, the HTTP API to forget a chat."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import httpx


class RasaUnavailable(RuntimeError):
    """The Rasa server (or its action server) did not answer in time."""


def sender_id(chat_id: int) -> str:
    """The stable Rasa sender id of a Telegram chat (actions read the channel from it)."""
    return f"telegram:{chat_id}"


class RasaClient:
    def __init__(self, base_url: str, timeout: float) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout)

    async def send(self, chat_id: int, text: str, metadata: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
        """The bot's responses to one message from this chat."""
        body = {"sender": sender_id(chat_id), "message": text, "metadata": {"channel": "telegram", **(metadata or {})}}
        try:
            answer = await self._client.post("/webhooks/rest/webhook", json=body)
            answer.raise_for_status()
            return answer.json()
        except (httpx.HTTPError, ValueError) as error:
            raise RasaUnavailable(type(error).__name__) from error

    async def forget(self, chat_id: int) -> None:
        """Delete the conversation's stored events (PUT an empty event list to the tracker)."""
        try:
            answer = await self._client.put(f"/conversations/{sender_id(chat_id)}/tracker/events", json=[])
            answer.raise_for_status()
        except httpx.HTTPError as error:
            raise RasaUnavailable(type(error).__name__) from error

    async def close(self) -> None:
        await self._client.aclose()
