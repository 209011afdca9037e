"""Logging in and out (throttled, console.throttle), changing one's password, and the admin's user management pages."""

from __future__ import annotations

import asyncio
import secrets
from typing import Dict, Optional

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, redirect

from console import audit, throttle
from console.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    audit_denied,
    end_other_sessions,
    end_session,
    public,
    requires,
    set_cookie,
    source_address,
    start_session,
    tokens_match,
)
from console.templates import error_page, render
from console.users import (
    ROLES,
    AccountError,
    authenticate,
    change_password,
    create_user,
    deactivate,
    is_account,
    list_users,
    member_by_id,
)

bp = Blueprint("accounts")
LOGIN_FORM_SECONDS = 3600
UNKNOWN_ACCOUNT = "(no such account)"
THROTTLED = "Too many failed logins. Try again in {minutes} minutes, or ask an admin to unlock the account."


def safe_next(target: str) -> str:
    """Where to go after logging in: a path on this site only."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/queue"


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
    form = request.form or {}
    if not tokens_match(request.cookies.get(LOGIN_CSRF_COOKIE, ""), form.get("csrf_token", "")):
        await audit_denied(request, "-", "csrf")
        return error_page(request, 403, "The login form has expired. Reload the page and try again.", back="/login")
    username = (form.get("username") or "").strip().lower()[:200]
    next_path = safe_next(form.get("next", ""))
    engine = request.app.ctx.backend.engine
    source = source_address(request)
    known = await asyncio.to_thread(is_account, engine, username)
    # what was typed is logged only when it is an account's name: it could be a password typed in the wrong box
    logged_name = username if known else UNKNOWN_ACCOUNT
    # names that are accounts and names that are not are throttled, and answered, alike
    wait = await asyncio.to_thread(throttle.wait_seconds, engine, username, source)
    if wait:
        await asyncio.to_thread(audit.write, engine, "-", "login.throttled", logged_name, {})
        return login_form(request, 429, THROTTLED.format(minutes=max(1, -(-wait // 60))), username, next_path)
    member = await asyncio.to_thread(authenticate, engine, username, form.get("password") or "")
    if member is None:
        await asyncio.to_thread(throttle.record_failure, engine, username, source)
        await asyncio.to_thread(audit.write, engine, "-", "login.failed", logged_name, {})
        return login_form(request, 401, "Wrong username or password, or the account is deactivated.", username, next_path)
    await asyncio.to_thread(throttle.forget, engine, username, source)
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


async def users_page(
    request: Request, status: int = 200, error: str = "", notice: str = "", form: Optional[Dict[str, str]] = None
) -> HTTPResponse:
    engine = request.app.ctx.backend.engine
    users = await asyncio.to_thread(list_users, engine)
    failures = await asyncio.to_thread(throttle.recent_failures, engine, [member.username for member in users])
    return render(
        request,
        "admin_users.html",
        status=status,
        users=users,
        roles=ROLES,
        error=error,
        notice=notice,
        form=form or {"username": "", "role": "agent"},
        failures=failures,
    )


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
        member = await asyncio.to_thread(
            create_user, request.app.ctx.backend.engine, username, role, request.form.get("password") or ""
        )
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


@bp.post("/admin/users/<user_id:int>/unlock")
@requires("admin")
async def unlock_user(request: Request, user_id: int) -> HTTPResponse:
    """Forget the account's failed logins from every address, so that nobody waits to log in as it."""
    engine = request.app.ctx.backend.engine
    member = await asyncio.to_thread(member_by_id, engine, user_id)
    if member is None:
        return error_page(request, 404, "There is no such user.", back="/admin/users")
    forgotten = await asyncio.to_thread(throttle.forget, engine, member.username)
    await audit.record(request, "user.unlock", member.username, failures=forgotten)
    return await users_page(request, notice=f"Unlocked {member.username}: {forgotten} failed login(s) forgotten.")


@bp.get("/account/password")
@requires("agent")
async def password_page(request: Request) -> HTTPResponse:
    return render(request, "password.html", error="", notice="")


@bp.post("/account/password")
@requires("agent")
async def password_change(request: Request) -> HTTPResponse:
    """A new password: the current one, the new one twice, and the policy (console.password_policy)."""
    form = request.form or {}
    current, new = form.get("current") or "", form.get("new") or ""
    engine = request.app.ctx.backend.engine
    try:
        if new != (form.get("again") or ""):
            raise AccountError("the two new passwords differ")
        await asyncio.to_thread(change_password, engine, request.ctx.user, current, new)
    except AccountError as error:
        await audit.record(request, "password.change_refused", request.ctx.user.username)
        return render(request, "password.html", status=400, error=f"{str(error)[:1].upper()}{str(error)[1:]}.", notice="")
    await asyncio.to_thread(end_other_sessions, engine, request.ctx.user.id, request.cookies[SESSION_COOKIE])
    await audit.record(request, "password.change", request.ctx.user.username)
    return render(request, "password.html", error="", notice="Your password has been changed; your other sessions have ended.")
