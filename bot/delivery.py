"""Every call to the Bot API goes through here: flood control honoured, safe retries only.

- 429 Too Many Requests: wait `retry_after` seconds, then send again (Telegram did not
  deliver the message).
- The request never reached Telegram (connection refused, DNS) or Telegram answered
  502/5xx: retry with exponential backoff.
- A timeout or a dropped connection after the request was sent: the message may have
  been delivered, so a sending method is not retried (no message is sent twice); reading
  methods (getFile, getMe, ...) are.

Each update is handled with a `Deliveries` record (`recording()`): every message that reached
the chat is noted, so a failure later in the update can tell whether the citizen already has
an answer (then no apology is sent, and nothing is sent twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, Callable, Coroutine, Dict, Iterator, List, Optional, Union

from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.ext import BaseRateLimiter

from onewindow.infra.logs import log_event
from onewindow.infra.metrics import TELEGRAM_DELIVERY_ERRORS

logger = logging.getLogger("onewindow.bot")
JSON = Union[bool, Dict[str, Any], list]
NOT_SENT_MARKERS = ("httpx.ConnectError", "httpx.ConnectTimeout", "Bad Gateway", "Internal Server Error", "Service Unavailable")


class Deliveries:
    """The Bot API methods that put something in the chat while one update is handled, in order."""

    def __init__(self) -> None:
        self.methods: List[str] = []
        self._turn_start = 0

    def begin_turn(self) -> None:
        """The citizen's turn starts here: what was sent before (an "I heard: ..." echo) is not its reply."""
        self._turn_start = len(self.methods)

    @property
    def reply_delivered(self) -> bool:
        """True once any message of the turn has reached the citizen."""
        return len(self.methods) > self._turn_start


CURRENT: ContextVar[Optional[Deliveries]] = ContextVar("onewindow_bot_deliveries", default=None)


@contextlib.contextmanager
def recording() -> Iterator[Deliveries]:
    """Note what reaches the chat while the block runs (one update; its task's context only)."""
    record = Deliveries()
    token = CURRENT.set(record)
    try:
        yield record
    finally:
        CURRENT.reset(token)


def current_deliveries() -> Deliveries:
    """This update's record (a fresh, unshared one outside `recording()`)."""
    return CURRENT.get() or Deliveries()


def puts_in_chat(endpoint: str) -> bool:
    """Methods whose success shows the citizen something new (a message, a venue, a voice note)."""
    return endpoint.startswith(("send", "copyMessage", "forwardMessage")) and endpoint != "sendChatAction"


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
        try:
            return await self._with_retries(callback, args, kwargs, endpoint)
        except Exception:  # failed for good: counted (onewindow_telegram_delivery_errors_total), then the caller's
            TELEGRAM_DELIVERY_ERRORS.inc()
            raise

    async def _with_retries(
        self, callback: Callable[..., Coroutine[Any, Any, JSON]], args: Any, kwargs: Dict[str, Any], endpoint: str
    ) -> JSON:
        for attempt in range(1, self.max_attempts + 1):
            try:
                result = await callback(*args, **kwargs)
            except RetryAfter as error:
                wait = retry_after_seconds(error)
                if attempt == self.max_attempts or wait > self.max_wait:
                    raise
                log_event(
                    logger, "bot.flood_control", level=logging.WARNING, endpoint=endpoint, retry_after=wait, attempt=attempt
                )
                await asyncio.sleep(wait)
            except BadRequest:
                raise  # Telegram refused the request itself: sending it again cannot help
            except NetworkError as error:
                retryable = never_delivered(error) or is_idempotent(endpoint)
                if attempt == self.max_attempts or not retryable:
                    log_event(
                        logger,
                        "bot.api_call_failed",
                        level=logging.WARNING,
                        endpoint=endpoint,
                        error=type(error).__name__,
                        attempt=attempt,
                    )
                    raise  # whoever made the call logs the failure with its traceback
                wait = self.backoff * 2 ** (attempt - 1)
                log_event(
                    logger, "bot.api_call_retry", level=logging.WARNING, endpoint=endpoint, error=type(error).__name__, wait=wait
                )
                await asyncio.sleep(wait)
            else:
                if puts_in_chat(endpoint):
                    current_deliveries().methods.append(endpoint)
                return result
        raise AssertionError("unreachable")
