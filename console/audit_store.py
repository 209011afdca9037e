"""Writing the audit log (`audit_log`), kept apart from its pages so that console.auth can record refusals."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from onewindow.storage import models


def write(engine: Engine, username: str, action: str, target: str, detail: Dict[str, Any]) -> None:
    """Append one entry (blocking; console.audit.record is the way to call it from a handler)."""
    with Session(engine, future=True) as session, session.begin():
        session.add(models.AuditEntry(at=datetime.utcnow(), username=username, action=action, target=target[:200], detail=detail))
