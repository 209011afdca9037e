"""How channels talk to the Rasa server: the REST channel for messages, the HTTP API for a conversation's events."""

from __future__ import annotations

from typing import Any, Dict, List, Optional
from urllib.parse import quote

import httpx

from onewindow.channels.senders import sign_sender
from onewindow.infra.api_auth import authorization


class RasaUnavailable(RuntimeError):
    """The Rasa server (or its action server) did not answer in time."""


class RasaClient:
    """One channel's client: senders are "<channel>:<id>" so actions know who and where (actions/shared.py)."""

    def __init__(self, base_url: str, timeout: float, channel: str) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self.channel = channel

    def sender_id(self, external_id: object) -> str:
        return f"{self.channel}:{external_id}"

    async def send(self, external_id: object, text: str, metadata: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
        """The assistant's responses to one message from this chat or caller."""
        sender = self.sender_id(external_id)
        signed = {"channel": self.channel, **(metadata or {}), "sender_signature": sign_sender(sender)}
        body = {"sender": sender, "message": text, "metadata": signed}
        try:
            answer = await self._client.post("/webhooks/rest/webhook", json=body)
            answer.raise_for_status()
            return answer.json()
        except (httpx.HTTPError, ValueError) as error:
            raise RasaUnavailable(type(error).__name__) from error

    async def close(self) -> None:
        await self._client.aclose()


async def append_events(
    base_url: str, api_secret: str, sender_id: str, events: List[Dict[str, Any]], timeout: float = 10.0
) -> None:
    """Add events to a conversation through Rasa's HTTP API (POST /conversations/<id>/tracker/events),
    at `base_url` (HAProxy's internal listener), with a token signed with `api_secret`."""
    path = f"/conversations/{quote(sender_id, safe=':+')}/tracker/events"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as client:
            answer = await client.post(path, json=events, headers=authorization(api_secret))
            answer.raise_for_status()
    except httpx.HTTPError as error:
        raise RasaUnavailable(type(error).__name__) from error
