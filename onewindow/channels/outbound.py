"""Messages the assistant's side starts: staff replies and queue updates, sent on the citizen's own channel.

The channel comes from the conversation's sender id ("telegram:<chat id>", "phone:<caller>",
"kiosk:<id>", anything else is REST). Telegram gets a sendMessage through the Bot API, with
the bot's own TELEGRAM_TOKEN and TELEGRAM_API_URL. A phone or kiosk conversation cannot be
reached once the call is over (the console offers a call back), nor can a REST client.
Logs name the channel and a pseudonym of the conversation, never the text or a number.
"""

from __future__ import annotations

import logging
from typing import Mapping, Optional

import httpx

from onewindow.channels.senders import channel_of_sender, split_sender
from onewindow.infra.logs import log_event, pseudonym
from onewindow.settings.variables import TELEGRAM_API_URL, TELEGRAM_TOKEN

logger = logging.getLogger(__name__)


class OutboundChannels:
    def __init__(
        self, telegram_token: Optional[str] = None, telegram_api_url: str = TELEGRAM_API_URL.default_value, timeout: float = 10.0
    ) -> None:
        self.telegram_token = telegram_token
        self.telegram_api_url = telegram_api_url
        self.timeout = timeout
        if telegram_token:
            logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines contain the bot token

    @classmethod
    def from_environment(cls, env: Optional[Mapping[str, str]] = None) -> "OutboundChannels":
        """Telegram from the bot's TELEGRAM_TOKEN and TELEGRAM_API_URL (not configured without a token)."""
        return cls(TELEGRAM_TOKEN.read(env), TELEGRAM_API_URL.read(env))

    async def deliver(self, sender_id: str, text: str) -> bool:
        """Send `text` to the conversation's citizen; True when their channel accepted it."""
        channel = channel_of_sender(sender_id)
        delivered = False
        if channel == "telegram" and self.telegram_token:
            delivered = await self._telegram(split_sender(sender_id)[1], text)
        log_event(logger, "outbound.delivery", channel=channel, sender=pseudonym(sender_id), delivered=delivered)
        return delivered

    async def _telegram(self, chat_id: str, text: str) -> bool:
        url = f"{self.telegram_api_url}{self.telegram_token}/sendMessage"
        chat: object = int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                answer = await client.post(url, json={"chat_id": chat, "text": text})
            return answer.status_code == 200 and bool(answer.json().get("ok"))
        except (httpx.HTTPError, ValueError):
            return False
