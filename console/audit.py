"""The audit log: who viewed which transcript, revealed which personal data, changed what.

`await record(request, action, target, **detail)` is async (the write runs off the event loop)
and takes the username from `request.ctx.user`. Supervisors and admins read the log at /audit.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass
from typing import Any, List, Optional

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from console.audit_store import write
from console.auth import requires
from console.filters import InvalidFilter, parse_page
from console.templates import render
from onewindow.storage import models

__all__ = ["AuditPage", "bp", "known_actions", "record", "search", "write"]
PER_PAGE = 50
FILTER_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,80}$")

bp = Blueprint("audit")


@dataclass(frozen=True)
class AuditPage:
    entries: List[models.AuditEntry]
    page: int
    pages: int
    total: int


async def record(request: Request, action: str, target: str, **detail: Any) -> None:
    """Log that the current user did `action` on `target` (e.g. "transcript.view", "telegram:123")."""
    await asyncio.to_thread(write, request.app.ctx.backend.engine, request.ctx.user.username, action, target, detail)


def search(engine: Engine, username: Optional[str] = None, action: Optional[str] = None, page: int = 1) -> AuditPage:
    """Entries newest first, filtered by exact username and action (or action prefix ending in ".")."""
    conditions = []
    if username:
        conditions.append(models.AuditEntry.username == username)
    if action:
        conditions.append(
            models.AuditEntry.action.startswith(action) if action.endswith(".") else models.AuditEntry.action == action
        )
    with Session(engine, future=True) as session:
        total = session.scalar(select(func.count(models.AuditEntry.id)).where(*conditions)) or 0
        pages = max(1, math.ceil(total / PER_PAGE))
        page = min(page, pages)
        entries = session.scalars(
            select(models.AuditEntry)
            .where(*conditions)
            .order_by(models.AuditEntry.at.desc(), models.AuditEntry.id.desc())
            .offset((page - 1) * PER_PAGE)
            .limit(PER_PAGE)
        ).all()
    return AuditPage(list(entries), page, pages, total)


def known_actions(engine: Engine) -> List[str]:
    with Session(engine, future=True) as session:
        return list(session.scalars(select(models.AuditEntry.action).distinct().order_by(models.AuditEntry.action)))


@bp.get("/audit")
@requires("supervisor")
async def audit_page(request: Request) -> HTTPResponse:
    username = request.args.get("user", "").strip()
    action = request.args.get("action", "").strip()
    if (username and not FILTER_PATTERN.match(username)) or (action and not FILTER_PATTERN.match(action)):
        raise InvalidFilter("'user' and 'action' may only contain letters, digits, '.', '_' and '-'")
    number = parse_page(request.args)
    engine = request.app.ctx.backend.engine
    result = await asyncio.to_thread(search, engine, username or None, action or None, number)
    actions = await asyncio.to_thread(known_actions, engine)
    return render(request, "audit.html", result=result, filter_user=username, filter_action=action, actions=actions)
