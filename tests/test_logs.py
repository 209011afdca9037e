"""Structured logs: a failure is logged at its level with its class and traceback, personal data redacted."""

from __future__ import annotations

import io
import json
import logging
from typing import Any, Callable, Dict

from hypothesis import given
from hypothesis import strategies as st

from onewindow.infra.logs import JsonFormatter, log_event, pseudonym


def captured(emit: Callable[[logging.Logger], object]) -> Dict[str, Any]:
    """The one JSON record `emit(logger)` writes."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("onewindow.test_logs")
    logger.handlers, logger.propagate = [handler], False
    logger.setLevel(logging.DEBUG)
    emit(logger)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0])


def test_an_ordinary_event_is_info_without_a_traceback() -> None:
    record = captured(lambda logger: log_event(logger, "bot.phone_linked", chat=pseudonym(42)))
    assert record["level"] == "info" and record["event"] == "bot.phone_linked" and record["chat"] == pseudonym(42)
    assert "traceback" not in record and "error" not in record


@given(number=st.from_regex(r"\+?[0-9]{9,12}", fullmatch=True))
def test_a_failure_is_logged_at_its_level_with_a_redacted_traceback(number: str) -> None:
    def fail(logger: logging.Logger) -> None:
        try:
            raise LookupError(f"no citizen with phone {number}")
        except LookupError as error:
            log_event(logger, "bot.update_failed", level=logging.ERROR, exc_info=error, chat=pseudonym(number))

    record = captured(fail)
    assert record["level"] == "error" and record["error"] == "LookupError"
    assert record["traceback"].startswith("Traceback (most recent call last)") and "in fail" in record["traceback"]
    assert "LookupError: no citizen with phone [number]" in record["traceback"]
    assert number not in json.dumps(record)
