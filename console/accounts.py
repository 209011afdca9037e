"""Logging in and out, and the admin's user management pages."""
from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timedelta
from typing import Dict, Optional

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, redirect
from sqlalchemy.engine import Engine

from console import audit
from console.auth import (
    LOGIN_CSRF_COOKIE, SESSION_COOKIE, end_session, public, requires, set_cookie, start_session, tokens_match,
)
from console.templates import error_page, render
from console.users import ROLES, AccountError, authenticate, create_user, deactivate, is_account, list_users

bp = Blueprint("accounts")
LOGIN_FORM_SECONDS = 3600
# after this many failed logins in this many minutes an account refuses logins until the window has passed
LOCKOUT_FAILURES = 5
LOCKOUT_MINUTES = 15
UNKNOWN_ACCOUNT = "(no such account)"


def safe_next(target: str) -> str:
    """Where to go after logging in: a path on this site only."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/queue"


def locked_out(engine: Engine, username: str) -> bool:
    """Whether the account had LOCKOUT_FAILURES failed logins within the last LOCKOUT_MINUTES."""
    since = datetime.utcnow() - timedelta(minutes=LOCKOUT_MINUTES)
    return audit.count_since(engine, "login.failed", username, since) >= LOCKOUT_FAILURES


def login_form(request: Request, status: int = 200, error: str = "", username: str = "", next_path: str = "") -> HTTPResponse:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    request.ctx.csrf_token = token
    response = render(request, "login.html", status=status, error=error, username=username, next=next_path)
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, LOGIN_FORM_SECONDS)
    return response


@bp.get("/")
@requires("agent")
async def home(request: Request) -> HTTPResponse:
    return redirect("/queue")


@bp.get("/login")
@public
async def login_page(request: Request) -> HTTPResponse:
    return login_form(request, next_path=safe_next(request.args.get("next", "")))


@bp.post("/login")
@public
async def login(request: Request) -> HTTPResponse:
    form = request.form
    if not tokens_match(request.cookies.get(LOGIN_CSRF_COOKIE, ""), form.get("csrf_token", "")):
        return error_page(request, 403, "The login form has expired. Reload the page and try again.", back="/login")
    username = (form.get("username") or "").strip().lower()
    next_path = safe_next(form.get("next", ""))
    engine = request.app.ctx.backend.engine
    known = await asyncio.to_thread(is_account, engine, username)
    if known and await asyncio.to_thread(locked_out, engine, username):
        await asyncio.to_thread(audit.write, engine, "-", "login.locked", username, {})
        return login_form(request, 429, f"Too many failed logins for this account. Try again in {LOCKOUT_MINUTES} minutes, "
                                        "or ask an admin.", username, next_path)
    member = await asyncio.to_thread(authenticate, engine, username, form.get("password") or "")
    if member is None:
        # what was typed is logged only when it is an account's name: it could be a password typed in the wrong box
        await asyncio.to_thread(audit.write, engine, "-", "login.failed", username if known else UNKNOWN_ACCOUNT, {})
        return login_form(request, 401, "Wrong username or password, or the account is deactivated.", username, next_path)
    old_token = request.cookies.get(SESSION_COOKIE)
    if old_token:
        await asyncio.to_thread(end_session, engine, old_token)
    token = await asyncio.to_thread(start_session, engine, member, request.app.ctx.settings.session_minutes)
    await asyncio.to_thread(audit.write, engine, member.username, "login", member.username, {})
    response = redirect(next_path, status=303)
    set_cookie(request, response, SESSION_COOKIE, token, request.app.ctx.settings.session_minutes * 60)
    del response.cookies[LOGIN_CSRF_COOKIE]
    return response


@bp.post("/logout")
@requires("agent")
async def logout(request: Request) -> HTTPResponse:
    await asyncio.to_thread(end_session, request.app.ctx.backend.engine, request.cookies[SESSION_COOKIE])
    await audit.record(request, "logout", request.ctx.user.username)
    response = redirect("/login", status=303)
    del response.cookies[SESSION_COOKIE]
    return response


async def users_page(request: Request, status: int = 200, error: str = "", notice: str = "",
                     form: Optional[Dict[str, str]] = None) -> HTTPResponse:
    users = await asyncio.to_thread(list_users, request.app.ctx.backend.engine)
    return render(request, "admin_users.html", status=status, users=users, roles=ROLES, error=error, notice=notice,
                  form=form or {"username": "", "role": "agent"})


@bp.get("/admin/users")
@requires("admin")
async def users(request: Request) -> HTTPResponse:
    return await users_page(request)


@bp.post("/admin/users")
@requires("admin")
async def add_user(request: Request) -> HTTPResponse:
    username = (request.form.get("username") or "").strip().lower()
    role = request.form.get("role") or ""
    try:
        member = await asyncio.to_thread(create_user, request.app.ctx.backend.engine, username, role, request.form.get("password") or "")
    except AccountError as error:
        return await users_page(request, 400, error=str(error), form={"username": username, "role": role})
    await audit.record(request, "user.create", member.username, role=member.role)
    return await users_page(request, notice=f"Created {member.username} ({member.role}).")


@bp.post("/admin/users/<user_id:int>/deactivate")
@requires("admin")
async def deactivate_user(request: Request, user_id: int) -> HTTPResponse:
    if user_id == request.ctx.user.id:
        return await users_page(request, 409, error="You cannot deactivate your own account.")
    try:
        member = await asyncio.to_thread(deactivate, request.app.ctx.backend.engine, user_id)
    except AccountError as error:
        return error_page(request, 404, str(error), back="/admin/users")
    await audit.record(request, "user.deactivate", member.username)
    return await users_page(request, notice=f"Deactivated {member.username}; their sessions have ended.")
