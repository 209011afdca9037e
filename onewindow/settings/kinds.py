"""The types a setting can have: how its text becomes a value, and what a bad value is told."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generic, Optional, Sequence, TypeVar

T = TypeVar("T")


class InvalidSetting(ValueError):
    """A setting's value cannot be used; the message names the variable, what it must be and what it got."""


@dataclass(frozen=True)
class Kind(Generic[T]):
    """A setting's type: `name` completes "X must be ..." in errors; `convert` raises ValueError on a bad text."""

    name: str
    convert: Callable[[str], T]

    def parse(self, variable: str, text: str) -> T:
        try:
            return self.convert(text)
        except ValueError:
            raise InvalidSetting(f"{variable} must be {self.name}, got {text!r}") from None


def _whole(text: str, least: int = 0, most: Optional[int] = None) -> int:
    value = int(text)
    if value < least or (most is not None and value > most):
        raise ValueError(text)
    return value


def _flag(text: str) -> bool:
    word = text.lower()
    if word in ("1", "true", "yes"):
        return True
    if word in ("0", "false", "no"):
        return False
    raise ValueError(text)


def _calling_code(text: str) -> str:
    digits = text.lstrip("+")
    if not digits.isdigit():
        raise ValueError(text)
    return digits


def _one_of(choices: Sequence[str]) -> Callable[[str], str]:
    def chosen(text: str) -> str:
        if text.upper() not in choices:
            raise ValueError(text)
        return text.upper()

    return chosen


TEXT = Kind("text", str)
OPTIONAL_TEXT: Kind[Optional[str]] = Kind("text", lambda text: text or None)
URL = Kind("a URL", lambda text: text.rstrip("/"))
OPTIONAL_URL: Kind[Optional[str]] = Kind("a URL", lambda text: text.rstrip("/") or None)
PATH = Kind("a path", Path)
WORD = Kind("a word", str.lower)
WHOLE = Kind("a whole number (0 or more)", _whole)
COUNT = Kind("a whole number (1 or more)", lambda text: _whole(text, least=1))
PORT = Kind("a port number (1-65535)", lambda text: _whole(text, least=1, most=65535))
NUMBER = Kind("a number", float)
FLAG = Kind("yes or no (1, true, yes / 0, false, no)", _flag)
CALLING_CODE = Kind("a country calling code (digits, + allowed)", _calling_code)
LOG_LEVEL = Kind("a log level (DEBUG, INFO, WARNING, ERROR)", _one_of(("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")))
