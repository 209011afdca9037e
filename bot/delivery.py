"""Every call to the Bot API goes through here: flood control honoured, safe retries only.

- 429 Too Many Requests: wait `retry_after` seconds, then send again (Telegram did not
  deliver the message).
- The request never reached Telegram (connection refused, DNS) or Telegram answered
  502/5xx: retry with exponential backoff.
- A timeout or a dropped connection after the request was sent: the message may have
  been delivered, so a sending method is not retried (no message is sent twice); reading
  methods (getFile, getMe, ...) are.
"""
from __future__ import annotations

import asyncio
import logging
import warnings
from datetime import timedelta
from typing import Any, Callable, Coroutine, Dict, Optional, Union

from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.ext import BaseRateLimiter

from onewindow.logs import log_event

logger = logging.getLogger("onewindow.bot")
JSON = Union[bool, Dict[str, Any], list]
NOT_SENT_MARKERS = ("httpx.ConnectError", "httpx.ConnectTimeout", "Bad Gateway", "Internal Server Error", "Service Unavailable")


def retry_after_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def is_idempotent(endpoint: str) -> bool:
    """Methods that only read or set state, so repeating them cannot duplicate a message."""
    return endpoint.startswith(("get", "set", "delete", "answer", "edit")) or endpoint == "sendChatAction"


def never_delivered(error: NetworkError) -> bool:
    """True when Telegram certainly did not act on the request."""
    return not isinstance(error, TimedOut) and any(marker in str(error) for marker in NOT_SENT_MARKERS)


class SafeRetries(BaseRateLimiter):
    def __init__(self, max_attempts: int = 5, backoff: float = 0.5, max_wait: float = 60.0) -> None:
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_wait = max_wait

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, JSON]],
        args: Any,
        kwargs: Dict[str, Any],
        endpoint: str,
        data: Dict[str, Any],
        rate_limit_args: Optional[Any],
    ) -> JSON:
        for attempt in range(1, self.max_attempts + 1):
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as error:
                wait = retry_after_seconds(error)
                if attempt == self.max_attempts or wait > self.max_wait:
                    raise
                log_event(logger, "bot.flood_control", endpoint=endpoint, retry_after=wait, attempt=attempt)
                await asyncio.sleep(wait)
            except BadRequest:
                raise  # Telegram refused the request itself: sending it again cannot help
            except NetworkError as error:
                retryable = never_delivered(error) or is_idempotent(endpoint)
                if attempt == self.max_attempts or not retryable:
                    log_event(logger, "bot.api_call_failed", endpoint=endpoint, error=type(error).__name__, attempt=attempt)
                    raise
                wait = self.backoff * 2 ** (attempt - 1)
                log_event(logger, "bot.api_call_retry", endpoint=endpoint, error=type(error).__name__, wait=wait)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")
