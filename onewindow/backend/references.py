"""Reference codes: a prefix and six digits, easy to read aloud and to type."""
from __future__ import annotations

import re
import secrets
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

PREFIXES = {"appointment": "BK", "application": "APP", "report": "RPT", "handoff": "HO"}
REFERENCE_PATTERN = re.compile(r"^\s*(BK|APP|RPT|HO)[\s-]?(\d{6})\s*$", re.IGNORECASE)


def new_reference(kind: str) -> str:
    return f"{PREFIXES[kind]}-{secrets.randbelow(900000) + 100000}"


def unused_reference(session: Session, model: Any, kind: str) -> str:
    """A new reference of this kind that no row of `model` (a table with a `reference` column) has yet."""
    while True:
        reference = new_reference(kind)
        if session.scalars(select(model.id).where(model.reference == reference)).first() is None:
            return reference


def normalise_reference(text: Optional[str], kind: Optional[str] = None) -> Optional[str]:
    """"bk 123456" -> "BK-123456"; None when malformed or of another kind."""
    match = REFERENCE_PATTERN.match(text or "")
    if not match:
        return None
    prefix = match.group(1).upper()
    if kind is not None and prefix != PREFIXES[kind]:
        return None
    return f"{prefix}-{match.group(2)}"
