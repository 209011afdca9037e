"""Structured JSON logging that never writes personal data in clear text.

Use `log_event(logger, "appointment.booked", reference=..., office=...)`; a failure:
`log_event(logger, "bot.update_failed", level=logging.ERROR, exc_info=error, chat=pseudonym(chat))`
adds the exception's class and its traceback (redacted too). String fields
are scrubbed of phone numbers and long digit runs (ID numbers); people are named only by
a pseudonym (`pseudonym(sender_id)`), never by name.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
from datetime import datetime, timezone
from typing import Any, Optional, TextIO

from onewindow.settings.variables import ONEWINDOW_LOG_LEVEL, ONEWINDOW_LOG_SALT

PHONE_OR_ID = re.compile(r"\+?\d[\d\s\-().]{6,}\d")
SALT = ONEWINDOW_LOG_SALT.read()


def redact(text: str) -> str:
    """Replace phone numbers and ID-like digit runs with a placeholder."""
    return PHONE_OR_ID.sub("[number]", text)


def pseudonym(value: Any) -> str:
    """A stable, non-reversible tag for a sender or citizen, so log lines can be joined."""
    return hashlib.sha256(f"{SALT}:{value}".encode()).hexdigest()[:12]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": redact(record.getMessage()),
            **{key: redact(value) if isinstance(value, str) else value for key, value in fields.items()},
        }
        if record.exc_info and record.exc_info[0]:
            entry["error"] = record.exc_info[0].__name__
            entry["traceback"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a test runner may have swapped and closed the old one)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """sys.stderr is always used."""


def configure(level: str = "") -> None:
    """Send the `onewindow` loggers to stderr as JSON lines (once per process)."""
    logger = logging.getLogger("onewindow")
    if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        return
    handler = CurrentStderr()
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level or ONEWINDOW_LOG_LEVEL.read())
    logger.propagate = False


def log_event(
    logger: logging.Logger, event: str, *, level: int = logging.INFO, exc_info: Optional[BaseException] = None, **fields: Any
) -> None:
    """Log `event` with `fields`; a failure passes `exc_info` (its class and traceback are logged) and a higher `level`."""
    logger.log(level, event, exc_info=exc_info, extra={"fields": fields})
