"""Who is asking: server-side sessions, roles and CSRF checks for every console handler.

Every route handler is wrapped in `requires(role)` or marked `public`; `install` adds a
request middleware that refuses any route that is neither (so a new page cannot be left
open by mistake), and a response middleware that adds the security headers.

    @bp.get("/queue")
    @requires("agent")
    async def queue_page(request): ...   # request.ctx.user is a StaffMember

Without a valid session, GET and HEAD requests are redirected to /login?next=<path>, other
requests get 401. A role below the one required gets 403. Every other method must carry the
session's CSRF token in the form field `csrf_token` or the header `X-CSRF-Token`, or gets 403.
Both refusals are audited (`access.denied`, with the reason). A session ends after
`CONSOLE_SESSION_MINUTES`, or earlier after `CONSOLE_IDLE_MINUTES` without a request; requests the
pages make by themselves (`requires(role, touch=False)`: the live queue) do not count as activity.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, Callable, Optional, Tuple
from urllib.parse import quote

from sanic import Request, Sanic
from sanic.models.handler_types import RouteHandler
from sanic.response import BaseHTTPResponse, HTTPResponse, redirect, text
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from console.audit_store import write as audit_write
from console.masking import Masker
from console.templates import error_page
from console.users import ROLES, StaffMember, member_of
from onewindow.storage import models

SESSION_COOKIE = "ow_session"
REVEAL_ROLE = "supervisor"  # the lowest role that may see personal data in clear (reveal, search in clear)
LOGIN_CSRF_COOKIE = "ow_login_csrf"  # the login form's token, before there is a session
SAFE_METHODS = ("GET", "HEAD")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

Handler = RouteHandler  # an async route handler, as Sanic types it (it may return None: server-sent events)
TOUCH_SECONDS = 15  # a session's last activity is written at most this often


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(engine: Engine, member: StaffMember, minutes: int) -> str:
    """A new session for `member`; returns the token for the cookie (only its hash is stored).
    Expired sessions of everyone are removed on the way."""
    token = secrets.token_urlsafe(32)
    now = datetime.utcnow()
    with Session(engine, future=True) as session, session.begin():
        session.execute(delete(models.StaffSession).where(models.StaffSession.expires_at < now))
        session.add(
            models.StaffSession(
                token_hash=_token_hash(token),
                user_id=member.id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + timedelta(minutes=minutes),
            )
        )
    return token


def session_member(engine: Engine, token: str, idle_minutes: int, touch: bool = True) -> Optional[Tuple[StaffMember, str]]:
    """The active member and CSRF token of a session that has neither expired nor been idle for `idle_minutes`,
    or None. `touch` counts this as activity (the idle time starts again)."""
    now = datetime.utcnow()
    sessions = models.StaffSession
    token_hash = _token_hash(token)
    query = (
        select(models.StaffUser, sessions.csrf_token)
        .join(sessions, sessions.user_id == models.StaffUser.id)
        .where(
            sessions.token_hash == token_hash,
            sessions.expires_at > now,
            func.coalesce(sessions.last_seen_at, sessions.created_at) > now - timedelta(minutes=idle_minutes),
            models.StaffUser.active.is_(True),
        )
    )
    with Session(engine, future=True) as session, session.begin():
        row = session.execute(query).first()
        found = (member_of(row[0]), row[1]) if row else None
        if found is not None and touch:
            session.execute(
                update(sessions)
                .where(
                    sessions.token_hash == token_hash,
                    or_(sessions.last_seen_at.is_(None), sessions.last_seen_at < now - timedelta(seconds=TOUCH_SECONDS)),
                )
                .values(last_seen_at=now)
            )
    return found


def end_session(engine: Engine, token: str) -> None:
    with Session(engine, future=True) as session, session.begin():
        session.execute(delete(models.StaffSession).where(models.StaffSession.token_hash == _token_hash(token)))


def end_other_sessions(engine: Engine, user_id: int, token: str) -> None:
    """End every session of the user but the one with `token` (after a password change)."""
    with Session(engine, future=True) as session, session.begin():
        session.execute(
            delete(models.StaffSession).where(
                models.StaffSession.user_id == user_id, models.StaffSession.token_hash != _token_hash(token)
            )
        )


def source_address(request: Request) -> str:
    """Where the request comes from: the client's address, or the proxy's X-Forwarded-For when
    CONSOLE_PROXIES_COUNT says how many proxies are in front (and, with CONSOLE_TRUSTED_PROXIES, only when the
    connection comes from one of them)."""
    trusted = request.app.ctx.settings.trusted_proxies
    if trusted and request.ip not in trusted:
        return request.ip or "-"
    return request.remote_addr or request.ip or "-"


async def audit_denied(request: Request, username: str, reason: str) -> None:
    """Record a refused request: who, the path (masked, without its query) and why."""
    await asyncio.to_thread(
        audit_write,
        request.app.ctx.backend.engine,
        username,
        "access.denied",
        Masker()(request.path),
        {"method": request.method, "reason": reason},
    )


def set_cookie(request: Request, response: HTTPResponse, name: str, value: str, max_age: int) -> None:
    """An HttpOnly, SameSite=Strict cookie (Secure when CONSOLE_SECURE_COOKIES is set)."""
    response.cookies[name] = value
    cookie = response.cookies[name]
    cookie["path"] = "/"
    cookie["httponly"] = True
    cookie["samesite"] = "Strict"
    cookie["max-age"] = max_age
    if request.app.ctx.settings.secure_cookies:
        cookie["secure"] = True


def submitted_csrf_token(request: Request) -> str:
    """The CSRF token the request carries (form field or header), or ""."""
    header = request.headers.get("X-CSRF-Token")
    if header:
        return header
    form = request.form if request.content_type.startswith(("application/x-www-form-urlencoded", "multipart/")) else None
    return (form.get("csrf_token") if form else None) or ""


def tokens_match(expected: str, submitted: str) -> bool:
    return bool(expected) and hmac.compare_digest(expected.encode("utf-8"), submitted.encode("utf-8"))


def login_redirect(request: Request) -> HTTPResponse:
    target = request.path + (f"?{request.query_string}" if request.query_string else "")
    return redirect(f"/login?next={quote(target, safe='')}")


async def _refusal(request: Request, role: str, touch: bool) -> Optional[HTTPResponse]:
    """None when the request may go on (request.ctx.user and .csrf_token are then set), else the refusal."""
    token = request.cookies.get(SESSION_COOKIE)
    idle = request.app.ctx.settings.idle_minutes
    found = await asyncio.to_thread(session_member, request.app.ctx.backend.engine, token, idle, touch) if token else None
    if found is None:
        return login_redirect(request) if request.method in SAFE_METHODS else text("Please log in.", status=401)
    request.ctx.user, request.ctx.csrf_token = found
    if request.method not in SAFE_METHODS and not tokens_match(request.ctx.csrf_token, submitted_csrf_token(request)):
        await audit_denied(request, request.ctx.user.username, "csrf")
        return error_page(request, 403, "This form has expired. Go back, reload the page and try again.")
    if not request.ctx.user.can(role):
        await audit_denied(request, request.ctx.user.username, "role")
        return error_page(request, 403, "Your role does not give access to this page.")
    return None


def requires(role: str, touch: bool = True) -> Callable[[Handler], Handler]:
    """Let the handler run only for a logged-in member with `role` or above (and a valid CSRF token);
    `touch=False` for requests a page makes by itself, which do not keep an idle session alive."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def guarded(request: Request, *args: Any, **kwargs: Any) -> Optional[HTTPResponse]:
            refusal = await _refusal(request, role, touch)
            if refusal is not None:
                return refusal
            return await handler(request, *args, **kwargs)

        guarded.console_access = role  # type: ignore[attr-defined]  # a mark on the function, read by _refuse_unguarded
        return guarded

    return decorate


def public(handler: Handler) -> Handler:
    """Mark a handler that needs no session (the login page); it must do its own CSRF check."""
    handler.console_access = "public"  # type: ignore[attr-defined]  # a mark on the function, read by _refuse_unguarded
    return handler


async def _refuse_unguarded(request: Request) -> Optional[HTTPResponse]:
    route = request.route
    if route is None or getattr(route.ctx, "static", False):
        return None
    if not hasattr(route.handler, "console_access"):
        return text("This page is not protected by console.auth; refused.", status=403)
    return None


async def _security_headers(request: Request, response: BaseHTTPResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    route = request.route
    if not (route is not None and getattr(route.ctx, "static", False)):
        response.headers.setdefault("Cache-Control", "no-store")


def install(app: Sanic) -> None:
    """Refuse routes without `requires`/`public`; add security headers to every response."""
    app.register_middleware(_refuse_unguarded, "request")
    app.register_middleware(_security_headers, "response")
